//! One thing: esi's `Store` on a real etcd. Writes a resource the way the API server does,
//! watches `/config/` from that revision and prints the event.
//!
//! ```sh
//! bash .ci/services/10-etcd.sh start          # or any etcd v3
//! ETCD_ENDPOINTS=http://127.0.0.1:23790 cargo run --example etcd_store --features etcd
//! ```

use esi::etcd::{EtcdConfig, EtcdStore};
use esi::store::{PutMode, Store};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoints =
        std::env::var("ETCD_ENDPOINTS").unwrap_or_else(|_| "http://127.0.0.1:2379".to_string());
    let store =
        EtcdStore::connect(EtcdConfig::from_list(&endpoints).with_namespace("/example")).await?;
    let body = serde_json::json!({"id": "net-1", "name": "blue"});
    let value = esi::runtime::config_envelope(&body, 1, false);
    let key = "/config/v2.0/networks/net-1";
    let rev = store.put(key, &value, PutMode::Overwrite, None).await?;
    let mut watch = store.watch("/config/", rev).await?;
    if let Some(event) = watch.next().await {
        let event = event?;
        println!("{} at revision {}", event.key(), event.revision());
    }
    store.delete(key, None).await?;
    Ok(())
}
