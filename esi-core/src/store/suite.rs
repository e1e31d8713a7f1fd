//! The store conformance suite: every [`Store`] backend runs these from its tests.
//!
//! Each check takes the store and a key prefix of its own (so the suite can run against a
//! shared server), panics with a message on a violation, and leaves nothing behind under its
//! prefix. The lease check also takes a `sleep` function: real time for a server, the paused
//! tokio clock for [`super::MemoryStore`].
//!
//! ```text
//! esi_core::store::suite::run_all(&store, "/suite/", &|d| Box::pin(tokio::time::sleep(d))).await;
//! ```

use super::{Compare, PutMode, Store, StoreError, Txn, TxnOp, WatchEvent};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A sleep used by the lease check.
pub type Sleep<'a> = &'a (dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Sync);

/// Runs every check.
pub async fn run_all(store: &dyn Store, prefix: &str, sleep: Sleep<'_>) {
    put_get_delete_range(store, &format!("{prefix}basic/")).await;
    conditional_writes(store, &format!("{prefix}cond/")).await;
    transactions(store, &format!("{prefix}txn/")).await;
    watch_from_revision(store, &format!("{prefix}watch/")).await;
    compaction(store, &format!("{prefix}compact/")).await;
    leases(store, &format!("{prefix}lease/"), sleep).await;
}

fn ok<T>(r: Result<T, StoreError>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected error {e}"),
    }
}

/// Put, get, range by prefix, delete; revisions and versions.
pub async fn put_get_delete_range(s: &dyn Store, p: &str) {
    let a = format!("{p}a");
    let r1 = ok(s.put(&a, "1", PutMode::Overwrite, None).await, "put a");
    let r2 = ok(
        s.put(&a, "2", PutMode::Overwrite, None).await,
        "put a again",
    );
    assert!(r2 > r1, "revisions grow: {r1} then {r2}");
    let kv = ok(s.get(&a).await, "get a").expect("a exists");
    assert_eq!(kv.value, "2");
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (r1, r2, 2)
    );
    ok(
        s.put(&format!("{p}b"), "x", PutMode::Overwrite, None).await,
        "put b",
    );
    ok(
        s.put(&format!("{p}bb/c"), "y", PutMode::Overwrite, None)
            .await,
        "put bb/c",
    );
    ok(
        s.put(&format!("{p}zz-outside"), "z", PutMode::Overwrite, None)
            .await,
        "put sibling",
    );
    let (kvs, rev) = ok(s.range(&format!("{p}b")).await, "range b");
    let keys: Vec<&str> = kvs.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(
        keys,
        vec![format!("{p}b"), format!("{p}bb/c")],
        "range is by prefix, sorted"
    );
    assert!(rev >= r2, "range reports the store revision");
    assert!(ok(s.delete(&a, None).await, "delete a"));
    assert!(
        !ok(s.delete(&a, None).await, "delete a again"),
        "deleting an absent key is not an error"
    );
    assert_eq!(ok(s.get(&a).await, "get deleted"), None);
    let recreated = ok(s.put(&a, "3", PutMode::Overwrite, None).await, "recreate a");
    let kv = ok(s.get(&a).await, "get a").expect("a exists");
    assert_eq!(
        (kv.create_revision, kv.version),
        (recreated, 1),
        "a recreated key starts over"
    );
    cleanup(s, p).await;
}

/// Create-only puts, update-if-revision puts and delete-if-revision.
pub async fn conditional_writes(s: &dyn Store, p: &str) {
    let k = format!("{p}k");
    let r1 = ok(s.put(&k, "v1", PutMode::Create, None).await, "create");
    assert_eq!(
        s.put(&k, "v2", PutMode::Create, None).await,
        Err(StoreError::AlreadyExists(k.clone())),
        "a second create fails"
    );
    let r2 = ok(
        s.put(&k, "v2", PutMode::Update(r1), None).await,
        "update at the seen revision",
    );
    assert!(
        matches!(
            s.put(&k, "v3", PutMode::Update(r1), None).await,
            Err(StoreError::Precondition { .. })
        ),
        "an update at a stale revision fails"
    );
    assert!(
        matches!(
            s.put(&format!("{p}absent"), "v", PutMode::Update(r1), None)
                .await,
            Err(StoreError::Precondition { .. })
        ),
        "an update of an absent key fails"
    );
    assert!(
        matches!(
            s.delete(&k, Some(r1)).await,
            Err(StoreError::Precondition { .. })
        ),
        "stale delete fails"
    );
    assert_eq!(
        ok(s.get(&k).await, "get").map(|kv| kv.value),
        Some("v2".to_string()),
        "nothing was lost"
    );
    assert!(ok(
        s.delete(&k, Some(r2)).await,
        "delete at the seen revision"
    ));
    cleanup(s, p).await;
}

