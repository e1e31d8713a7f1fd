//! esi's [`Store`] over a real etcd v3 cluster.
//!
//! [`EtcdStore`] implements [`esi_core::store::Store`] with the same semantics as the in-memory
//! [`esi_core::store::MemoryStore`] (both pass [`esi_core::store::suite`]): conditional puts and
//! deletes are etcd transactions, watches replay history from a revision and report a compacted
//! start revision as [`StoreError::Compacted`] (callers relist), leases are etcd leases.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use esi_core::store::{PutMode, Store};
//! use esi_etcd::{EtcdConfig, EtcdStore};
//!
//! let store = EtcdStore::connect(EtcdConfig::new(["http://127.0.0.1:2379"])).await?;
//! let rev = store.put("/config/v2.0/networks/n1", "{}", PutMode::Create, None).await?;
//! let mut watch = store.watch("/config/", rev).await?;
//! if let Some(Ok(event)) = watch.next().await {
//!     println!("{} at {}", event.key(), event.revision());
//! }
//! # Ok(()) }
//! ```
//!
//! ## Failures
//!
//! Every request is bounded by [`EtcdConfig::request_timeout`]; a request that times out or
//! meets a transport error is [`StoreError::Backend`]. As with any etcd client, **a write that
//! timed out may or may not have been applied**: callers re-read before deciding (the runtime's
//! writes are idempotent per resource version for this reason). Reads are retried once on a
//! transport error; writes never are.
//!
//! The client reconnects by itself: after an etcd restart or the loss of a cluster member,
//! requests succeed again as soon as an endpoint answers, and an open [`Watch`] resumes from the
//! last revision it delivered, so the caller sees no lost and no repeated event (if that revision
//! was compacted meanwhile, the watch yields [`StoreError::Compacted`] and ends).
//!
//! ## Namespaces
//!
//! [`EtcdConfig::namespace`] prefixes every key (like etcd's namespace proxy): several esi
//! systems, or tests, share one etcd without seeing each other's keys.

mod config;
mod watch;

pub use config::{EtcdConfig, TlsConfig};

use async_trait::async_trait;
use esi_core::store::{
    Compare, KeyValue, LeaseId, PutMode, Revision, Store, StoreError, Txn, TxnOp, TxnResponse,
    Watch,
};
use etcd_client::{
    Client, Compare as ECompare, CompareOp, GetOptions, PutOptions, Txn as ETxn, TxnOp as ETxnOp,
    TxnOpResponse,
};
use std::future::Future;
use std::time::Duration;

const BACKEND: &str = "etcd";

/// A [`Store`] on etcd v3 (3.4 or later).
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    config: EtcdConfig,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

pub(crate) fn backend(message: impl std::fmt::Display) -> StoreError {
    StoreError::Backend {
        backend: BACKEND,
        message: message.to_string(),
    }
}

/// True for errors that say nothing was decided by etcd (the request did not get through).
pub(crate) fn is_transport(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(s) => matches!(
            s.code(),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown
        ),
        _ => false,
    }
}

fn is_compacted(e: &etcd_client::Error) -> bool {
    e.to_string()
        .contains("required revision has been compacted")
}

fn is_lease_not_found(e: &etcd_client::Error) -> bool {
    e.to_string().contains("lease not found")
}

