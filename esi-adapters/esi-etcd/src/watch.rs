//! Watches that survive reconnects.
//!
//! A background task owns the etcd watch stream. It remembers the revision of the last event it
//! delivered and how many events of that revision it delivered (one transaction is one revision
//! with several events); when the stream breaks it re-creates the watch from that revision and
//! skips what was already delivered, so the caller sees every event exactly once.

use crate::{backend, EtcdStore};
use esi_core::store::{Revision, StoreError, Watch, WatchEvent};
use etcd_client::{EventType, GetOptions, WatchOptions};
use std::time::Duration;
use tokio::sync::mpsc;

type Tx = mpsc::UnboundedSender<Result<WatchEvent, StoreError>>;

/// Position of a watch: the next revision to ask for, and how many events of that revision
/// were delivered already.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    revision: Revision,
    delivered_at_revision: usize,
}

pub(crate) async fn start(
    store: EtcdStore,
    prefix: &str,
    from: Revision,
) -> Result<Watch, StoreError> {
    let from = from.max(1);
    if let Some(compacted) = compacted_before(&store, prefix, from).await? {
        return Err(StoreError::Compacted {
            requested: from,
            compacted,
        });
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let mut stream = open(&store, prefix, from).await?;
    let prefix = prefix.to_string();
    tokio::spawn(async move {
        let mut cursor = Cursor {
            revision: from,
            delivered_at_revision: 0,
        };
        let mut backoff = Duration::from_millis(100);
        loop {
            match pump(&store, &mut stream, &tx, &mut cursor).await {
                Ended::Receiver => return,
                Ended::Compacted(c) => {
                    let _ = tx.send(Err(StoreError::Compacted {
                        requested: cursor.revision,
                        compacted: c,
                    }));
                    return;
                }
                Ended::Broken(why) => {
                    tracing::warn!(prefix = %prefix, revision = cursor.revision, %why, "etcd watch broke; resuming");
                }
            }
            // Reconnect from the cursor until it works or nobody listens any more.
            loop {
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                match compacted_before(&store, &prefix, cursor.revision).await {
                    Ok(Some(c)) => {
                        let _ = tx.send(Err(StoreError::Compacted {
                            requested: cursor.revision,
                            compacted: c,
                        }));
                        return;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "etcd not back yet");
                        continue;
                    }
                }
                match open(&store, &prefix, cursor.revision).await {
                    Ok(s) => {
                        tracing::info!(prefix = %prefix, revision = cursor.revision, "etcd watch resumed");
                        stream = s;
                        backoff = Duration::from_millis(100);
                        break;
                    }
                    Err(e) => tracing::debug!(error = %e, "etcd watch not re-created yet"),
                }
            }
        }
    });
    Ok(Watch::from_channel(rx))
}

enum Ended {
    Receiver,
    Compacted(Revision),
    Broken(String),
}

/// Whether history at `from` is gone: a read at `from - 1`'s successor fails with
/// "compacted" exactly then. Returns the compaction revision when known.
async fn compacted_before(
    store: &EtcdStore,
    prefix: &str,
    from: Revision,
) -> Result<Option<Revision>, StoreError> {
    let current = {
        use esi_core::store::Store;
        store.revision().await?
    };
    if from > current {
        return Ok(None);
    }
    let mut c = store.client();
    let key = store.ns(prefix);
    let probe = c.get(
        key,
        Some(
            GetOptions::new()
                .with_prefix()
                .with_revision(from)
                .with_count_only(),
        ),
    );
    match tokio::time::timeout(store.config().request_timeout, probe).await {
        Ok(Ok(_)) => Ok(None),
        Ok(Err(e)) if e.to_string().contains("compacted") => {
            Ok(Some(compaction_revision(store, prefix, from).await))
        }
        Ok(Err(e)) => Err(backend(format!("watch: {e}"))),
        Err(_) => Err(backend("watch: no answer to the history probe")),
    }
}

/// Learns the compaction revision from the canceled watch etcd answers with.
async fn compaction_revision(store: &EtcdStore, prefix: &str, from: Revision) -> Revision {
    let attempt = async {
        let mut c = store.client();
        let opts = WatchOptions::new().with_prefix().with_start_revision(from);
        let mut s = c.watch(store.ns(prefix), Some(opts)).await.ok()?;
        while let Ok(Some(r)) = s.message().await {
            if r.compact_revision() > 0 {
                return Some(r.compact_revision());
            }
            if r.canceled() {
                break;
            }
        }
        None
    };
    tokio::time::timeout(store.config().request_timeout, attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(from)
}

struct Stream {
    // Dropping the stream (and its request half) ends the etcd watch.
    stream: etcd_client::WatchStream,
}

async fn open(store: &EtcdStore, prefix: &str, from: Revision) -> Result<Stream, StoreError> {
    // Opening a watch is idempotent: sent again (to another member) when it could not be
    // sent or met a transport error, like a read.
    let key = store.ns(prefix);
    let stream = store
        .read("watch", |mut c| {
            let key = key.clone();
            async move {
                let opts = WatchOptions::new().with_prefix().with_start_revision(from);
                c.watch(key, Some(opts)).await
            }
        })
        .await?;
    Ok(Stream { stream })
}

async fn pump(store: &EtcdStore, s: &mut Stream, tx: &Tx, cursor: &mut Cursor) -> Ended {
    loop {
        let msg = tokio::select! {
            m = s.stream.message() => m,
            () = tx.closed() => return Ended::Receiver,
        };
        let resp = match msg {
            Ok(Some(r)) => r,
            Ok(None) => return Ended::Broken("stream closed".into()),
            Err(e) => return Ended::Broken(e.to_string()),
        };
        if resp.compact_revision() > 0 {
            return Ended::Compacted(resp.compact_revision());
        }
        if resp.canceled() {
            return Ended::Broken(format!("canceled: {}", resp.cancel_reason()));
        }
        let mut skip_at: Option<(Revision, usize)> =
            Some((cursor.revision, cursor.delivered_at_revision));
        for ev in resp.events() {
            let Some(kv) = ev.kv() else { continue };
            let rev = kv.mod_revision();
            if rev < cursor.revision {
                continue;
            }
            if let Some((r, n)) = skip_at.as_mut() {
                if *r == rev && *n > 0 {
                    *n -= 1;
                    continue;
                }
            }
            let event = match ev.event_type() {
                EventType::Put => match store.kv(kv) {
                    Ok(kv) => WatchEvent::Put(kv),
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        continue;
                    }
                },
                EventType::Delete => {
                    let key = match kv.key_str() {
                        Ok(k) => store.strip(k).to_string(),
                        Err(e) => {
                            let _ = tx.send(Err(backend(format!("a key is not UTF-8: {e}"))));
                            continue;
                        }
                    };
                    WatchEvent::Delete { key, revision: rev }
                }
            };
            if rev == cursor.revision {
                cursor.delivered_at_revision += 1;
            } else {
                *cursor = Cursor {
                    revision: rev,
                    delivered_at_revision: 1,
                };
            }
            skip_at = None;
            if tx.send(Ok(event)).is_err() {
                return Ended::Receiver;
            }
        }
    }
}