/// Compares, both branches, atomic multi-key writes at one revision, conflicts.
pub async fn transactions(s: &dyn Store, p: &str) {
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    let t = Txn {
        compares: vec![Compare::Absent(a.clone())],
        success: vec![
            TxnOp::Put {
                key: a.clone(),
                value: "1".into(),
                lease: None,
            },
            TxnOp::Put {
                key: b.clone(),
                value: "1".into(),
                lease: None,
            },
        ],
        failure: vec![TxnOp::Get { key: a.clone() }],
    };
    let first = ok(s.txn(t.clone()).await, "txn 1");
    assert!(first.succeeded);
    let ka = ok(s.get(&a).await, "get a").expect("a");
    let kb = ok(s.get(&b).await, "get b").expect("b");
    assert_eq!(
        ka.mod_revision, kb.mod_revision,
        "one transaction, one revision"
    );
    assert_eq!(ka.mod_revision, first.revision);
    let second = ok(s.txn(t).await, "txn 2 (conflict)");
    assert!(
        !second.succeeded,
        "the create-if-absent loses the second time"
    );
    assert_eq!(
        second.results[0].as_ref().map(|kv| kv.value.as_str()),
        Some("1"),
        "failure branch reads"
    );
    assert_eq!(
        ok(s.get(&b).await, "get b").map(|kv| kv.mod_revision),
        Some(kb.mod_revision),
        "nothing written"
    );

    // compare-and-swap racing: only the writer that saw the current revision wins
    let seen = ka.mod_revision;
    let cas = |v: &str| Txn {
        compares: vec![Compare::ModRevision(a.clone(), seen)],
        success: vec![TxnOp::Put {
            key: a.clone(),
            value: v.into(),
            lease: None,
        }],
        failure: vec![],
    };
    let w1 = ok(s.txn(cas("w1")).await, "cas w1");
    let w2 = ok(s.txn(cas("w2")).await, "cas w2");
    assert!(w1.succeeded && !w2.succeeded);
    let value_cmp = Txn {
        compares: vec![Compare::Value(a.clone(), "w1".into())],
        success: vec![
            TxnOp::Delete { key: a.clone() },
            TxnOp::Delete { key: b.clone() },
        ],
        failure: vec![],
    };
    assert!(ok(s.txn(value_cmp).await, "value compare").succeeded);
    assert_eq!(ok(s.range(p).await, "range").0.len(), 0, "both deleted");
    cleanup(s, p).await;
}

/// Watching a prefix from a past revision replays history, then follows live changes.
pub async fn watch_from_revision(s: &dyn Store, p: &str) {
    let k1 = format!("{p}one");
    let start = ok(s.put(&k1, "a", PutMode::Overwrite, None).await, "put one");
    ok(
        s.put(&format!("{p}two"), "b", PutMode::Overwrite, None)
            .await,
        "put two",
    );
    ok(
        s.put("/elsewhere-suite-watch", "x", PutMode::Overwrite, None)
            .await,
        "put outside",
    );
    ok(s.delete(&k1, None).await, "delete one");
    let mut w = ok(s.watch(p, start).await, "watch");
    let live = ok(
        s.put(&format!("{p}three"), "c", PutMode::Overwrite, None)
            .await,
        "put three",
    );
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let next = tokio::time::timeout(Duration::from_secs(10), w.next()).await;
        match next {
            Ok(Some(Ok(ev))) => seen.push(ev),
            other => panic!("watch ended early: {other:?} after {seen:?}"),
        }
    }
    let shape: Vec<(String, bool)> = seen
        .iter()
        .map(|e| {
            (
                e.key().trim_start_matches(p).to_string(),
                matches!(e, WatchEvent::Put(_)),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            ("one".into(), true),
            ("two".into(), true),
            ("one".into(), false),
            ("three".into(), true)
        ],
        "history in revision order, prefix only, then live"
    );
    assert_eq!(seen[3].revision(), live);
    assert!(seen.windows(2).all(|w| w[0].revision() < w[1].revision()));
    ok(
        s.delete("/elsewhere-suite-watch", None).await,
        "cleanup outside",
    );
    cleanup(s, p).await;
}

