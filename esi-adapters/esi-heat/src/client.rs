//! [`OpenStackHeat`]: the [`Heat`] trait over Heat's REST API.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use esi_core::collector::TargetService;
use esi_core::device::DeviceRegistry;
use esi_core::exec::stack::{StackOperation, StackRequest};
use esi_core::heat::local::{MONITORING_TYPE, NETCONF_TYPE};
use esi_core::heat::plugins::{MonitoringPlugin, NetconfPlugin};
use esi_core::heat::{Heat, HeatError, ResourcePlugin, StackOutcome};
use esi_core::secret::Secret;
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use tokio::sync::Semaphore;

use crate::config::{Auth, ConfigError, DeviceResources, HeatConfig};
use crate::error::{transport, CallError};
use crate::esi_mode::{DeviceDriver, Rewritten};
use crate::keystone::{self, message_of, Token};

/// One HTTP answer.
#[derive(Debug)]
struct Resp {
    status: StatusCode,
    body: String,
    location: Option<String>,
    /// Heat did not answer (transport errors, 5xx) before this answer came.
    interrupted: bool,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn message(&self) -> String {
        message_of(&self.body)
    }
}

/// How waiting for a stack operation ended.
#[derive(Debug)]
enum Waited {
    /// The operation finished (`None`: the stack is gone).
    Done(Option<StackInfo>),
    /// Heat stopped answering meanwhile and came back with the stack still in progress.
    Interrupted(StackInfo),
}

/// A stack as Heat shows it.
#[derive(Debug, Clone)]
struct StackInfo {
    id: String,
    status: String,
    reason: String,
    outputs: Vec<Value>,
    updated_time: Option<String>,
}

impl StackInfo {
    fn from_json(v: &Value) -> Option<StackInfo> {
        let s = v.get("stack")?;
        let text = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_string);
        Some(StackInfo {
            id: text("id")?,
            status: text("stack_status").unwrap_or_default(),
            reason: text("stack_status_reason").unwrap_or_default(),
            outputs: s
                .get("outputs")
                .and_then(Value::as_array)
                .map(|o| o.iter().map(normalise_output).collect())
                .unwrap_or_default(),
            updated_time: text("updated_time"),
        })
    }

    fn in_progress(&self) -> bool {
        self.status.ends_with("_IN_PROGRESS")
    }

    fn action(&self) -> &str {
        self.status.split('_').next().unwrap_or_default()
    }

    fn outcome(&self) -> StackOutcome {
        StackOutcome {
            status: self.status.clone(),
            reason: self.reason.clone(),
            outputs: self.outputs.clone(),
        }
    }
}

/// An output in the shape the state documents record: `output_key`, `output_value`,
/// `description` (then `output_error`, when Heat reports one).
fn normalise_output(o: &Value) -> Value {
    let mut m = Map::new();
    for k in ["output_key", "output_value", "description"] {
        m.insert(k.into(), o.get(k).cloned().unwrap_or(Value::Null));
    }
    if let Some(e) = o.get("output_error") {
        m.insert("output_error".into(), e.clone());
    }
    Value::Object(m)
}

fn delete_complete(reason: &str) -> StackOutcome {
    StackOutcome {
        status: "DELETE_COMPLETE".into(),
        reason: reason.to_string(),
        outputs: Vec::new(),
    }
}

/// OpenStack Heat over HTTP (see the crate documentation).
pub struct OpenStackHeat {
    config: HeatConfig,
    http: reqwest::Client,
    token: tokio::sync::Mutex<Option<Token>>,
    renewals: AtomicU64,
    conflicts: AtomicU64,
    permits: Arc<Semaphore>,
    devices: DeviceDriver,
    locks: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl fmt::Debug for OpenStackHeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenStackHeat")
            .field("keystone", &self.config.auth.auth_url())
            .field("heat_url", &self.config.heat_url)
            .field("device_resources", &self.config.device_resources)
            .field("device_types", &self.devices.types())
            .finish_non_exhaustive()
    }
}