impl EtcdStore {
    /// Connects to the configured endpoints (and authenticates, if a user is set).
    pub async fn connect(config: EtcdConfig) -> Result<Self, StoreError> {
        let endpoints = config.endpoints.clone();
        if endpoints.is_empty() {
            return Err(backend("no etcd endpoints configured"));
        }
        let options = config.connect_options()?;
        let connect = Client::connect(endpoints.clone(), Some(options));
        let client = match tokio::time::timeout(config.connect_timeout, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Err(backend(format!(
                    "cannot connect to {}: {e}",
                    endpoints.join(",")
                )))
            }
            Err(_) => {
                return Err(backend(format!(
                    "cannot connect to {} within {:?}",
                    endpoints.join(","),
                    config.connect_timeout
                )))
            }
        };
        tracing::debug!(endpoints = %endpoints.join(","), namespace = %config.namespace, "etcd connected");
        Ok(Self { client, config })
    }

    /// The configuration this store was connected with.
    pub fn config(&self) -> &EtcdConfig {
        &self.config
    }

    /// The underlying `etcd-client` handle (for operations outside the [`Store`] trait, such as
    /// member status).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Per-endpoint health: `(endpoint, Ok(leader id))` or the error, each bounded by the
    /// request timeout.
    pub async fn endpoint_health(&self) -> Vec<(String, Result<u64, StoreError>)> {
        let mut out = Vec::new();
        for ep in &self.config.endpoints {
            let mut cfg = self.config.clone();
            cfg.endpoints = vec![ep.clone()];
            cfg.connect_timeout = self.config.request_timeout;
            let status = async {
                let store = EtcdStore::connect(cfg).await?;
                let mut c = store.client();
                let st = store.bounded("status", c.status()).await?;
                Ok(st.leader())
            }
            .await;
            out.push((ep.clone(), status));
        }
        out
    }

    pub(crate) fn ns(&self, key: &str) -> String {
        format!("{}{key}", self.config.namespace)
    }

    pub(crate) fn strip<'a>(&self, key: &'a str) -> &'a str {
        key.strip_prefix(self.config.namespace.as_str())
            .unwrap_or(key)
    }

    pub(crate) fn kv(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
        let key = kv
            .key_str()
            .map_err(|e| backend(format!("a key is not UTF-8: {e}")))?;
        let value = kv
            .value_str()
            .map_err(|e| backend(format!("the value of `{key}` is not UTF-8: {e}")))?;
        Ok(KeyValue {
            key: self.strip(key).to_string(),
            value: value.to_string(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
            lease: (kv.lease() != 0).then_some(kv.lease()),
        })
    }

    /// Runs one request within the request timeout; errors become [`StoreError::Backend`].
    pub(crate) async fn bounded<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, StoreError> {
        self.bounded_raw(what, fut).await?.map_err(|e| {
            tracing::debug!(error = %e, "etcd {what} failed");
            backend(format!("{what}: {e}"))
        })
    }

    async fn bounded_raw<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<Result<T, etcd_client::Error>, StoreError> {
        tokio::time::timeout(self.config.request_timeout, fut)
            .await
            .map_err(|_| {
                backend(format!(
                    "{what}: no answer within {:?} (a write may or may not have been applied)",
                    self.config.request_timeout
                ))
            })
    }

    /// Runs a request until it gets an answer, within the request timeout: a request that never
    /// left (no connection to the chosen member, e.g. one that is down or restarting) is sent
    /// again, to another member when there is one; an idempotent request is also sent again
    /// after any transport error. Returns etcd's answer or its last error.
    async fn attempt<T, F, Fut>(
        &self,
        what: &str,
        idempotent: bool,
        f: F,
    ) -> Result<Result<T, etcd_client::Error>, StoreError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        let mut pause = Duration::from_millis(50);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let outcome = match tokio::time::timeout(left, f(self.client.clone())).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(backend(format!(
                        "{what}: no answer within {:?} (a write may or may not have been applied)",
                        self.config.request_timeout
                    )))
                }
            };
            match outcome {
                Err(e)
                    if (not_sent(&e) || (idempotent && is_transport(&e)))
                        && tokio::time::Instant::now() + pause < deadline =>
                {
                    tracing::debug!(error = %e, "etcd {what}: sending again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                other => return Ok(other),
            }
        }
    }

    /// A read (idempotent: sent again after transport errors within the timeout).
    async fn read<T, F, Fut>(&self, what: &str, f: F) -> Result<T, StoreError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.attempt(what, true, f)
            .await?
            .map_err(|e| backend(format!("{what}: {e}")))
    }

    async fn etxn(&self, what: &str, txn: ETxn) -> Result<etcd_client::TxnResponse, StoreError> {
        let r = self
            .attempt(what, false, |mut c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await?;
        match r {
            Ok(r) => Ok(r),
            Err(e) if is_lease_not_found(&e) => Err(lease_from_message(&e)),
            Err(e) => Err(backend(format!("{what}: {e}"))),
        }
    }
}

