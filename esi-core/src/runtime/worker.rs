//! The heat worker: claims ready jobs, turns them into stack operations, records the outcome
//! (`shared/spec/jobs.md` §6.2–6.4, `execution.md`).
//!
//! A claim is an atomic create of `/jobs/working/<id>` bound to the worker's lease, so the job
//! of a worker that dies is put back to ready by the manager when the lease expires. Every step
//! is idempotent per (resource, version): Heat creates-or-updates by stack name, documents are
//! overwritten, deletes tolerate missing keys. A failed stack is recorded on the resource's
//! `/state` after each attempt and retried with exponential backoff and jitter up to
//! `max_attempts`; then the job finishes as failed and the resource stays in its `*_ERROR` state
//! until an operator changes it again.

use super::{apply_ops, RuntimeError, SimRng};
use crate::catalog::{Catalog, HEAT_WORKER};
use crate::clock::{Clock, Timestamp};
use crate::exec::job::Job as ExecJob;
use crate::exec::stack::{build_stack_request, HeatTemplate as ExecTemplate, StackOperation};
use crate::exec::state::{state_writes, worker_error_writes, EtcdOp, StackResult};
use crate::exec::template_path::TemplatePath as ExecPath;
use crate::heat::{Heat, HeatError, StackOutcome};
use crate::keys;
use crate::model::{Job, JobParam, ParamType};
use crate::store::{Compare, LeaseId, PutMode, Store, StoreError, Txn, TxnOp};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// Tunables.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The handler whose jobs this worker takes.
    pub handler: String,
    /// TTL of the claim lease (recorded: 60 s, refreshed every 30 s).
    pub claim_ttl: Duration,
    /// Attempts of a failing stack before the job is failed.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt, plus up to 50 % jitter.
    pub backoff: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            handler: HEAT_WORKER.to_string(),
            claim_ttl: Duration::from_secs(60),
            max_attempts: 3,
            backoff: Duration::from_secs(2),
        }
    }
}

enum Stage {
    /// Claimed; run (again) once the clock reaches `not_before`.
    Claimed {
        job: Job,
        attempt: u32,
        not_before: Timestamp,
    },
    /// Ran; these writes and this outcome remain to be recorded.
    Ran {
        job: Job,
        ops: Vec<EtcdOp>,
        failure: Option<String>,
    },
}

/// One worker (one job slot).
pub struct Worker {
    name: String,
    store: Arc<dyn Store>,
    heat: Arc<dyn Heat>,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
    rng: SimRng,
    lease: Option<LeaseId>,
    stage: Option<Stage>,
    retries: u64,
    claims: u64,
}

impl Worker {
    /// A worker named `name`.
    pub fn new(
        name: impl Into<String>,
        store: Arc<dyn Store>,
        heat: Arc<dyn Heat>,
        catalog: Arc<Catalog>,
        clock: Arc<dyn Clock>,
        config: WorkerConfig,
        seed: u64,
    ) -> Self {
        Self {
            name: name.into(),
            store,
            heat,
            catalog,
            clock,
            config,
            rng: SimRng::new(seed),
            lease: None,
            stage: None,
            retries: 0,
            claims: 0,
        }
    }

    /// Replaces the catalog (schemas and templates changed while running).
    pub fn set_catalog(&mut self, catalog: Arc<Catalog>) {
        self.catalog = catalog;
    }

    /// Stack retries so far.
    pub fn retries(&self) -> u64 {
        self.retries
    }

    /// Jobs claimed so far.
    pub fn claims(&self) -> u64 {
        self.claims
    }

    /// The id of the job it holds, if any.
    pub fn current_job(&self) -> Option<&str> {
        match &self.stage {
            Some(Stage::Claimed { job, .. }) | Some(Stage::Ran { job, .. }) => Some(&job.id),
            None => None,
        }
    }

    /// True while the held job waits for a retry (nothing is in progress: safe to hand back).
    pub fn waiting_for_retry(&self) -> bool {
        self.next_deadline().is_some()
    }