impl OpenStackHeat {
    /// A client for `config` (no network traffic yet: the first stack call authenticates).
    pub fn new(config: HeatConfig) -> Result<Self, ConfigError> {
        if config.auth == Auth::None && config.heat_url.is_none() {
            return Err(ConfigError::Missing {
                field: "heat_url".into(),
                reason: "a Heat without Keystone needs a fixed URL".into(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            // the `/stacks/<name>` redirect is followed by hand, to the same base URL
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::Invalid {
                field: "http client".into(),
                reason: e.to_string(),
            })?;
        let permits = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
        Ok(OpenStackHeat {
            config,
            http,
            token: tokio::sync::Mutex::new(None),
            renewals: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
            permits,
            devices: DeviceDriver::default(),
            locks: Mutex::new(BTreeMap::new()),
        })
    }

    /// Registers esi's own plug-ins for the device resources (used with
    /// [`DeviceResources::Esi`]): NetconfNamedConfigs committed through `devices`,
    /// MonitoringTargets registered with `collector` — the same plug-ins as `LocalHeat`.
    pub fn with_device_plugins(
        self,
        devices: Arc<dyn DeviceRegistry>,
        collector: Arc<dyn TargetService>,
    ) -> Self {
        self.with_plugin(NETCONF_TYPE, Arc::new(NetconfPlugin::new(devices)))
            .with_plugin(MONITORING_TYPE, Arc::new(MonitoringPlugin::new(collector)))
    }

    /// Drives `resource_type` with `plugin` in [`DeviceResources::Esi`] mode (any custom type
    /// the mappings use).
    pub fn with_plugin(
        mut self,
        resource_type: impl Into<String>,
        plugin: Arc<dyn ResourcePlugin>,
    ) -> Self {
        self.devices.add(resource_type.into(), plugin);
        self
    }

    /// Drives every resource whose type matches one of `patterns` (an exact type, or a prefix
    /// ending in `*` such as `OS::Contrail::*`) with the generic plug-in in
    /// [`DeviceResources::Esi`] mode, as `LocalHeat` does: for a Heat that lacks those resource
    /// types. Types with their own plug-in (NETCONF, monitoring) keep it.
    pub fn with_esi_types<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for p in patterns {
            self.devices.add_pattern(p.into());
        }
        self
    }

    /// True when esi (not Heat) drives resources of `resource_type` in
    /// [`DeviceResources::Esi`] mode.
    pub fn esi_drives(&self, resource_type: &str) -> bool {
        self.devices.drives(resource_type)
    }

    /// How many times a Keystone token was issued again (expiry or a 401).
    pub fn token_renewals(&self) -> u64 {
        self.renewals.load(Ordering::Relaxed)
    }

    /// How many 409 Conflict answers Heat gave (retried, or a create turned into an update).
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    /// Revokes the cached token at Keystone without forgetting it, so that the next call meets
    /// a 401 and must renew (for tests of the renewal path).
    #[doc(hidden)]
    pub async fn revoke_cached_token(&self) -> Result<(), HeatError> {
        let current = self.token.lock().await.as_ref().map(|t| t.value.clone());
        if let Some(t) = current {
            keystone::revoke(&self.http, &self.config.auth, &t)
                .await
                .map_err(|e| e.into_heat(""))?;
        }
        Ok(())
    }

    fn stack_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(locks.entry(name.to_string()).or_default())
    }

    /// The current token (issuing one when none is cached, it is about to expire, or `stale`
    /// is the cached one).
    async fn token(&self, stale: Option<&Secret<String>>) -> Result<Option<Token>, CallError> {
        if self.config.auth == Auth::None {
            return Ok(None);
        }
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref() {
            if Some(&t.value) != stale && Instant::now() < t.refresh_at {
                return Ok(Some(t.clone()));
            }
            self.renewals.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("renewing the keystone token");
        }
        let t = keystone::issue(
            &self.http,
            &self.config.auth,
            self.config.region.as_deref(),
            &self.config.interface,
        )
        .await?;
        *cached = Some(t.clone());
        Ok(Some(t))
    }

    fn base_url(&self, token: Option<&Token>) -> Result<String, CallError> {
        if let Some(u) = &self.config.heat_url {
            return Ok(u.trim_end_matches('/').to_string());
        }
        token.and_then(|t| t.heat_url.clone()).ok_or_else(|| {
            CallError::Rejected(format!(
                "keystone {}: no orchestration endpoint (interface {}, region {}) in the catalog",
                self.config.auth.auth_url().unwrap_or_default(),
                self.config.interface,
                self.config.region.as_deref().unwrap_or("any")
            ))
        })
    }

    /// One exchange, renewing the token once on a 401.
    async fn call(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Resp, CallError> {
        let mut token = self.token(None).await?;
        let mut renewed = false;
        loop {
            let url = format!("{}/{}", self.base_url(token.as_ref())?, path);
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header("Accept", "application/json");
            if let Some(t) = &token {
                req = req.header("X-Auth-Token", t.value.expose());
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.map_err(|e| {
                CallError::Unavailable(format!("heat {method} {path}: {}", transport(&e)))
            })?;
            let status = resp.status();
            let location = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let text = resp.text().await.map_err(|e| {
                CallError::Unavailable(format!("heat {method} {path}: {}", transport(&e)))
            })?;
            if status == StatusCode::UNAUTHORIZED && token.is_some() && !renewed {
                tracing::info!(%method, path, "heat answered 401: renewing the keystone token once");
                let stale = token.as_ref().map(|t| t.value.clone());
                token = self.token(stale.as_ref()).await?;
                renewed = true;
                continue;
            }
            return Ok(Resp {
                status,
                body: text,
                location,
                interrupted: false,
            });
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let r = &self.config.retry;
        r.initial
            .mul_f64(1.5f64.powi(attempt.min(30) as i32))
            .min(r.max_interval)
    }

    /// [`Self::call`] retrying transport errors, 5xx and 409 with back-off; any other answer
    /// is returned.
    async fn call_retrying(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Resp, CallError> {
        self.call_with_retries(method, path, body, true).await
    }

    /// [`Self::call_retrying`]; with `retry_conflict` false a 409 is returned to the caller.
    async fn call_with_retries(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        retry_conflict: bool,
    ) -> Result<Resp, CallError> {
        let r = &self.config.retry;
        let (mut transport_failures, mut conflicts) = (0u32, 0u32);
        let mut first_failure: Option<Instant> = None;
        loop {
            let failure = match self.call(&method, path, body).await {
                Ok(resp) if resp.status == StatusCode::CONFLICT => {
                    self.conflicts.fetch_add(1, Ordering::Relaxed);
                    if !retry_conflict {
                        return Ok(resp);
                    }
                    conflicts += 1;
                    if conflicts >= r.conflict_attempts {
                        return Err(CallError::Unavailable(format!(
                            "heat {method} {path}: still 409 Conflict after {conflicts} attempts: {}",
                            resp.message()
                        )));
                    }
                    tracing::debug!(%method, path, conflicts, "heat 409 (stack locked): retrying");
                    tokio::time::sleep(self.backoff(conflicts - 1)).await;
                    continue;
                }
                Ok(resp) if resp.status.is_server_error() => CallError::Unavailable(format!(
                    "heat {method} {path}: {}: {}",
                    resp.status,
                    resp.message()
                )),
                Ok(mut resp) => {
                    resp.interrupted = transport_failures > 0;
                    return Ok(resp);
                }
                Err(CallError::Unavailable(m)) => CallError::Unavailable(m),
                Err(rejected) => return Err(rejected),
            };
            transport_failures += 1;
            let down_for = first_failure.get_or_insert_with(Instant::now).elapsed();
            if transport_failures >= r.transport_attempts && down_for >= r.unavailable_patience {
                return Err(failure);
            }
            if transport_failures == r.transport_attempts {
                tracing::warn!(%method, path, error = ?failure, patience = ?r.unavailable_patience, "heat does not answer: waiting for it");
            }
            tracing::debug!(%method, path, attempt = transport_failures, error = ?failure, "heat call failed: retrying");
            tokio::time::sleep(self.backoff(transport_failures - 1)).await;
        }
    }

    fn rejected(resp: &Resp, what: &str) -> CallError {
        let who = if resp.status == StatusCode::UNAUTHORIZED {
            "heat refused the Keystone token (401, also after renewing it)"
        } else {
            "heat refused it"
        };
        CallError::Rejected(format!(
            "{what}: {who}: {}: {}",
            resp.status,
            resp.message()
        ))
    }

    /// The stack named `name`, if it exists (`GET /stacks/<name>` → 302 → `/stacks/<name>/<id>`;
    /// a `DELETE_COMPLETE` stack does not exist).
    async fn lookup(&self, name: &str) -> Result<Option<StackInfo>, CallError> {
        let resp = self
            .call_retrying(Method::GET, &format!("stacks/{name}"), None)
            .await?;
        match resp.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_redirection() => {
                let id = resp
                    .location
                    .as_deref()
                    .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        CallError::Unavailable(format!(
                            "heat GET stacks/{name}: {s} without a stack id"
                        ))
                    })?;
                // a deleted stack may still be found by name for a while: it does not exist
                Ok(self
                    .show(name, &id)
                    .await?
                    .filter(|s| s.status != "DELETE_COMPLETE"))
            }
            s if s.is_success() => {
                Ok(StackInfo::from_json(&resp.json()).filter(|s| s.status != "DELETE_COMPLETE"))
            }
            _ => Err(Self::rejected(&resp, &format!("stack lookup {name}"))),
        }
    }

    /// `GET /stacks/<name>/<id>` (`None`: 404).
    async fn show(&self, name: &str, id: &str) -> Result<Option<StackInfo>, CallError> {
        self.show_noting(name, id).await.map(|(s, _)| s)
    }

    /// [`Self::show`], and whether Heat had stopped answering before it answered.
    async fn show_noting(
        &self,
        name: &str,
        id: &str,
    ) -> Result<(Option<StackInfo>, bool), CallError> {
        let resp = self
            .call_retrying(Method::GET, &format!("stacks/{name}/{id}"), None)
            .await?;
        let interrupted = resp.interrupted;
        let found = match resp.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => StackInfo::from_json(&resp.json()).map(Some).ok_or_else(|| {
                CallError::Unavailable(format!(
                    "heat GET stacks/{name}/{id}: unreadable stack body"
                ))
            }),
            _ => Err(Self::rejected(&resp, &format!("stack show {name}"))),
        };
        found.map(|s| (s, interrupted))
    }

    /// Waits until the stack leaves `*_IN_PROGRESS` for `action` (`None`: any action), polling
    /// with geometric back-off until `timeout`.
    async fn wait(
        &self,
        name: &str,
        id: &str,
        action: Option<&str>,
        updated_before: Option<&str>,
        timeout: Duration,
    ) -> Result<Waited, CallError> {
        let p = &self.config.poll;
        let cap = (timeout / p.max_polls.max(1))
            .max(p.initial)
            .min(p.max_interval);
        let start = Instant::now();
        let mut delay = p.initial;
        let mut polls = 0u32;
        let mut seen_in_progress = false;
        loop {
            tokio::time::sleep(delay).await;
            polls += 1;
            let (found, interrupted) = self.show_noting(name, id).await?;
            let Some(info) = found else {
                return Ok(Waited::Done(None));
            };
            if info.in_progress() && interrupted {
                // Heat stopped answering while the stack was in progress: its engine may have
                // died with it, leaving the stack in progress for good. The caller sends the
                // operation again (a convergence Heat lets it supersede the lost one).
                tracing::warn!(stack = name, status = %info.status, "heat came back with the stack still in progress: sending the operation again");
                return Ok(Waited::Interrupted(info));
            }
            if info.in_progress() {
                seen_in_progress = true;
            } else {
                let fresh = match action {
                    None => true,
                    Some(a) => {
                        info.action() == a
                            && (seen_in_progress
                                || a != "UPDATE"
                                || info.updated_time.as_deref() != updated_before)
                    }
                };
                if fresh {
                    tracing::debug!(stack = name, status = %info.status, polls, "stack operation finished");
                    return Ok(Waited::Done(Some(info)));
                }
            }
            if start.elapsed() >= timeout {
                return Err(CallError::Unavailable(format!(
                    "stack {name}: still {} after {polls} polls ({} s)",
                    info.status,
                    start.elapsed().as_secs()
                )));
            }
            delay = delay.mul_f64(p.factor).min(cap);
        }
    }

    fn timeout_of(&self, request: Option<&StackRequest>) -> Duration {
        let p = &self.config.poll;
        request
            .and_then(|r| r.timeout_mins)
            .and_then(|m| u64::try_from(m).ok())
            .filter(|m| *m > 0)
            .map(|m| Duration::from_secs(m * 60) + p.grace)
            .unwrap_or(p.default_timeout)
    }

    /// The create/update body (the template as rendered, or as rewritten for esi's device
    /// resources).
    fn body(request: &StackRequest, template: &Value, environment: &Value) -> Value {
        let mut b = Map::new();
        b.insert("template".into(), template.clone());
        b.insert(
            "parameters".into(),
            Value::Object(request.request_parameters.clone()),
        );
        if let Some(t) = request.timeout_mins {
            b.insert("timeout_mins".into(), t.into());
        }
        b.insert("disable_rollback".into(), request.disable_rollback.into());
        b.insert("environment".into(), environment.clone());
        b.insert("files".into(), json!({}));
        Value::Object(b)
    }

    /// Creates or updates the stack of `request` in Heat and waits for it.
    async fn apply_heat(
        &self,
        request: &StackRequest,
        template: &Value,
    ) -> Result<(String, StackInfo), CallError> {
        let name = request.stack_name.as_str();
        let timeout = self.timeout_of(Some(request));
        let body = Self::body(request, template, &json!({}));
        let mut existing = self.lookup(name).await?;
        for _ in 0..3 {
            match existing.take() {
                None => {
                    let mut create = body.clone();
                    if let Value::Object(m) = &mut create {
                        m.insert("stack_name".into(), name.into());
                    }
                    tracing::info!(stack = name, "heat stack create");
                    let resp = self
                        .call_retrying(Method::POST, "stacks", Some(&create))
                        .await;
                    let resp = match resp {
                        // 409 exhausted on POST: the name exists (a create raced us)
                        Err(CallError::Unavailable(m)) if m.contains("409") => {
                            existing = self.lookup(name).await?;
                            continue;
                        }
                        other => other?,
                    };
                    if !resp.status.is_success() {
                        return Err(Self::rejected(&resp, &format!("stack create {name}")));
                    }
                    let id = resp
                        .json()
                        .pointer("/stack/id")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| {
                            CallError::Unavailable(format!(
                                "stack create {name}: no id in Heat's answer"
                            ))
                        })?;
                    let info = match self.wait(name, &id, Some("CREATE"), None, timeout).await? {
                        Waited::Done(info) => info,
                        Waited::Interrupted(s) => {
                            existing = Some(s);
                            continue;
                        }
                    };
                    return info.map(|i| (id.clone(), i)).ok_or_else(|| {
                        CallError::Unavailable(format!("stack {name} vanished while being created"))
                    });
                }
                Some(s) => {
                    // no waiting for an *_IN_PROGRESS stack first: a convergence Heat accepts
                    // the update (it supersedes the running one, also one left behind by a
                    // dead engine), a legacy Heat answers 409, which is retried
                    tracing::info!(stack = name, status = %s.status, "heat stack update");
                    let path = format!("stacks/{name}/{}", s.id);
                    let resp = self.call_retrying(Method::PUT, &path, Some(&body)).await?;
                    if resp.status == StatusCode::NOT_FOUND {
                        continue; // deleted meanwhile: create it
                    }
                    if !resp.status.is_success() {
                        return Err(Self::rejected(&resp, &format!("stack update {name}")));
                    }
                    let info = match self
                        .wait(
                            name,
                            &s.id,
                            Some("UPDATE"),
                            s.updated_time.as_deref(),
                            timeout,
                        )
                        .await?
                    {
                        Waited::Done(info) => info,
                        Waited::Interrupted(again) => {
                            existing = Some(again);
                            continue;
                        }
                    };
                    return info.map(|i| (s.id.clone(), i)).ok_or_else(|| {
                        CallError::Unavailable(format!("stack {name} vanished while being updated"))
                    });
                }
            }
        }
        Err(CallError::Unavailable(format!(
            "stack {name}: created and deleted concurrently, or Heat restarted repeatedly \
             during the operation: giving up for now"
        )))
    }

