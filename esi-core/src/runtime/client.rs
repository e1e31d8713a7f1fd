//! What the CLI does against a running system, over any [`Store`]: apply a world's schemas,
//! heat templates and resources to `/config` as the API server does, two-step delete, list
//! resources and jobs, wait for final states, and summarise the system.

use super::driver::PROCESSES;
use super::stored::{
    gohan_schema_body, load_catalog, reduced_schema_body, template_body, HANDLERS_KEY, SCHEMAS,
    TEMPLATES,
};
use super::{config_envelope, decode_config, RuntimeError};
use crate::catalog::{Catalog, LoadError};
use crate::expand::SeededSuffixes;
use crate::keys;
use crate::model::{Job, ResourceRef};
use crate::plan::{plan_world, PlanOptions};
use crate::store::{PutMode, Store, StoreError, WatchEvent};
use crate::world::{World, WorldBuilder};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use thiserror::Error;

/// Errors of the client operations.
#[derive(Debug, Error)]
pub enum ClientError {
    /// A document could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `esi plan` rejects the world: nothing was written.
    #[error("refused, nothing written: {} resource(s) would fail:\n  {}", .0.len(), .0.join("\n  "))]
    Refused(Vec<String>),
    /// The world (what is stored plus what is applied) fails the one validation `esi expand`,
    /// `plan` and `run` use: nothing was written.
    #[error("refused, nothing written: {0}")]
    Invalid(#[from] crate::validate::Invalid),
    /// No schema for the type.
    #[error("unknown resource type `{0}` (apply its schema first)")]
    UnknownType(String),
    /// No such resource.
    #[error("{0} does not exist")]
    Missing(String),
    /// A stored value is not what esi writes.
    #[error("{resource}: {reason}")]
    Malformed {
        /// The key or resource.
        resource: String,
        /// Why.
        reason: String,
    },
    /// `--wait` ran out of time.
    #[error("timed out waiting for: {0}")]
    Timeout(String),
}

impl From<RuntimeError> for ClientError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::Store(s) => ClientError::Store(s),
            other => ClientError::Malformed {
                resource: "runtime".into(),
                reason: other.to_string(),
            },
        }
    }
}

/// The documents of one `esi apply`: world documents (schemas, `gohan_schemas`,
/// `heat_templates`, `resources`, `handlers`) merged in the order added.
#[derive(Debug, Default)]
pub struct ApplySet {
    builder: WorldBuilder,
    handlers: Option<Value>,
    schemas: BTreeMap<String, Value>,
    templates: BTreeMap<String, Value>,
    resources: Vec<ResourceRef>,
}

impl ApplySet {
    /// Adds one document; `origin` (a file name) names it in errors.
    pub fn add(&mut self, doc: &Value, origin: &str) -> Result<(), LoadError> {
        self.builder.merge(doc, origin)?;
        if let Some(h) = doc.get("handlers") {
            self.handlers = Some(serde_json::json!({"id": "default", "handlers": h}));
        }
        match doc.get("schemas") {
            Some(Value::Object(m)) => {
                for (ty, s) in m {
                    self.schemas.insert(ty.clone(), reduced_schema_body(ty, s));
                }
            }
            Some(Value::Array(list)) => self.add_gohan(list),
            _ => {}
        }
        if let Some(Value::Array(list)) = doc.get("gohan_schemas") {
            self.add_gohan(list);
        }
        if let Some(Value::Object(m)) = doc.get("heat_templates") {
            for (id, t) in m {
                self.templates.insert(id.clone(), template_body(id, t));
            }
        }
        if let Some(Value::Object(by_type)) = doc.get("resources") {
            for (ty, ids) in by_type {
                for id in ids.as_object().into_iter().flat_map(|m| m.keys()) {
                    let r = ResourceRef::new(ty.clone(), id.clone());
                    if !self.resources.contains(&r) {
                        self.resources.push(r);
                    }
                }
            }
        }
        Ok(())
    }