    /// Hands the held job back (shutdown): revokes the claim lease, so the claim disappears
    /// and the manager puts the job back to ready for another worker.
    pub async fn hand_back(&mut self) {
        if let Some(l) = self.lease.take() {
            if let Some(id) = self.current_job() {
                tracing::info!(worker = %self.name, job = id, "handing the job back");
            }
            let _ = self.store.revoke(l).await;
        }
        self.stage = None;
    }

    /// The worker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lease its claims are bound to.
    pub fn lease(&self) -> Option<LeaseId> {
        self.lease
    }

    /// True while it holds a job.
    pub fn busy(&self) -> bool {
        self.stage.is_some()
    }

    /// When a job waiting for a retry becomes due, if any.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        match &self.stage {
            Some(Stage::Claimed { not_before, .. }) if *not_before > self.clock.now() => {
                Some(*not_before)
            }
            _ => None,
        }
    }

    /// Refreshes the claim lease (the recorded 30 s heartbeat).
    pub async fn keep_alive(&mut self) -> Result<(), RuntimeError> {
        if let Some(l) = self.lease {
            if self.store.keep_alive(l).await.is_err() {
                tracing::warn!(worker = %self.name, "claim lease lost: abandoning the current job");
                self.lease = None;
                self.stage = None;
            }
        }
        Ok(())
    }

    /// Handles at most one unit of work; returns whether there was any.
    pub async fn step(&mut self) -> Result<bool, RuntimeError> {
        if self.lease.is_none() {
            self.lease = Some(self.store.grant(self.config.claim_ttl).await?);
        }
        match self.stage.take() {
            None => self.claim().await,
            Some(Stage::Claimed {
                job,
                attempt,
                not_before,
            }) => {
                if not_before > self.clock.now() {
                    self.stage = Some(Stage::Claimed {
                        job,
                        attempt,
                        not_before,
                    });
                    return Ok(false);
                }
                // A store error (an etcd member down, a timeout) keeps the job: the claim is
                // still ours, and running it again is idempotent (Heat creates-or-updates by
                // stack name). Dropping it would leave the claim alive and the job stuck.
                if let Err(e) = self.run(job.clone(), attempt).await {
                    self.stage = Some(Stage::Claimed {
                        job,
                        attempt,
                        not_before,
                    });
                    return Err(e);
                }
                Ok(true)
            }
            Some(Stage::Ran { job, ops, failure }) => {
                // Recording is idempotent (documents overwritten, `finished` created once,
                // deletes tolerate missing keys): on a store error it is tried again.
                if let Err(e) = self.record(&job, &ops, failure.as_deref()).await {
                    self.stage = Some(Stage::Ran { job, ops, failure });
                    return Err(e);
                }
                Ok(true)
            }
        }
    }

    async fn claim(&mut self) -> Result<bool, RuntimeError> {
        let prefix = format!("{}/", keys::JOBS_READY);
        let (ready, _) = self.store.range(&prefix).await?;
        let mine: Vec<_> = ready
            .into_iter()
            .filter(|kv| kv.value == self.config.handler)
            .collect();
        if mine.is_empty() {
            return Ok(false);
        }
        let pick = &mine[self.rng.below(mine.len())];
        let Some(id) = pick.key.strip_prefix(&prefix).map(str::to_string) else {
            return Ok(false);
        };
        let working = format!("{}/{id}", keys::JOBS_WORKING);
        let claimed = self
            .store
            .txn(Txn {
                compares: vec![
                    Compare::Absent(working.clone()),
                    Compare::ModRevision(pick.key.clone(), pick.mod_revision),
                ],
                success: vec![
                    TxnOp::Put {
                        key: working,
                        value: self.rng.uuid(),
                        lease: self.lease,
                    },
                    TxnOp::Delete {
                        key: pick.key.clone(),
                    },
                    TxnOp::Get {
                        key: keys::job(&id),
                    },
                ],
                failure: vec![],
            })
            .await;
        let r = match claimed {
            Ok(r) => r,
            Err(StoreError::LeaseNotFound(_)) => {
                self.lease = None;
                return Ok(true);
            }
            Err(e) => return Err(e.into()),
        };
        if !r.succeeded {
            return Ok(true); // another worker won
        }
        let record = r.results.get(2).cloned().flatten();
        let job = record
            .and_then(|kv| serde_json::from_str::<Value>(&kv.value).ok())
            .and_then(|v| v.get(1).cloned())
            .and_then(|j| serde_json::from_value::<Job>(j).ok());
        match job {
            Some(job) => {
                tracing::info!(worker = %self.name, job = %job.id, "claimed");
                self.claims += 1;
                self.stage = Some(Stage::Claimed {
                    job,
                    attempt: 1,
                    not_before: Timestamp(i64::MIN),
                });
            }
            None => {
                tracing::warn!(worker = %self.name, job = %id, "claimed a job whose record is missing or unreadable");
                let value =
                    json!({"status": "failed", "error": "job record missing or unreadable"})
                        .to_string();
                self.finish(&id, &value).await?;
            }
        }
        Ok(true)
    }

    async fn run(&mut self, job: Job, attempt: u32) -> Result<(), RuntimeError> {
        let exec_job = match serde_json::to_value(&job)
            .ok()
            .and_then(|v| ExecJob::from_value(&v).ok())
        {
            Some(j) => j,
            None => {
                self.stage = Some(Stage::Ran {
                    job,
                    ops: Vec::new(),
                    failure: Some("job not readable by the executor".into()),
                });
                return Ok(());
            }
        };
        let outcome = match self.request(&job, &exec_job).await? {
            Err(permanent) => {
                let ops = worker_error_writes(&exec_job, &permanent);
                self.stage = Some(Stage::Ran {
                    job,
                    ops,
                    failure: Some(permanent),
                });
                return Ok(());
            }
            Ok(request) => {
                let r = match request.operation {
                    StackOperation::Create => self.heat.create(&request).await,
                    StackOperation::Update => self.heat.update(&request).await,
                    StackOperation::Delete => self.heat.delete(&request.stack_name).await,
                };
                r.map_err(|e| match e {
                    HeatError::Rejected { .. } => (e.to_string(), false),
                    HeatError::Unavailable(_) => (e.to_string(), true),
                })
            }
        };
        let (ops, failure, retryable) = match outcome {
            Ok(o) => {
                let failure = o.failed().then(|| format!("{}: {}", o.status, o.reason));
                let ops = self.outcome_ops(&exec_job, &o);
                (ops, failure, true)
            }
            Err((msg, retryable)) => (worker_error_writes(&exec_job, &msg), Some(msg), retryable),
        };
        match failure {
            Some(reason) if retryable && attempt < self.config.max_attempts => {
                tracing::warn!(worker = %self.name, job = %job.id, attempt, reason = %reason, "stack failed: will retry");
                self.retries += 1;
                apply_ops(self.store.as_ref(), &ops).await?;
                let base = self
                    .config
                    .backoff
                    .saturating_mul(1 << (attempt - 1).min(16));
                let jitter = base.mul_f64((self.rng.below(1000) as f64) / 2000.0);
                self.stage = Some(Stage::Claimed {
                    job,
                    attempt: attempt + 1,
                    not_before: self.clock.now().plus_seconds((base + jitter).as_secs_f64()),
                });
            }
            failure => self.stage = Some(Stage::Ran { job, ops, failure }),
        }
        Ok(())
    }

    fn outcome_ops(&self, job: &ExecJob, o: &StackOutcome) -> Vec<EtcdOp> {
        let result = StackResult {
            status: o.status.clone(),
            outputs: o.outputs.clone(),
            reason: Some(o.reason.clone()),
        };
        state_writes(job, &result).unwrap_or_else(|e| worker_error_writes(job, &e.to_string()))
    }

    /// Builds the stack request; `Ok(Err(reason))` is a permanent, per-job failure.
    async fn request(
        &mut self,
        job: &Job,
        exec_job: &ExecJob,
    ) -> Result<Result<crate::exec::stack::StackRequest, String>, RuntimeError> {
        let outputs = self.outputs_for(&job.params).await?;
        if exec_job.action.is_delete() {
            return Ok(
                build_stack_request(exec_job, None, None, &outputs).map_err(|e| e.to_string())
            );
        }
        let known = |c: &Catalog| {
            c.schemas
                .get(&job.resource_type)
                .is_some_and(|s| s.template_paths.contains_key(&job.handler))
        };
        if !known(&self.catalog) {
            // Applied while running and not seen yet: read the stored catalog once.
            let fresh = super::stored::load_catalog(self.store.as_ref(), &self.catalog).await?;
            if known(&fresh) {
                self.catalog = Arc::new(fresh);
            }
        }
        let parsed = self
            .catalog
            .schemas
            .get(&job.resource_type)
            .and_then(|s| s.template_paths.get(&job.handler));
        let Some(parsed) = parsed else {
            return Ok(Err(format!(
                "{}/{}: no template path for handler {}",
                job.resource_type, job.resource_id, job.handler
            )));
        };
        let path = ExecPath::from(parsed.clone());
        let template = match path.template_id(&exec_job.resource_input) {
            Ok(Some(id)) => {
                if !self.catalog.templates.contains_key(&id) {
                    let fresh =
                        super::stored::load_catalog(self.store.as_ref(), &self.catalog).await?;
                    self.catalog = Arc::new(fresh);
                }
                self.catalog.templates.get(&id).map(|t| ExecTemplate {
                    name: t.id.clone(),
                    template_file: t.template_file.clone(),
                    parameter_mappings: t.raw_mappings.clone(),
                })
            }
            Ok(None) => None,
            Err(e) => return Ok(Err(e.to_string())),
        };
        Ok(
            build_stack_request(exec_job, Some(&path), template.as_ref(), &outputs)
                .map_err(|e| e.to_string()),
        )
    }

    /// The stored outputs of every resource an `output_key` param (or list sub-param) names.
    async fn outputs_for(&self, params: &[JobParam]) -> Result<Map<String, Value>, RuntimeError> {
        let mut refs: Vec<(String, String)> = Vec::new();
        let mut note = |v: &Value| {
            if let (Some(t), Some(i)) = (
                v.get("resource_type").and_then(Value::as_str),
                v.get("resource_id").and_then(Value::as_str),
            ) {
                refs.push((t.to_string(), i.to_string()));
            }
        };
        for p in params {
            match p.kind {
                ParamType::OutputKey => note(&p.value),
                ParamType::List => {
                    for sub in p.value.as_array().into_iter().flatten() {
                        if sub.get("type").and_then(Value::as_str) == Some("output_key") {
                            note(sub.get("value").unwrap_or(&Value::Null));
                        }
                    }
                }
                ParamType::Value => {}
            }
        }
        let mut out = Map::new();
        for (t, i) in refs {
            let name = format!("{t}/{i}");
            if out.contains_key(&name) {
                continue;
            }
            if let Some(kv) = self.store.get(&keys::heat_stack(&t, &i)).await? {
                if let Some(list) = serde_json::from_str::<Value>(&kv.value)
                    .ok()
                    .and_then(|v| v.get("output").cloned())
                {
                    out.insert(name, list);
                }
            }
        }
        Ok(out)
    }

    async fn record(
        &mut self,
        job: &Job,
        ops: &[EtcdOp],
        failure: Option<&str>,
    ) -> Result<(), RuntimeError> {
        apply_ops(self.store.as_ref(), ops).await?;
        let value = match failure {
            None => String::new(),
            Some(reason) => {
                tracing::warn!(worker = %self.name, job = %job.id, reason, "job failed");
                json!({"status": "failed", "error": reason}).to_string()
            }
        };
        self.finish(&job.id, &value).await
    }

    async fn finish(&mut self, id: &str, value: &str) -> Result<(), RuntimeError> {
        match self
            .store
            .put(
                &format!("{}/{id}", keys::JOBS_FINISHED),
                value,
                PutMode::Create,
                None,
            )
            .await
        {
            Ok(_) | Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.store
            .delete(&format!("{}/{id}", keys::JOBS_WORKING), None)
            .await?;
        tracing::info!(worker = %self.name, job = id, "finished");
        Ok(())
    }
}