    async fn delete_heat(&self, name: &str) -> Result<StackOutcome, CallError> {
        let timeout = self.timeout_of(None);
        let Some(s) = self.lookup(name).await? else {
            return Ok(delete_complete("Stack DELETE completed successfully"));
        };
        let path = format!("stacks/{name}/{}", s.id);
        for _ in 0..3 {
            tracing::info!(stack = name, "heat stack delete");
            let resp = self.call_retrying(Method::DELETE, &path, None).await?;
            if resp.status == StatusCode::NOT_FOUND {
                return Ok(delete_complete("Stack DELETE completed successfully"));
            }
            if !resp.status.is_success() {
                return Err(Self::rejected(&resp, &format!("stack delete {name}")));
            }
            return match self
                .wait(name, &s.id, Some("DELETE"), None, timeout)
                .await?
            {
                Waited::Interrupted(_) => continue,
                Waited::Done(None) => Ok(delete_complete("Stack DELETE completed successfully")),
                Waited::Done(Some(i)) if i.status == "DELETE_COMPLETE" => {
                    Ok(delete_complete(&i.reason))
                }
                Waited::Done(Some(i)) => Ok(StackOutcome {
                    outputs: Vec::new(),
                    ..i.outcome()
                }),
            };
        }
        Err(CallError::Unavailable(format!(
            "stack {name}: Heat restarted repeatedly during the delete: giving up for now"
        )))
    }

