//! Resource plug-ins of [`super::local::LocalHeat`]: how a resource type is created, updated
//! and deleted.
//!
//! * [`NetconfPlugin`] — `OS::Contrail::NetconfNamedConfigs`: composes the properties
//!   ([`NetconfProperties::compose`]) and commits them to the router through a
//!   [`DeviceRegistry`] (devices.md §4; retried every 5 s within `lock_timeout` s).
//!   **Update** (decision D2): with `on_update: merge` the new composition is merge-loaded and
//!   the old statements stay; otherwise the statements of the old composition that the new one
//!   lacks are deleted and the new text merged, in one transaction. Changing the device replaces
//!   the resource. **Delete** (D3): exactly the statements of this resource's compositions are
//!   deleted (containers left empty are pruned), except statements another live
//!   NetconfNamedConfigs resource of this plug-in also configured on the same device.
//! * [`MonitoringPlugin`] — `ESI::Monitoring::MonitoringTarget`: registers the resolved
//!   properties with the [`Collector`](crate::collector::Collector); any property change **replaces** the target (a new id,
//!   monitoring.md §1); delete unregisters it (an unknown id is success). Attributes are the
//!   agent's response (`id`, `link`, `created_at`, …, secrets masked).
//! * [`GenericPlugin`] — every other type: succeeds; the reference is the `uuid` property when
//!   there is one, else a seeded id; `OS::Contrail::*` types get plausible attributes (`name`,
//!   `uuid`, `fq_name = ["default-domain", "default-project", <name>]` and their properties),
//!   any other attribute is `null` (like `OS::Heat::None`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use crate::collector::{CollectorError, TargetService};
use crate::device::{
    load_with_retry, statement_paths, ConfigChange, Credentials, DeviceAddress, DeviceError,
    DeviceRegistry, RetryPolicy,
};
use crate::exec::junos::{JunosError, NetconfProperties};
use crate::exec::monitor::{target_request, MonitorError, StackContext};

/// Where a plug-in call happens.
#[derive(Debug, Clone)]
pub struct ResourceContext<'a> {
    /// Stack name.
    pub stack_name: &'a str,
    /// Stack id.
    pub stack_id: &'a str,
    /// Resource name in the template.
    pub resource_name: &'a str,
    /// Resource type.
    pub resource_type: &'a str,
    /// A fresh deterministic id the plug-in may use as the physical id of a new resource.
    pub new_id: String,
}

impl ResourceContext<'_> {
    /// `<stack>/<resource>`, the label used in errors, commits and claims.
    pub fn label(&self) -> String {
        format!("{}/{}", self.stack_name, self.resource_name)
    }
}

/// What a plug-in keeps about a live resource.
#[derive(Clone, PartialEq)]
pub struct ResourceState {
    /// The reference (`get_resource`).
    pub physical_id: String,
    /// Attributes (`get_attr`).
    pub attributes: Map<String, Value>,
    /// When true, an attribute not in `attributes` is `null`; otherwise it is an error.
    pub open_attributes: bool,
    /// Plug-in private data (may hold secrets: never printed).
    pub data: Value,
}

impl fmt::Debug for ResourceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceState")
            .field("physical_id", &self.physical_id)
            .field("attributes", &self.attributes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The result of a plug-in update.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOutcome {
    /// Updated in place.
    Updated(ResourceState),
    /// Must be replaced: LocalHeat deletes the old resource and creates a new one.
    Replace,
}

/// A resource operation that failed (the resource and its stack become `*_FAILED`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The properties are unusable.
    #[error("properties: {0}")]
    Properties(String),
    /// The device refused or could not be reached.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The collector refused the target.
    #[error(transparent)]
    Collector(#[from] CollectorError),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl From<JunosError> for PluginError {
    fn from(e: JunosError) -> Self {
        PluginError::Properties(e.to_string())
    }
}

impl From<MonitorError> for PluginError {
    fn from(e: MonitorError) -> Self {
        PluginError::Properties(e.to_string())
    }
}

/// How LocalHeat drives one resource type.
#[async_trait]
pub trait ResourcePlugin: Send + Sync {
    /// Creates the resource from its resolved properties.
    async fn create(
        &self,
        ctx: &ResourceContext<'_>,
        properties: &Value,
    ) -> Result<ResourceState, PluginError>;

    /// Applies changed properties (only called when they differ). Default: replace.
    async fn update(
        &self,
        ctx: &ResourceContext<'_>,
        current: &ResourceState,
        old_properties: &Value,
        new_properties: &Value,
    ) -> Result<UpdateOutcome, PluginError> {
        let _ = (ctx, current, old_properties, new_properties);
        Ok(UpdateOutcome::Replace)
    }

    /// Deletes the resource; `properties` are the resolved properties it was last created or
    /// updated with.
    async fn delete(
        &self,
        ctx: &ResourceContext<'_>,
        current: &ResourceState,
        properties: &Value,
    ) -> Result<(), PluginError>;
}

/// Types without a plug-in (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct GenericPlugin;

#[async_trait]
impl ResourcePlugin for GenericPlugin {
    async fn create(
        &self,
        ctx: &ResourceContext<'_>,
        properties: &Value,
    ) -> Result<ResourceState, PluginError> {
        let physical_id = properties
            .get("uuid")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| ctx.new_id.clone());
        let mut attributes = Map::new();
        if ctx.resource_type.starts_with("OS::Contrail::") {
            if let Value::Object(p) = properties {
                for (k, v) in p {
                    if !crate::secret::is_secret_name(k) {
                        attributes.insert(k.clone(), v.clone());
                    }
                }
            }
            let name = ["name", "display_name"]
                .iter()
                .find_map(|k| properties.get(*k).and_then(Value::as_str))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| physical_id.clone());
            attributes.insert("name".into(), name.clone().into());
            attributes.insert("uuid".into(), physical_id.clone().into());
            attributes.insert(
                "fq_name".into(),
                json!(["default-domain", "default-project", name]),
            );
        }
        Ok(ResourceState {
            physical_id,
            attributes,
            open_attributes: true,
            data: Value::Null,
        })
    }

    async fn update(
        &self,
        ctx: &ResourceContext<'_>,
        current: &ResourceState,
        _old: &Value,
        new_properties: &Value,
    ) -> Result<UpdateOutcome, PluginError> {
        let mut state = self.create(ctx, new_properties).await?;
        if new_properties.get("uuid").and_then(Value::as_str).is_none() {
            state.physical_id = current.physical_id.clone();
            if state.attributes.contains_key("uuid") {
                state
                    .attributes
                    .insert("uuid".into(), current.physical_id.clone().into());
            }
        }
        Ok(UpdateOutcome::Updated(state))
    }

    async fn delete(
        &self,
        _: &ResourceContext<'_>,
        _: &ResourceState,
        _: &Value,
    ) -> Result<(), PluginError> {
        Ok(())
    }
}

