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

/// Connects to etcd at `endpoints`. `ESI_ETCD_NAMESPACE` prefixes every key (several systems
/// or tests on one etcd); `ESI_ETCD_USER` / `ESI_ETCD_PASSWORD` authenticate.
pub async fn etcd(endpoints: &[String]) -> Result<Arc<dyn Store>> {
    let mut config = EtcdConfig::new(endpoints.iter().cloned());
    if let Ok(ns) = std::env::var("ESI_ETCD_NAMESPACE") {
        config = config.with_namespace(ns);
    }
    if let Ok(user) = std::env::var("ESI_ETCD_USER") {
        let password = std::env::var("ESI_ETCD_PASSWORD").unwrap_or_default();
        config = config.with_user(user, Secret::new(password));
    }
    let store = EtcdStore::connect(config)
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