    async fn apply(&self, request: &StackRequest) -> Result<StackOutcome, HeatError> {
        if request.operation == StackOperation::Delete {
            return self.remove(&request.stack_name).await;
        }
        let name = request.stack_name.as_str();
        let text = request
            .template_text
            .as_deref()
            .ok_or_else(|| HeatError::Rejected {
                stack: name.to_string(),
                reason: "no template".into(),
            })?;
        let lock = self.stack_lock(name);
        let _guard = lock.lock().await;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HeatError::Unavailable("closed".into()))?;
        match self.config.device_resources {
            DeviceResources::Heat => {
                let (_, info) = self
                    .apply_heat(request, &Value::String(text.to_string()))
                    .await
                    .map_err(|e| e.into_heat(name))?;
                Ok(info.outcome())
            }
            DeviceResources::Esi => {
                let rewritten =
                    Rewritten::new(name, text, &request.request_parameters, &|t: &str| {
                        self.devices.drives(t)
                    })
                    .map_err(|reason| HeatError::Rejected {
                        stack: name.to_string(),
                        reason,
                    })?;
                let (id, info) = self
                    .apply_heat(request, &rewritten.template)
                    .await
                    .map_err(|e| e.into_heat(name))?;
                Ok(self
                    .devices
                    .converge(name, &id, &rewritten, info.outcome())
                    .await)
            }
        }
    }

    async fn remove(&self, name: &str) -> Result<StackOutcome, HeatError> {
        let lock = self.stack_lock(name);
        let _guard = lock.lock().await;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HeatError::Unavailable("closed".into()))?;
        if self.config.device_resources == DeviceResources::Esi {
            let current = self.lookup(name).await.map_err(|e| e.into_heat(name))?;
            if let Some(s) = current {
                if let Some(failed) = self.devices.remove(name, &s.id, &s.outputs).await {
                    return Ok(failed);
                }
            }
        }
        self.delete_heat(name).await.map_err(|e| e.into_heat(name))
    }
}

#[async_trait]
impl Heat for OpenStackHeat {
    async fn create(&self, request: &StackRequest) -> Result<StackOutcome, HeatError> {
        self.apply(request).await
    }

    async fn update(&self, request: &StackRequest) -> Result<StackOutcome, HeatError> {
        self.apply(request).await
    }

    async fn delete(&self, stack_name: &str) -> Result<StackOutcome, HeatError> {
        self.remove(stack_name).await
    }

    async fn get(&self, stack_name: &str) -> Result<Option<StackOutcome>, HeatError> {
        let info = self
            .lookup(stack_name)
            .await
            .map_err(|e| e.into_heat(stack_name))?;
        Ok(info.map(|i| {
            let mut o = i.outcome();
            crate::esi_mode::strip_device_outputs(&mut o.outputs);
            if self.config.device_resources == DeviceResources::Esi {
                self.devices
                    .resolve_stored_outputs(stack_name, &i.id, &mut o.outputs);
            }
            o
        }))
    }
}