/// After compaction a watch from an old revision fails with `Compacted`; a relist recovers.
pub async fn compaction(s: &dyn Store, p: &str) {
    let old = ok(
        s.put(&format!("{p}k"), "1", PutMode::Overwrite, None).await,
        "put",
    );
    let now = ok(
        s.put(&format!("{p}k"), "2", PutMode::Overwrite, None).await,
        "put",
    );
    ok(s.compact(now).await, "compact");
    match s.watch(p, old).await {
        Err(StoreError::Compacted { requested, .. }) => assert_eq!(requested, old),
        Err(e) => panic!("expected Compacted, got {e}"),
        Ok(_) => panic!("expected Compacted, got a watch"),
    }
    let (kvs, rev) = ok(s.range(p).await, "relist");
    assert_eq!(kvs.len(), 1);
    assert_eq!(kvs[0].value, "2");
    let mut w = ok(s.watch(p, rev + 1).await, "watch after relist");
    ok(
        s.put(&format!("{p}k"), "3", PutMode::Overwrite, None).await,
        "put",
    );
    let ev = tokio::time::timeout(Duration::from_secs(10), w.next()).await;
    assert!(
        matches!(ev, Ok(Some(Ok(WatchEvent::Put(ref kv)))) if kv.value == "3"),
        "{ev:?}"
    );
    cleanup(s, p).await;
}

/// Keys bound to a lease vanish when it expires; keep-alive extends it; revoke deletes at once.
pub async fn leases(s: &dyn Store, p: &str, sleep: Sleep<'_>) {
    let ttl = Duration::from_secs(2);
    let lease = ok(s.grant(ttl).await, "grant");
    let k = format!("{p}owned");
    ok(
        s.put(&k, "me", PutMode::Create, Some(lease)).await,
        "put with lease",
    );
    let mut w = ok(s.watch(p, ok(s.revision().await, "rev") + 1).await, "watch");
    sleep(Duration::from_millis(1200)).await;
    ok(s.keep_alive(lease).await, "keep alive");
    sleep(Duration::from_millis(1200)).await;
    assert!(
        ok(s.get(&k).await, "get").is_some(),
        "kept alive past the first TTL"
    );
    sleep(Duration::from_secs(4)).await;
    assert_eq!(ok(s.get(&k).await, "get"), None, "gone after expiry");
    let ev = tokio::time::timeout(Duration::from_secs(10), w.next()).await;
    assert!(
        matches!(ev, Ok(Some(Ok(WatchEvent::Delete { ref key, .. }))) if key == &k),
        "expiry is a delete event: {ev:?}"
    );
    assert_eq!(
        s.keep_alive(lease).await,
        Err(StoreError::LeaseNotFound(lease))
    );
    assert!(matches!(
        s.put(&k, "late", PutMode::Overwrite, Some(lease)).await,
        Err(StoreError::LeaseNotFound(_))
    ));

    let lease2 = ok(s.grant(Duration::from_secs(30)).await, "grant 2");
    ok(
        s.put(&k, "again", PutMode::Create, Some(lease2)).await,
        "put with lease 2",
    );
    ok(s.revoke(lease2).await, "revoke");
    assert_eq!(ok(s.get(&k).await, "get"), None, "revoke deletes the keys");
    cleanup(s, p).await;
}

async fn cleanup(s: &dyn Store, p: &str) {
    if let Ok((kvs, _)) = s.range(p).await {
        for kv in kvs {
            let _ = s.delete(&kv.key, None).await;
        }
    }
}