type Claims = BTreeMap<String, BTreeMap<String, BTreeSet<Vec<String>>>>;

/// `OS::Contrail::NetconfNamedConfigs` through a [`DeviceRegistry`].
pub struct NetconfPlugin {
    registry: Arc<dyn DeviceRegistry>,
    retry_interval: Duration,
    /// device → resource label → statements it configured.
    claims: Mutex<Claims>,
}

impl fmt::Debug for NetconfPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetconfPlugin")
            .field("retry_interval", &self.retry_interval)
            .finish_non_exhaustive()
    }
}

fn paths_value(paths: &BTreeSet<Vec<String>>) -> Value {
    Value::Array(paths.iter().map(|p| json!(p)).collect())
}

fn paths_of(data: &Value) -> BTreeSet<Vec<String>> {
    data.get("paths")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|p| serde_json::from_value::<Vec<String>>(p.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

impl NetconfPlugin {
    /// A plug-in committing through `registry` (retry interval 5 s).
    pub fn new(registry: Arc<dyn DeviceRegistry>) -> Self {
        NetconfPlugin {
            registry,
            retry_interval: Duration::from_secs(5),
            claims: Mutex::new(BTreeMap::new()),
        }
    }

    /// Sets the pause between retries of a refused lock or unreachable device.
    pub fn with_retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    fn props(
        &self,
        ctx: &ResourceContext<'_>,
        v: &Value,
    ) -> Result<NetconfProperties, PluginError> {
        Ok(NetconfProperties::from_value(&ctx.label(), v)?)
    }

    fn device_key(p: &NetconfProperties) -> String {
        format!("{}:{}", p.device.device_ip, p.device.port)
    }

    async fn commit(
        &self,
        p: &NetconfProperties,
        change: &ConfigChange,
    ) -> Result<(), PluginError> {
        let device = self
            .registry
            .connect(
                &DeviceAddress {
                    host: p.device.device_ip.clone(),
                    port: Some(p.device.port),
                },
                &Credentials::Login {
                    username: p.device.username.clone(),
                    password: p.password.clone(),
                },
            )
            .await?;
        let policy = RetryPolicy {
            budget: Duration::from_secs(p.lock_timeout.unwrap_or(3000)),
            interval: self.retry_interval,
        };
        load_with_retry(device.as_ref(), change, policy).await?;
        Ok(())
    }

    fn claim(&self, device: &str, label: &str, paths: &BTreeSet<Vec<String>>) {
        if let Ok(mut c) = self.claims.lock() {
            c.entry(device.to_string())
                .or_default()
                .insert(label.to_string(), paths.clone());
        }
    }

    fn release(&self, device: &str, label: &str) {
        if let Ok(mut c) = self.claims.lock() {
            if let Some(d) = c.get_mut(device) {
                d.remove(label);
            }
        }
    }

    /// Statements claimed on `device` by resources other than `label`.
    fn claimed_by_others(&self, device: &str, label: &str) -> BTreeSet<Vec<String>> {
        self.claims
            .lock()
            .map(|c| {
                c.get(device)
                    .map(|d| {
                        d.iter()
                            .filter(|(l, _)| l.as_str() != label)
                            .flat_map(|(_, p)| p.iter().cloned())
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    fn state(
        ctx: &ResourceContext<'_>,
        p: &NetconfProperties,
        paths: &BTreeSet<Vec<String>>,
        id: String,
    ) -> ResourceState {
        ResourceState {
            physical_id: id,
            attributes: Map::new(),
            open_attributes: true,
            data: json!({"device": NetconfPlugin::device_key(p), "label": ctx.label(), "paths": paths_value(paths)}),
        }
    }
}

#[async_trait]
impl ResourcePlugin for NetconfPlugin {
    async fn create(
        &self,
        ctx: &ResourceContext<'_>,
        properties: &Value,
    ) -> Result<ResourceState, PluginError> {
        let p = self.props(ctx, properties)?;
        let composed = p.compose();
        let paths: BTreeSet<Vec<String>> = statement_paths(&composed.text)
            .map_err(|e| PluginError::Properties(format!("{}: {e}", ctx.label())))?
            .into_iter()
            .collect();
        self.commit(&p, &ConfigChange::merge(ctx.label(), &composed))
            .await?;
        let key = Self::device_key(&p);
        self.claim(&key, &ctx.label(), &paths);
        Ok(Self::state(ctx, &p, &paths, ctx.new_id.clone()))
    }

    async fn update(
        &self,
        ctx: &ResourceContext<'_>,
        current: &ResourceState,
        _old: &Value,
        new_properties: &Value,
    ) -> Result<UpdateOutcome, PluginError> {
        let p = self.props(ctx, new_properties)?;
        let key = Self::device_key(&p);
        if current.data.get("device").and_then(Value::as_str) != Some(key.as_str()) {
            return Ok(UpdateOutcome::Replace);
        }
        let composed = p.compose();
        let new_paths: BTreeSet<Vec<String>> = statement_paths(&composed.text)
            .map_err(|e| PluginError::Properties(format!("{}: {e}", ctx.label())))?
            .into_iter()
            .collect();
        let old_paths = paths_of(&current.data);
        let mut change = ConfigChange::merge(ctx.label(), &composed);
        let kept = if p.on_update.as_deref() == Some("merge") {
            old_paths.union(&new_paths).cloned().collect()
        } else {
            let others = self.claimed_by_others(&key, &ctx.label());
            change.delete = old_paths
                .difference(&new_paths)
                .filter(|x| !others.contains(*x))
                .cloned()
                .collect();
            new_paths
        };
        self.commit(&p, &change).await?;
        self.claim(&key, &ctx.label(), &kept);
        Ok(UpdateOutcome::Updated(Self::state(
            ctx,
            &p,
            &kept,
            current.physical_id.clone(),
        )))
    }

    async fn delete(
        &self,
        ctx: &ResourceContext<'_>,
        current: &ResourceState,
        properties: &Value,
    ) -> Result<(), PluginError> {
        let Some(key) = current.data.get("device").and_then(Value::as_str) else {
            return Ok(()); // never configured anything
        };
        let label = current
            .data
            .get("label")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| ctx.label());
        let others = self.claimed_by_others(key, &label);
        let paths: Vec<Vec<String>> = paths_of(&current.data)
            .into_iter()
            .filter(|x| !others.contains(x))
            .collect();
        if !paths.is_empty() {
            let p = self.props(ctx, properties)?;
            self.commit(&p, &ConfigChange::removal(label.clone(), paths))
                .await?;
        }
        self.release(key, &label);
        Ok(())
    }
}

/// `ESI::Monitoring::MonitoringTarget` through a [`Collector`](crate::collector::Collector) (or any [`TargetService`],
/// e.g. the registry shared between processes).
pub struct MonitoringPlugin {
    collector: Arc<dyn TargetService>,
}

impl std::fmt::Debug for MonitoringPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitoringPlugin").finish_non_exhaustive()
    }
}

impl MonitoringPlugin {
    /// A plug-in registering targets with `collector`.
    pub fn new(collector: Arc<dyn TargetService>) -> Self {
        MonitoringPlugin { collector }
    }
}

#[async_trait]
impl ResourcePlugin for MonitoringPlugin {
    async fn create(
        &self,
        ctx: &ResourceContext<'_>,
        properties: &Value,
    ) -> Result<ResourceState, PluginError> {
        let empty = Map::new();
        let body = target_request(
            ctx.resource_name,
            properties,
            StackContext {
                parameters: &empty,
                resources: &empty,
            },
        )?;
        let response = self.collector.create(&body).await?;
        let id = response
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok(ResourceState {
            physical_id: id,
            attributes: response.as_object().cloned().unwrap_or_default(),
            open_attributes: false,
            data: Value::Null,
        })
    }

    async fn delete(
        &self,
        _ctx: &ResourceContext<'_>,
        current: &ResourceState,
        _properties: &Value,
    ) -> Result<(), PluginError> {
        self.collector.remove(&current.physical_id).await?;
        Ok(())
    }
}
