//! The store conformance suite on MemoryStore (paused clock: lease expiry is deterministic).

use esi_core::store::{suite, MemoryStore, PutMode, Store};
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn memory_store_passes_the_store_suite() {
    let store = MemoryStore::new();
    suite::run_all(&store, "/suite/", &|d| Box::pin(tokio::time::sleep(d))).await;
    assert!(
        store.dump().is_empty(),
        "the suite leaves nothing behind: {:?}",
        store.dump()
    );
}

#[tokio::test(start_paused = true)]
async fn the_suite_catches_a_store_that_ignores_create_only() {
    // A deliberately broken store: Create behaves like Overwrite. The suite must notice.
    struct Broken(MemoryStore);
    #[async_trait::async_trait]
    impl Store for Broken {
        async fn get(
            &self,
            k: &str,
        ) -> Result<Option<esi_core::store::KeyValue>, esi_core::StoreError> {
            self.0.get(k).await
        }
        async fn range(
            &self,
            p: &str,
        ) -> Result<(Vec<esi_core::store::KeyValue>, i64), esi_core::StoreError> {
            self.0.range(p).await
        }
        async fn put(
            &self,
            k: &str,
            v: &str,
            _m: PutMode,
            l: Option<i64>,
        ) -> Result<i64, esi_core::StoreError> {
            self.0.put(k, v, PutMode::Overwrite, l).await
        }
        async fn delete(&self, k: &str, r: Option<i64>) -> Result<bool, esi_core::StoreError> {
            self.0.delete(k, r).await
        }
        async fn txn(
            &self,
            t: esi_core::store::Txn,
        ) -> Result<esi_core::store::TxnResponse, esi_core::StoreError> {
            self.0.txn(t).await
        }
        async fn watch(
            &self,
            p: &str,
            f: i64,
        ) -> Result<esi_core::store::Watch, esi_core::StoreError> {
            self.0.watch(p, f).await
        }
        async fn grant(&self, t: Duration) -> Result<i64, esi_core::StoreError> {
            self.0.grant(t).await
        }
        async fn keep_alive(&self, l: i64) -> Result<(), esi_core::StoreError> {
            self.0.keep_alive(l).await
        }
        async fn revoke(&self, l: i64) -> Result<(), esi_core::StoreError> {
            self.0.revoke(l).await
        }
        async fn compact(&self, r: i64) -> Result<(), esi_core::StoreError> {
            self.0.compact(r).await
        }
        async fn revision(&self) -> Result<i64, esi_core::StoreError> {
            self.0.revision().await
        }
    }
    let broken = Broken(MemoryStore::new());
    let caught = tokio::spawn(async move { suite::conditional_writes(&broken, "/b/").await }).await;
    assert!(
        caught.is_err(),
        "the suite must fail a store without create-only puts"
    );
}

#[tokio::test(start_paused = true)]
async fn lease_expiry_without_traffic_is_seen_on_the_next_operation() {
    let store = MemoryStore::new();
    let lease = store.grant(Duration::from_secs(5)).await.expect("grant");
    store
        .put("/jobs/working/j1", "uuid", PutMode::Create, Some(lease))
        .await
        .expect("claim");
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(store.get("/jobs/working/j1").await.expect("get"), None);
}