/// True for errors where the request certainly never reached etcd (no connection could be
/// made), so sending it again cannot apply it twice.
fn not_sent(e: &etcd_client::Error) -> bool {
    let text = e.to_string();
    text.contains("tcp connect error")
        || text.contains("Connection refused")
        || text.contains("error trying to connect")
}

/// `requested lease not found` does not name the lease; callers that know it replace the id.
fn lease_from_message(_e: &etcd_client::Error) -> StoreError {
    StoreError::LeaseNotFound(0)
}

fn with_lease(err: StoreError, lease: Option<LeaseId>) -> StoreError {
    match (err, lease) {
        (StoreError::LeaseNotFound(0), Some(id)) => StoreError::LeaseNotFound(id),
        (e, _) => e,
    }
}

fn put_options(lease: Option<LeaseId>) -> Option<PutOptions> {
    lease.map(|l| PutOptions::new().with_lease(l))
}

fn header_revision(h: Option<&etcd_client::ResponseHeader>) -> Result<Revision, StoreError> {
    h.map(|h| h.revision())
        .ok_or_else(|| backend("response without a header"))
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let k = self.ns(key);
        let r = self
            .read("get", |mut c| {
                let k = k.clone();
                async move { c.get(k, None).await }
            })
            .await?;
        r.kvs().first().map(|kv| self.kv(kv)).transpose()
    }

    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let p = self.ns(prefix);
        let r = self
            .read("range", |mut c| {
                let p = p.clone();
                async move { c.get(p, Some(GetOptions::new().with_prefix())).await }
            })
            .await?;
        let rev = header_revision(r.header())?;
        let kvs = r
            .kvs()
            .iter()
            .map(|kv| self.kv(kv))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((kvs, rev))
    }

    async fn put(
        &self,
        key: &str,
        value: &str,
        mode: PutMode,
        lease: Option<LeaseId>,
    ) -> Result<Revision, StoreError> {
        let k = self.ns(key);
        let op = ETxnOp::put(k.clone(), value, put_options(lease));
        let compares = match mode {
            PutMode::Overwrite => vec![],
            PutMode::Create => vec![ECompare::create_revision(k.clone(), CompareOp::Equal, 0)],
            PutMode::Update(rev) => vec![ECompare::mod_revision(k.clone(), CompareOp::Equal, rev)],
        };
        let r = self
            .etxn("put", ETxn::new().when(compares).and_then(vec![op]))
            .await
            .map_err(|e| with_lease(e, lease))?;
        if !r.succeeded() {
            return Err(match mode {
                PutMode::Update(expected) => StoreError::Precondition {
                    key: key.to_string(),
                    expected,
                },
                _ => StoreError::AlreadyExists(key.to_string()),
            });
        }
        header_revision(r.header())
    }

    async fn delete(&self, key: &str, if_revision: Option<Revision>) -> Result<bool, StoreError> {
        let k = self.ns(key);
        let compares = match if_revision {
            Some(rev) => vec![ECompare::mod_revision(k.clone(), CompareOp::Equal, rev)],
            None => vec![],
        };
        let r = self
            .etxn(
                "delete",
                ETxn::new()
                    .when(compares)
                    .and_then(vec![ETxnOp::delete(k, None)]),
            )
            .await?;
        if !r.succeeded() {
            return Err(StoreError::Precondition {
                key: key.to_string(),
                expected: if_revision.unwrap_or_default(),
            });
        }
        Ok(r.op_responses().iter().any(|op| match op {
            TxnOpResponse::Delete(d) => d.deleted() > 0,
            _ => false,
        }))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        let compares: Vec<ECompare> = txn
            .compares
            .iter()
            .map(|c| match c {
                Compare::Absent(k) => ECompare::create_revision(self.ns(k), CompareOp::Equal, 0),
                Compare::ModRevision(k, rev) => {
                    ECompare::mod_revision(self.ns(k), CompareOp::Equal, *rev)
                }
                Compare::Value(k, v) => ECompare::value(self.ns(k), CompareOp::Equal, v.as_str()),
            })
            .collect();
        let ops = |ops: &[TxnOp]| -> Vec<ETxnOp> {
            ops.iter()
                .map(|op| match op {
                    TxnOp::Put { key, value, lease } => {
                        ETxnOp::put(self.ns(key), value.as_str(), put_options(*lease))
                    }
                    TxnOp::Delete { key } => ETxnOp::delete(self.ns(key), None),
                    TxnOp::Get { key } => ETxnOp::get(self.ns(key), None),
                })
                .collect()
        };
        let leases: Vec<LeaseId> = txn
            .success
            .iter()
            .chain(&txn.failure)
            .filter_map(|op| match op {
                TxnOp::Put { lease, .. } => *lease,
                _ => None,
            })
            .collect();
        let r = self
            .etxn(
                "txn",
                ETxn::new()
                    .when(compares)
                    .and_then(ops(&txn.success))
                    .or_else(ops(&txn.failure)),
            )
            .await
            .map_err(|e| with_lease(e, leases.first().copied()))?;
        let revision = header_revision(r.header())?;
        let mut results = Vec::new();
        for op in r.op_responses() {
            results.push(match op {
                TxnOpResponse::Get(g) => g.kvs().first().map(|kv| self.kv(kv)).transpose()?,
                _ => None,
            });
        }
        Ok(TxnResponse {
            succeeded: r.succeeded(),
            revision,
            results,
        })
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<Watch, StoreError> {
        watch::start(self.clone(), prefix, from).await
    }

    async fn grant(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        let secs = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let r = self
            .attempt("lease grant", false, |mut c| async move {
                c.lease_grant(secs, None).await
            })
            .await?
            .map_err(|e| backend(format!("lease grant: {e}")))?;
        if !r.error().is_empty() {
            return Err(backend(format!("lease grant: {}", r.error())));
        }
        Ok(r.id())
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        let once = |mut c: Client| async move {
            let (mut keeper, mut stream) = c.lease_keep_alive(lease).await?;
            keeper.keep_alive().await?;
            stream.message().await
        };
        match self.attempt("lease keep-alive", true, once).await? {
            Ok(Some(r)) if r.ttl() > 0 => Ok(()),
            Ok(Some(_)) => Err(StoreError::LeaseNotFound(lease)),
            Ok(None) => Err(backend(
                "lease keep-alive: the stream closed without an answer",
            )),
            Err(e) if is_lease_not_found(&e) => Err(StoreError::LeaseNotFound(lease)),
            Err(e) => Err(backend(format!("lease keep-alive: {e}"))),
        }
    }

    async fn revoke(&self, lease: LeaseId) -> Result<(), StoreError> {
        match self
            .attempt("lease revoke", true, |mut c| async move {
                c.lease_revoke(lease).await
            })
            .await?
        {
            Ok(_) => Ok(()),
            Err(e) if is_lease_not_found(&e) => Err(StoreError::LeaseNotFound(lease)),
            Err(e) => Err(backend(format!("lease revoke: {e}"))),
        }
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        match self
            .attempt("compact", true, |mut c| async move {
                c.compact(revision, None).await
            })
            .await?
        {
            Ok(_) => Ok(()),
            Err(e) if is_compacted(&e) => Ok(()),
            Err(e) => Err(backend(format!("compact: {e}"))),
        }
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        let k = self.ns("/");
        let r = self
            .read("revision", |mut c| {
                let k = k.clone();
                async move {
                    c.get(k, Some(GetOptions::new().with_count_only().with_limit(1)))
                        .await
                }
            })
            .await?;
        header_revision(r.header())
    }
}
