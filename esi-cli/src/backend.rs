//! Opening the store a command works on: etcd when endpoints are given.

use anyhow::{bail, Context, Result};
use esi_core::secret::Secret;
use esi_core::store::Store;
use esi_etcd::{EtcdConfig, EtcdStore};
use std::sync::Arc;

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
    match EtcdStore::connect(etcd_config(endpoints)).await {
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

fn etcd_config(endpoints: &[String]) -> EtcdConfig {
    let mut config = EtcdConfig::new(endpoints.iter().cloned());
    if let Ok(ns) = std::env::var("ESI_ETCD_NAMESPACE") {
        config = config.with_namespace(ns);
    }
    if let Ok(user) = std::env::var("ESI_ETCD_USER") {
        let password = std::env::var("ESI_ETCD_PASSWORD").unwrap_or_default();
        config = config.with_user(user, Secret::new(password));
    }
    config
}

/// Connects to etcd at `endpoints`. `ESI_ETCD_NAMESPACE` prefixes every key (several systems
/// or tests on one etcd); `ESI_ETCD_USER` / `ESI_ETCD_PASSWORD` authenticate.
pub async fn etcd(endpoints: &[String]) -> Result<Arc<dyn Store>> {
    let store = EtcdStore::connect(etcd_config(endpoints))
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
