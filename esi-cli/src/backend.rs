//! Opening the store a command works on: etcd when endpoints are given.

use anyhow::{bail, Result};
use esi_core::store::Store;
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

/// Connects to etcd at `endpoints`.
pub async fn etcd(endpoints: &[String]) -> Result<Arc<dyn Store>> {
    let _ = endpoints;
    bail!("this build of esi has no etcd adapter yet (esi-etcd)")
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