    fn add_gohan(&mut self, list: &[Value]) {
        for s in list {
            if let Some(id) = s.get("id").and_then(Value::as_str) {
                self.schemas.insert(id.to_string(), gohan_schema_body(s));
            }
        }
    }

    /// The resources of the set.
    pub fn resources(&self) -> &[ResourceRef] {
        &self.resources
    }
}

/// What apply did to one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// Stored at version 1.
    Created,
    /// Stored at this version.
    Updated(u64),
    /// Same body: nothing written.
    Unchanged,
}

/// One line of an apply report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyLine {
    /// `schema/<type>`, `heat_template/<id>`, `handlers/default` or `<type>/<id>`.
    pub what: String,
    /// The stored version after apply.
    pub version: u64,
    /// What happened.
    pub outcome: Applied,
}

/// Stores `body` at `key` in the `/config` envelope: version 1 when new, the next version when
/// the body differs (or the resource was marked for deletion), nothing when unchanged.
pub async fn upsert(
    store: &dyn Store,
    key: &str,
    body: &Value,
) -> Result<(Applied, u64), ClientError> {
    loop {
        let current = store.get(key).await?;
        let (mode, version) = match &current {
            None => (PutMode::Create, 1),
            Some(kv) => {
                let c = decode_config(&kv.value).map_err(|reason| ClientError::Malformed {
                    resource: key.to_string(),
                    reason,
                })?;
                if &c.body == body && !c.marked_for_deletion {
                    return Ok((Applied::Unchanged, c.version));
                }
                (PutMode::Update(kv.mod_revision), c.version + 1)
            }
        };
        match store
            .put(key, &config_envelope(body, version, false), mode, None)
            .await
        {
            Ok(_) if version == 1 => return Ok((Applied::Created, 1)),
            Ok(_) => return Ok((Applied::Updated(version), version)),
            // Someone else wrote in between: read again.
            Err(StoreError::AlreadyExists(_)) | Err(StoreError::Precondition { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The stored world: the catalog and every live resource under `/config`.
pub async fn stored_world(store: &dyn Store) -> Result<World, ClientError> {
    let catalog = load_catalog(store, &Catalog::default()).await?;
    let mut world = World {
        catalog,
        ..World::default()
    };
    for schema in world.catalog.schemas.values() {
        let (kvs, _) = store.range(&format!("/config{}/", schema.prefix)).await?;
        for kv in kvs {
            let Some(id) = kv.key.rsplit('/').next() else {
                continue;
            };
            if let Ok(c) = decode_config(&kv.value) {
                let mut r = crate::model::Resource::new(schema.id.clone(), id, c.body, c.version);
                r.marked_for_deletion = c.marked_for_deletion;
                world.resources.insert(r);
            }
        }
    }
    Ok(world)
}

/// Applies a set: checks the stored world with the set merged in as `esi plan` would (refusing,
/// before writing anything, when a resource of the set would fail), then writes the handler list,
/// schemas, heat templates and resources (relations first).
pub async fn apply(store: &dyn Store, set: ApplySet) -> Result<Vec<ApplyLine>, ClientError> {
    let ApplySet {
        builder,
        handlers,
        schemas,
        templates,
        resources,
    } = set;
    let applied = builder.build();
    let mut world = stored_world(store).await?;
    if !applied.catalog.handlers.is_empty() {
        world.catalog.handlers = applied.catalog.handlers.clone();
    }
    world
        .catalog
        .schemas
        .extend(applied.catalog.schemas.clone());
    world
        .catalog
        .templates
        .extend(applied.catalog.templates.clone());
    for r in applied.resources.iter() {
        world.resources.insert(r.clone());
    }
    if !resources.is_empty() {
        crate::validate::validate(&world)?;
    }
    for r in &resources {
        if !world.catalog.schemas.contains_key(&r.resource_type) {
            return Err(ClientError::UnknownType(r.resource_type.clone()));
        }
    }
    let mine: BTreeSet<&ResourceRef> = resources.iter().collect();
    let plan = plan_world(&world, &mut SeededSuffixes::new(0), PlanOptions::default());
    let mut refused = Vec::new();
    for p in &plan.resources {
        if mine.contains(&p.resource) && p.error_count() > 0 {
            let mut why: Vec<String> = p.error.iter().cloned().collect();
            for j in &p.jobs {
                why.extend(j.errors.iter().cloned());
            }
            refused.push(format!("{}: {}", p.resource, why.join("; ")));
        }
    }
    if !refused.is_empty() {
        return Err(ClientError::Refused(refused));
    }
    let mut lines = Vec::new();
    if let Some(h) = handlers {
        let (outcome, version) = upsert(store, HANDLERS_KEY, &h).await?;
        lines.push(ApplyLine {
            what: "handlers/default".into(),
            version,
            outcome,
        });
    }
    for (ty, body) in &schemas {
        let (outcome, version) = upsert(store, &format!("{SCHEMAS}/{ty}"), body).await?;
        lines.push(ApplyLine {
            what: format!("schema/{ty}"),
            version,
            outcome,
        });
    }
    for (id, body) in &templates {
        let (outcome, version) = upsert(store, &format!("{TEMPLATES}/{id}"), body).await?;
        lines.push(ApplyLine {
            what: format!("heat_template/{id}"),
            version,
            outcome,
        });
    }
    for key in world.processing_order() {
        if !mine.contains(&key) {
            continue;
        }
        let (Some(r), Some(schema)) = (
            applied.resources.get(&key.resource_type, &key.resource_id),
            world.catalog.schemas.get(&key.resource_type),
        ) else {
            continue;
        };
        let (outcome, version) =
            upsert(store, &schema.config_key(&key.resource_id), &r.body).await?;
        lines.push(ApplyLine {
            what: key.to_string(),
            version,
            outcome,
        });
    }
    Ok(lines)
}

/// First step of the two-step delete: the next version marked for deletion. Returns it.
pub async fn delete(store: &dyn Store, resource: &ResourceRef) -> Result<u64, ClientError> {
    let catalog = load_catalog(store, &Catalog::default()).await?;
    let schema = catalog
        .schemas
        .get(&resource.resource_type)
        .ok_or_else(|| ClientError::UnknownType(resource.resource_type.clone()))?;
    let key = schema.config_key(&resource.resource_id);
    loop {
        let kv = store
            .get(&key)
            .await?
            .ok_or_else(|| ClientError::Missing(resource.to_string()))?;
        let c = decode_config(&kv.value).map_err(|reason| ClientError::Malformed {
            resource: resource.to_string(),
            reason,
        })?;
        if c.marked_for_deletion {
            return Ok(c.version);
        }
        let v = c.version + 1;
        match store
            .put(
                &key,
                &config_envelope(&c.body, v, true),
                PutMode::Update(kv.mod_revision),
                None,
            )
            .await
        {
            Ok(_) => return Ok(v),
            Err(StoreError::Precondition { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// One resource as `esi get` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceStatus {
    /// Type.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// Id.
    pub id: String,
    /// Config version.
    pub version: u64,
    /// Marked for deletion (two-step delete in progress).
    pub marked_for_deletion: bool,
    /// `/state` version.
    pub state_version: Option<u64>,
    /// `/state` worker_state.
    pub worker_state: Option<String>,
    /// `/state` orchestration_state.
    pub orchestration_state: Option<String>,
    /// The `/monitoring` document.
    pub monitoring: Option<Value>,
    /// The `/state` error text.
    pub error: Option<String>,
    /// Jobs of this resource still queued or running.
    pub jobs: usize,
}

impl ResourceStatus {
    /// Final: the state is for the current config version and no job of the resource is left.
    pub fn is_final(&self) -> bool {
        self.jobs == 0 && self.state_version == Some(self.version) && self.worker_state.is_some()
    }

    /// Final in a `*_ERROR` state.
    pub fn is_error(&self) -> bool {
        self.worker_state
            .as_deref()
            .is_some_and(|s| s.ends_with("_ERROR"))
    }
}

/// The resources of `filter` (`None`: all; a type; a type and id), sorted by type and id.
pub async fn get(
    store: &dyn Store,
    filter: Option<&ResourceRef>,
    type_only: Option<&str>,
) -> Result<Vec<ResourceStatus>, ClientError> {
    let catalog = load_catalog(store, &Catalog::default()).await?;
    let jobs = list_jobs(store).await?;
    let mut per_resource: BTreeMap<ResourceRef, usize> = BTreeMap::new();
    for j in &jobs {
        *per_resource.entry(j.resource.clone()).or_default() += 1;
    }
    let mut out = Vec::new();
    let wanted_type = filter.map(|r| r.resource_type.as_str()).or(type_only);
    if let Some(t) = wanted_type {
        if !catalog.schemas.contains_key(t) {
            return Err(ClientError::UnknownType(t.to_string()));
        }
    }
    for schema in catalog.schemas.values() {
        if wanted_type.is_some_and(|t| t != schema.id) {
            continue;
        }
        let (configs, _) = store.range(&format!("/config{}/", schema.prefix)).await?;
        for kv in configs {
            let Some(id) = kv.key.rsplit('/').next() else {
                continue;
            };
            if filter.is_some_and(|f| f.resource_id != id) {
                continue;
            }
            let Ok(c) = decode_config(&kv.value) else {
                continue;
            };
            let json = |v: Option<crate::store::KeyValue>| {
                v.and_then(|kv| serde_json::from_str::<Value>(&kv.value).ok())
            };
            let state = json(store.get(&keys::state(&schema.prefix, id)).await?);
            let monitoring = json(store.get(&keys::monitoring(&schema.plural, id)).await?);
            let text = |p: &str| {
                state
                    .as_ref()
                    .and_then(|s| s.pointer(p))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let key = ResourceRef::new(schema.id.clone(), id);
            out.push(ResourceStatus {
                resource_type: schema.id.clone(),
                id: id.to_string(),
                version: c.version,
                marked_for_deletion: c.marked_for_deletion,
                state_version: state
                    .as_ref()
                    .and_then(|s| s.get("version"))
                    .and_then(Value::as_u64),
                worker_state: text("/state/worker_state"),
                orchestration_state: text("/state/orchestration_state"),
                monitoring,
                error: text("/error").filter(|e| !e.is_empty()),
                jobs: per_resource.get(&key).copied().unwrap_or(0),
            });
        }
    }
    if let Some(f) = filter {
        if out.is_empty() {
            return Err(ClientError::Missing(f.to_string()));
        }
    }
    Ok(out)
}

/// One job as `esi jobs` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStatus {
    /// Job id.
    pub id: String,
    /// `waiting`, `ready`, `working`, `finished` or `orphaned` (in no queue).
    pub queue: String,
    /// The resource.
    pub resource: ResourceRef,
    /// Job action.
    pub action: String,
    /// Config version.
    pub version: u64,
    /// Jobs it waits for.
    pub dependencies: Vec<String>,
    /// The process holding the claim (working jobs).
    pub holder: Option<String>,
}

/// Every job in `/jobs/all`, with its queue and, when claimed, the holding process.
pub async fn list_jobs(store: &dyn Store) -> Result<Vec<JobStatus>, ClientError> {
    let (kvs, _) = store.range("/jobs/").await?;
    let mut queue: BTreeMap<String, String> = BTreeMap::new();
    let mut lease_of: BTreeMap<String, i64> = BTreeMap::new();
    let mut records = Vec::new();
    for kv in kvs {
        let Some(rest) = kv.key.strip_prefix("/jobs/") else {
            continue;
        };
        let Some((q, id)) = rest.split_once('/') else {
            continue;
        };
        match q {
            "all" => records.push((id.to_string(), kv.value)),
            "working" => {
                if let Some(l) = kv.lease {
                    lease_of.insert(id.to_string(), l);
                }
                queue.insert(id.to_string(), q.to_string());
            }
            _ => {
                // finished wins over working (a worker writes finished before dropping working)
                if q != "working" || !queue.contains_key(id) {
                    queue.insert(id.to_string(), q.to_string());
                }
            }
        }
    }
    let holders = lease_holders(store).await?;
    let mut out = Vec::new();
    for (id, value) in records {
        let job = serde_json::from_str::<Value>(&value)
            .ok()
            .and_then(|v| v.get(1).cloned())
            .and_then(|j| serde_json::from_value::<Job>(j).ok());
        let Some(job) = job else {
            continue;
        };
        out.push(JobStatus {
            queue: queue.get(&id).cloned().unwrap_or_else(|| "orphaned".into()),
            resource: job.resource(),
            action: format!("{:?}", job.action).to_lowercase(),
            version: job.version,
            dependencies: job.dependency.clone(),
            holder: lease_of.get(&id).and_then(|l| holders.get(l)).cloned(),
            id,
        });
    }
    Ok(out)
}

async fn lease_holders(store: &dyn Store) -> Result<BTreeMap<i64, String>, ClientError> {
    let mut out = BTreeMap::new();
    for p in processes(store).await? {
        for l in p
            .get("worker_leases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(l), Some(n)) = (l.as_i64(), p.get("name").and_then(Value::as_str)) {
                out.insert(l, n.to_string());
            }
        }
    }
    Ok(out)
}

/// The live process registrations (`/esi/processes/*`).
pub async fn processes(store: &dyn Store) -> Result<Vec<Value>, ClientError> {
    let (kvs, _) = store.range(&format!("{PROCESSES}/")).await?;
    Ok(kvs
        .into_iter()
        .filter_map(|kv| serde_json::from_str(&kv.value).ok())
        .collect())
}

/// The system at a glance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemStatus {
    /// The leading manager's name.
    pub leader: Option<String>,
    /// Live processes (their registrations).
    pub processes: Vec<Value>,
    /// Jobs per queue.
    pub queues: BTreeMap<String, usize>,
    /// Resources, and how many are final, in error, pending.
    pub resources: usize,
    /// Final resources.
    pub final_resources: usize,
    /// Resources in a `*_ERROR` state.
    pub errors: usize,
    /// The store's revision.
    pub revision: i64,
}

/// Reads the system status.
pub async fn status(store: &dyn Store) -> Result<SystemStatus, ClientError> {
    let leader = store.get(keys::JOB_MANAGER_ID).await?.map(|kv| kv.value);
    let jobs = list_jobs(store).await?;
    let mut queues: BTreeMap<String, usize> = ["waiting", "ready", "working", "finished"]
        .iter()
        .map(|q| (q.to_string(), 0))
        .collect();
    for j in &jobs {
        *queues.entry(j.queue.clone()).or_default() += 1;
    }
    let rows = get(store, None, None).await?;
    Ok(SystemStatus {
        leader,
        processes: processes(store).await?,
        queues,
        resources: rows.len(),
        final_resources: rows.iter().filter(|r| r.is_final()).count(),
        errors: rows.iter().filter(|r| r.is_final() && r.is_error()).count(),
        revision: store.revision().await?,
    })
}

/// Waits until every resource of `wanted` is final (or gone, after a delete); woken by a watch
/// on the store, re-checking at least every `recheck`. Returns the final rows.
pub async fn wait_final(
    store: &dyn Store,
    wanted: &[ResourceRef],
    timeout: Option<Duration>,
    recheck: Duration,
) -> Result<Vec<ResourceStatus>, ClientError> {
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let mut watch = store.watch("/", store.revision().await? + 1).await?;
    loop {
        let rows = get(store, None, None).await?;
        let by_key: BTreeMap<ResourceRef, &ResourceStatus> = rows
            .iter()
            .map(|r| (ResourceRef::new(r.resource_type.clone(), r.id.clone()), r))
            .collect();
        let pending: Vec<String> = wanted
            .iter()
            .filter(|k| by_key.get(*k).is_some_and(|r| !r.is_final()))
            .map(ToString::to_string)
            .collect();
        if pending.is_empty() {
            return Ok(wanted
                .iter()
                .filter_map(|k| by_key.get(k).map(|r| (*r).clone()))
                .collect());
        }
        let sleep = match deadline {
            Some(d) if tokio::time::Instant::now() >= d => {
                return Err(ClientError::Timeout(pending.join(", ")))
            }
            Some(d) => recheck.min(d - tokio::time::Instant::now()),
            None => recheck,
        };
        tokio::select! {
            ev = watch.next() => {
                if !matches!(ev, Some(Ok(_))) {
                    watch = store.watch("/", store.revision().await? + 1).await?;
                }
                // Let a burst of writes settle before listing again.
                tokio::time::sleep(Duration::from_millis(20)).await;
                while watch.try_next().is_some() {}
            }
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

/// One change `esi watch` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceChange {
    /// The store revision of the change.
    pub revision: i64,
    /// `config`, `state` or `monitoring`.
    pub kind: &'static str,
    /// The resource.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// Its id.
    pub id: String,
    /// True when the key was removed.
    pub deleted: bool,
    /// The document's version.
    pub version: Option<u64>,
    /// `config`: marked for deletion.
    pub marked_for_deletion: bool,
    /// `state`: worker_state.
    pub worker_state: Option<String>,
    /// `state`: orchestration_state.
    pub orchestration_state: Option<String>,
    /// `state`: the error text; `monitoring`: the status document.
    pub detail: Option<Value>,
}

/// Describes a store event as a resource change (`None` for keys that are not a resource's
/// `/config`, `/state` or `/monitoring` document, or outside `filter`).
pub fn describe_change(
    catalog: &Catalog,
    ev: &WatchEvent,
    filter_type: Option<&str>,
    filter_id: Option<&str>,
) -> Option<ResourceChange> {
    let key = ev.key();
    let (kind, rest) = if let Some(r) = key.strip_prefix("/config") {
        ("config", r)
    } else if let Some(r) = key.strip_prefix("/state") {
        ("state", r)
    } else if let Some(r) = key.strip_prefix("/monitoring") {
        ("monitoring", r)
    } else {
        return None;
    };
    let (prefix, id) = rest.rsplit_once('/')?;
    let schema = catalog.schemas.values().find(|s| {
        if kind == "monitoring" {
            prefix == format!("/v2.0/{}", s.plural)
        } else {
            prefix == s.prefix
        }
    })?;
    if filter_type.is_some_and(|t| t != schema.id) || filter_id.is_some_and(|i| i != id) {
        return None;
    }
    let mut change = ResourceChange {
        revision: ev.revision(),
        kind,
        resource_type: schema.id.clone(),
        id: id.to_string(),
        deleted: true,
        version: None,
        marked_for_deletion: false,
        worker_state: None,
        orchestration_state: None,
        detail: None,
    };
    let WatchEvent::Put(kv) = ev else {
        return Some(change);
    };
    change.deleted = false;
    let doc: Value = serde_json::from_str(&kv.value).unwrap_or(Value::Null);
    change.version = doc.get("version").and_then(Value::as_u64);
    let text = |p: &str| doc.pointer(p).and_then(Value::as_str).map(str::to_string);
    match kind {
        "config" => {
            change.marked_for_deletion = doc
                .get("marked_for_deletion")
                .and_then(Value::as_bool)
                .unwrap_or(false);
        }
        "state" => {
            change.worker_state = text("/state/worker_state");
            change.orchestration_state = text("/state/orchestration_state");
            change.detail = text("/error").filter(|e| !e.is_empty()).map(Value::String);
        }
        _ => {
            let mut d = doc.clone();
            if let Some(m) = d.as_object_mut() {
                m.remove("version");
            }
            change.detail = Some(d);
        }
    }
    Some(change)
}
