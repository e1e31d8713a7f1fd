//! Opening the store a command works on: etcd when endpoints are given.

use anyhow::{bail, Context, Result};
use esi_core::secret::Secret;
use esi_core::store::Store;
use esi_etcd::{EtcdConfig, EtcdStore, TlsConfig};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// How to authenticate to etcd: TLS material and a user (the password only from
/// `ESI_ETCD_PASSWORD`, never a flag: command lines are visible to every local user).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct EtcdAccess {
    /// PEM file of the CA that signed the etcd servers' certificates (`https://` endpoints).
    #[arg(long, env = "ESI_ETCD_CACERT")]
    pub etcd_cacert: Option<PathBuf>,
    /// PEM client certificate, for an etcd that requires client authentication.
    #[arg(long, env = "ESI_ETCD_CERT", requires = "etcd_key")]
    pub etcd_cert: Option<PathBuf>,
    /// PEM key of the client certificate.
    #[arg(long, env = "ESI_ETCD_KEY", requires = "etcd_cert")]
    pub etcd_key: Option<PathBuf>,
    /// etcd user (password in `ESI_ETCD_PASSWORD`).
    #[arg(long, env = "ESI_ETCD_USER")]
    pub etcd_user: Option<String>,
}

static ACCESS: OnceLock<EtcdAccess> = OnceLock::new();

/// Sets how every etcd connection of this process authenticates (once, from the flags).
pub fn set_access(access: EtcdAccess) {
    let _ = ACCESS.set(access);
}

fn read_pem(what: &str, path: &PathBuf) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {what} {}", path.display()))
}

/// Splits `a,b c` into endpoints.
pub fn endpoints(list: &[String]) -> Vec<String> {
    list.iter()
        .flat_map(|s| s.split([',', ' ']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Per-endpoint health of an etcd cluster: `(endpoint, "ok (leader <id>)" or the error)`.
pub async fn etcd_health(endpoints: &[String]) -> Vec<(String, Result<String, String>)> {
    let config = match etcd_config(endpoints) {
        Ok(c) => c,
        Err(e) => {
            return endpoints
                .iter()
                .map(|ep| (ep.clone(), Err(format!("{e:#}"))))
                .collect()
        }
    };
    match EtcdStore::connect(config).await {
        Ok(store) => store
            .endpoint_health()
            .await
            .into_iter()
            .map(|(ep, r)| {
                (
                    ep,
                    r.map(|l| format!("leader {l:x}"))
                        .map_err(|e| e.to_string()),
                )
            })
            .collect(),
        Err(e) => endpoints
            .iter()
            .map(|ep| (ep.clone(), Err(e.to_string())))
            .collect(),
    }
}

fn etcd_config(endpoints: &[String]) -> Result<EtcdConfig> {
    let mut config = EtcdConfig::new(endpoints.iter().cloned());
    if let Ok(ns) = std::env::var("ESI_ETCD_NAMESPACE") {
        config = config.with_namespace(ns);
    }
    let access = ACCESS.get().cloned().unwrap_or_default();
    let user = access
        .etcd_user
        .or_else(|| std::env::var("ESI_ETCD_USER").ok())
        .filter(|u| !u.is_empty());
    if let Some(user) = user {
        let password = std::env::var("ESI_ETCD_PASSWORD").unwrap_or_default();
        config = config.with_user(user, Secret::new(password));
    }
    let client = match (&access.etcd_cert, &access.etcd_key) {
        (Some(cert), Some(key)) => Some((
            read_pem("--etcd-cert", cert)?,
            Secret::new(read_pem("--etcd-key", key)?),
        )),
        (None, None) => None,
        _ => bail!("--etcd-cert and --etcd-key go together"),
    };
    let ca_pem = match &access.etcd_cacert {
        Some(p) => Some(read_pem("--etcd-cacert", p)?),
        None => None,
    };
    if ca_pem.is_some() || client.is_some() {
        config = config.with_tls(TlsConfig {
            ca_pem,
            client,
            domain: None,
        });
    }
    Ok(config)
}

/// Connects to etcd at `endpoints`. `ESI_ETCD_NAMESPACE` prefixes every key (several systems
/// or tests on one etcd); `--etcd-user` (`ESI_ETCD_USER`) / `ESI_ETCD_PASSWORD` authenticate;
/// `--etcd-cacert`, `--etcd-cert`, `--etcd-key` (`ESI_ETCD_CACERT`, `…_CERT`, `…_KEY`) for TLS.
pub async fn etcd(endpoints: &[String]) -> Result<Arc<dyn Store>> {
    let store = EtcdStore::connect(etcd_config(endpoints)?)
        .await
        .with_context(|| format!("connecting to etcd at {}", endpoints.join(",")))?;
    Ok(Arc::new(store))
}

/// The store of a client command: `--etcd` is required (the embedded store lives inside one
/// `esi serve` process and cannot be reached from outside).
pub async fn client_store(list: &[String]) -> Result<Arc<dyn Store>> {
    let eps = endpoints(list);
    if eps.is_empty() {
        bail!(
            "no store: pass --etcd URL[,URL...] or set ESI_ETCD_ENDPOINTS (the embedded store \
             of `esi serve` without --etcd is private to that process)"
        );
    }
    etcd(&eps).await
}
