//! [`NetconfDevice`] (the core [`Device`] trait over a NETCONF session) and
//! [`NetconfRegistry`] (one device, hence one reused session, per host, port and user).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use esi_core::device::{
    BgpState, CommitInfo, ConfigChange, Credentials, Device, DeviceAddress, DeviceError,
    DeviceRegistry, JunosConfig, OperStatus, VrrpState,
};
use esi_core::secret::Secret;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

use crate::device_map::DeviceMap;
use crate::error::{NetconfError, Stage};
use crate::session::{Auth, HostKeyPolicy, Session, SessionOptions, Target, JUNOS_CAPABILITY};
use crate::xml::{self, escape};

/// Which RPCs carry configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Junos: `load-configuration` (text merge, set lines), `get-configuration`.
    Junos,
    /// RFC 6241: `edit-config` on the candidate with an XML payload, `get-config`.
    Generic,
}

/// How the profile is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProfileChoice {
    /// From the server capabilities (Junos when it announces
    /// `http://xml.juniper.net/netconf/junos/1.0`).
    #[default]
    Auto,
    /// Always this profile.
    Force(Profile),
}

/// Checks the device after a confirmed commit, before the confirming commit.
#[async_trait]
pub trait HealthCheck: Send + Sync {
    /// The check's name (recorded in the error when it fails).
    fn name(&self) -> &str;

    /// `Ok` when healthy; `interfaces` are the logical interfaces the change touched
    /// (`ae0.1025`, or `ae0` for statements on the physical interface).
    async fn check(&self, device: &NetconfDevice, interfaces: &[String]) -> Result<(), String>;
}

/// Every touched interface is operationally up.
#[derive(Debug, Clone, Copy, Default)]
pub struct InterfacesUp;

#[async_trait]
impl HealthCheck for InterfacesUp {
    fn name(&self) -> &str {
        "interfaces-up"
    }

    async fn check(&self, device: &NetconfDevice, interfaces: &[String]) -> Result<(), String> {
        for i in interfaces {
            match device.interface_status(i).await {
                Ok(OperStatus::Up) => {}
                Ok(OperStatus::Down) => return Err(format!("interface {i} is down")),
                Err(e) => return Err(format!("interface {i}: {e}")),
            }
        }
        Ok(())
    }
}

/// Every VRRP group on a touched interface is `master` or `backup` (not `init`, which a group
/// whose interface is down or misconfigured stays in). Junos devices only; on others the
/// check passes with nothing to look at.
#[derive(Debug, Clone, Copy, Default)]
pub struct VrrpActive;

#[async_trait]
impl HealthCheck for VrrpActive {
    fn name(&self) -> &str {
        "vrrp-active"
    }

    async fn check(&self, device: &NetconfDevice, interfaces: &[String]) -> Result<(), String> {
        if device.profile().await.map_err(|e| e.to_string())? != Profile::Junos {
            return Ok(());
        }
        for i in interfaces.iter().filter(|i| i.contains('.')) {
            let groups = device
                .vrrp_groups(i)
                .await
                .map_err(|e| format!("interface {i}: {e}"))?;
            if let Some((group, state)) =
                groups.iter().find(|(_, s)| s != "master" && s != "backup")
            {
                return Err(format!("vrrp group {group} on {i} is {state}"));
            }
        }
        Ok(())
    }
}

/// Several checks in order, named `a+b`; a failure's message starts with the failing check's
/// name (`interfaces-up: interface xe-0/0/2.2101 is down`).
pub struct AllOf {
    name: String,
    checks: Vec<Arc<dyn HealthCheck>>,
}

impl AllOf {
    /// The checks, run in order.
    pub fn new(checks: Vec<Arc<dyn HealthCheck>>) -> Self {
        let names: Vec<&str> = checks.iter().map(|c| c.name()).collect();
        AllOf {
            name: names.join("+"),
            checks,
        }
    }
}

#[async_trait]
impl HealthCheck for AllOf {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, device: &NetconfDevice, interfaces: &[String]) -> Result<(), String> {
        for c in &self.checks {
            c.check(device, interfaces)
                .await
                .map_err(|m| format!("{}: {m}", c.name()))?;
        }
        Ok(())
    }
}

/// A check from a closure over the touched interfaces (no device access), e.g. an external
/// probe result.
pub struct FnCheck<F> {
    name: String,
    f: F,
}

impl<F> FnCheck<F>
where
    F: Fn(&[String]) -> Result<(), String> + Send + Sync,
{
    /// A named check.
    pub fn new(name: impl Into<String>, f: F) -> Self {
        FnCheck {
            name: name.into(),
            f,
        }
    }
}

#[async_trait]
impl<F> HealthCheck for FnCheck<F>
where
    F: Fn(&[String]) -> Result<(), String> + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, _device: &NetconfDevice, interfaces: &[String]) -> Result<(), String> {
        (self.f)(interfaces)
    }
}

/// Confirmed commit: commit with a rollback timer, run the check, then confirm.
#[derive(Clone)]
pub struct ConfirmedCommit {
    /// Rollback timer (seconds for RFC 6241 `<commit>`, minutes rounded up for Junos
    /// `<commit-configuration>`).
    pub timeout: Duration,
    /// What must hold before confirming.
    pub check: Arc<dyn HealthCheck>,
}

impl std::fmt::Debug for ConfirmedCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmedCommit")
            .field("timeout", &self.timeout)
            .field("check", &self.check.name())
            .finish()
    }
}

/// Settings of a [`NetconfRegistry`] (and its devices).
#[derive(Debug, Clone)]
pub struct NetconfOptions {
    /// Host key check, timeouts, framing.
    pub session: SessionOptions,
    /// Close a session after this long unused (30 s as recorded).
    pub idle_close: Duration,
    /// Global cap on open sessions.
    pub max_sessions: usize,
    /// Payload profile.
    pub profile: ProfileChoice,
    /// Confirmed commit with a health check (off: plain commit, as recorded).
    pub confirmed: Option<ConfirmedCommit>,
    /// Authenticate with this key file instead of the resource's password.
    pub key_file: Option<(PathBuf, Option<Secret<String>>)>,
    /// Address overrides (and pinned host keys) per router.
    pub device_map: Option<Arc<DeviceMap>>,
}

impl Default for NetconfOptions {
    fn default() -> Self {
        NetconfOptions {
            session: SessionOptions::default(),
            idle_close: Duration::from_secs(30),
            max_sessions: 256,
            profile: ProfileChoice::Auto,
            confirmed: None,
            key_file: None,
            device_map: None,
        }
    }
}

impl NetconfOptions {
    /// Options with this host key policy (logs a warning for [`HostKeyPolicy::Insecure`]).
    pub fn with_host_keys(mut self, policy: HostKeyPolicy) -> Self {
        if policy == HostKeyPolicy::Insecure {
            tracing::warn!("NETCONF host keys will NOT be checked (insecure opt-in)");
        }
        self.session.host_keys = policy;
        self
    }

    /// Options that reach routers through `map` (see [`DeviceMap`]).
    pub fn with_device_map(mut self, map: DeviceMap) -> Self {
        self.device_map = Some(Arc::new(map));
        self
    }

    /// Options with a confirmed commit (rollback timer `timeout`) and `check` before the
    /// confirming commit.
    pub fn with_confirmed_commit(mut self, timeout: Duration, check: Arc<dyn HealthCheck>) -> Self {
        self.confirmed = Some(ConfirmedCommit { timeout, check });
        self
    }
}

struct Slot {
    session: Session,
    _permit: OwnedSemaphorePermit,
}

/// A router reached over NETCONF/SSH. One session, reused; one transaction at a time.
pub struct NetconfDevice {
    name: String,
    target: Target,
    auth: StdMutex<Auth>,
    options: Arc<NetconfOptions>,
    slot: Arc<Mutex<Option<Slot>>>,
    permits: Arc<Semaphore>,
    commits: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for NetconfDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetconfDevice")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The logical interfaces a Junos text touches (`interfaces X unit U …` → `X.U`).
pub fn touched_interfaces(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let Ok(cfg) = JunosConfig::parse(text) else {
        return out;
    };
    for p in cfg.paths() {
        let name = match p.as_slice() {
            [i, ifd, u, unit, ..] if i == "interfaces" && u == "unit" => format!("{ifd}.{unit}"),
            [i, ifd, ..] if i == "interfaces" => ifd.clone(),
            _ => continue,
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

fn junos_minutes(d: Duration) -> u64 {
    d.as_secs().div_ceil(60).max(1)
}

impl NetconfDevice {
    /// A device (no session is opened until first use).
    pub fn new(target: Target, auth: Auth, options: Arc<NetconfOptions>) -> Self {
        let permits = Arc::new(Semaphore::new(options.max_sessions.max(1)));
        Self::with_permits(target, auth, options, permits)
    }

    fn with_permits(
        target: Target,
        auth: Auth,
        options: Arc<NetconfOptions>,
        permits: Arc<Semaphore>,
    ) -> Self {
        NetconfDevice {
            name: target.label(),
            target,
            auth: StdMutex::new(auth),
            options,
            slot: Arc::new(Mutex::new(None)),
            permits,
            commits: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn auth(&self) -> Auth {
        self.auth
            .lock()
            .map(|a| a.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    async fn ensure<'a>(
        &self,
        slot: &'a mut Option<Slot>,
    ) -> Result<&'a mut Session, NetconfError> {
        if let Some(s) = slot.as_ref() {
            if s.session.last_used.elapsed() >= self.options.idle_close {
                if let Some(old) = slot.take() {
                    old.session.close().await;
                }
            }
        }
        if slot.is_none() {
            let permit = tokio::time::timeout(
                self.options.session.connect_timeout,
                Arc::clone(&self.permits).acquire_owned(),
            )
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| NetconfError::SessionLimit {
                device: self.name.clone(),
                cap: self.options.max_sessions,
            })?;
            let session =
                Session::connect(&self.target, &self.auth(), &self.options.session).await?;
            *slot = Some(Slot {
                session,
                _permit: permit,
            });
        }
        match slot.as_mut() {
            Some(s) => Ok(&mut s.session),
            None => Err(NetconfError::Closed {
                device: self.name.clone(),
            }),
        }
    }

    fn schedule_idle_close(&self) {
        let slot = Arc::clone(&self.slot);
        let idle = self.options.idle_close;
        let name = self.name.clone();
        tokio::spawn(async move {
            tokio::time::sleep(idle).await;
            let Ok(mut guard) = slot.try_lock() else {
                return;
            };
            if guard
                .as_ref()
                .is_some_and(|s| s.session.last_used.elapsed() >= idle)
            {
                if let Some(s) = guard.take() {
                    tracing::debug!(device = %name, "closing idle NETCONF session");
                    s.session.close().await;
                }
            }
        });
    }

    /// Runs `f` on the device's session (opened or reused), serialised with every other use
    /// of this device. A transport error drops the session.
    pub async fn with_session<T, F>(&self, f: F) -> Result<T, NetconfError>
    where
        F: for<'s> FnOnce(
            &'s mut Session,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, NetconfError>> + Send + 's>,
        >,
    {
        let mut guard = self.slot.lock().await;
        let result = match self.ensure(&mut guard).await {
            Ok(session) => f(session).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            if e.breaks_session() {
                if let Some(s) = guard.take() {
                    s.session.abort().await;
                }
            }
        }
        drop(guard);
        if result.is_ok() {
            self.schedule_idle_close();
        }
        result.map_err(|e| e.with_device(&self.name))
    }

    /// The profile of the open (or next) session.
    pub async fn profile(&self) -> Result<Profile, NetconfError> {
        let choice = self.options.profile;
        self.with_session(move |s| Box::pin(async move { Ok(profile_of(choice, s)) }))
            .await
    }

    /// Closes the session (`<close-session/>`), if open.
    pub async fn close(&self) {
        if let Some(s) = self.slot.lock().await.take() {
            s.session.close().await;
        }
    }

    /// One transaction with the adapter's own error type: discard, lock, load, commit
    /// (confirmed with the health check when configured), unlock; on any error discard and
    /// unlock before returning. Returns the number of commits made through this device.
    pub async fn transaction(&self, change: &ConfigChange) -> Result<u64, (NetconfError, Stage)> {
        let choice = self.options.profile;
        let confirmed = self.options.confirmed.clone();
        let change = change.clone();
        let mut guard = self.slot.lock().await;
        let session = match self.ensure(&mut guard).await {
            Ok(s) => s,
            Err(e) => return Err((e.with_device(&self.name), Stage::Load)),
        };
        let profile = profile_of(choice, session);
        let result = run_transaction(self, session, profile, &change, confirmed.as_ref()).await;
        if let Err((e, _)) = &result {
            if e.breaks_session() {
                if let Some(s) = guard.take() {
                    s.session.abort().await;
                }
            } else if let Some(s) = guard.as_mut() {
                // discard and unlock; errors here are secondary
                let _ = s.session.rpc("<discard-changes/>").await;
                let _ = s.session.rpc(UNLOCK).await;
            }
        }
        drop(guard);
        if result.is_ok() {
            self.schedule_idle_close();
        }
        result
            .map_err(|(e, stage)| (e.with_device(&self.name), stage))
            .map(|()| {
                self.commits
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                    + 1
            })
    }

    /// Merges an XML `<config>` payload (generic RFC 6241 profile) in one transaction.
    pub async fn edit_config(&self, resource: &str, xml: &str) -> Result<u64, DeviceError> {
        let change = ConfigChange {
            resource: resource.to_string(),
            merge_text: xml.to_string(),
            ..Default::default()
        };
        self.transaction(&change)
            .await
            .map_err(|(e, stage)| e.into_device_error(resource, stage))
    }

    /// The VRRP groups on `interface` and their states (`get-vrrp-information`, Junos only):
    /// `(group, state)` with the state as the device spells it (`master`, `backup`, `init`…).
    pub async fn vrrp_groups(&self, interface: &str) -> Result<Vec<(u32, String)>, NetconfError> {
        self.junos_only("get-vrrp-information").await?;
        let raw = self
            .query(format!(
                "<get-vrrp-information><interface>{}</interface></get-vrrp-information>",
                escape(interface)
            ))
            .await?;
        let doc = xml::parse(&raw).ok_or_else(|| NetconfError::Protocol {
            device: self.name.clone(),
            message: "malformed get-vrrp-information reply".into(),
        })?;
        Ok(doc
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "vrrp-interface")
            .filter(|n| xml::text_of(*n, "interface").as_deref() == Some(interface))
            .filter_map(|n| {
                let group = xml::text_of(n, "group")?.trim().parse::<u32>().ok()?;
                let state = xml::text_of(n, "vrrp-state")?.trim().to_ascii_lowercase();
                Some((group, state))
            })
            .collect())
    }

    async fn query(&self, body: String) -> Result<String, NetconfError> {
        self.with_session(move |s| Box::pin(async move { s.rpc(&body).await.map(|r| r.raw) }))
            .await
    }

    async fn junos_only(&self, rpc: &str) -> Result<(), NetconfError> {
        match self.profile().await? {
            Profile::Junos => Ok(()),
            Profile::Generic => Err(NetconfError::Unsupported {
                device: self.name.clone(),
                rpc: rpc.to_string(),
            }),
        }
    }
}

const LOCK: &str = "<lock><target><candidate/></target></lock>";
const UNLOCK: &str = "<unlock><target><candidate/></target></unlock>";

fn profile_of(choice: ProfileChoice, s: &Session) -> Profile {
    match choice {
        ProfileChoice::Force(p) => p,
        ProfileChoice::Auto if s.has_capability(JUNOS_CAPABILITY) => Profile::Junos,
        ProfileChoice::Auto => Profile::Generic,
    }
}

async fn run_transaction(
    device: &NetconfDevice,
    s: &mut Session,
    profile: Profile,
    change: &ConfigChange,
    confirmed: Option<&ConfirmedCommit>,
) -> Result<(), (NetconfError, Stage)> {
    let load = |e| (e, Stage::Load);
    let commit = |e| (e, Stage::Commit);
    s.rpc("<discard-changes/>").await.map_err(load)?;
    s.rpc(LOCK).await.map_err(load)?;
    match profile {
        Profile::Junos => {
            if !change.delete.is_empty() {
                let lines: String = change
                    .delete
                    .iter()
                    .map(|p| format!("delete {}\n", quote_path(p)))
                    .collect();
                s.rpc(&load_set(&lines)).await.map_err(load)?;
            }
            if !change.merge_text.trim().is_empty() {
                s.rpc(&format!(
                    "<load-configuration action=\"merge\" format=\"text\"><configuration-text>{}</configuration-text></load-configuration>",
                    escape(&change.merge_text)
                ))
                .await
                .map_err(load)?;
            }
            if !change.additional_commands.is_empty() {
                let lines: String = change
                    .additional_commands
                    .iter()
                    .map(|l| format!("{}\n", l.trim()))
                    .collect();
                s.rpc(&load_set(&lines)).await.map_err(load)?;
            }
        }
        Profile::Generic => {
            if !change.delete.is_empty() {
                return Err(load(NetconfError::Unsupported {
                    device: device.name.clone(),
                    rpc: "load-configuration (set-form deletes on a generic RFC 6241 device)"
                        .into(),
                }));
            }
            if !change.additional_commands.is_empty() {
                return Err(load(NetconfError::Unsupported {
                    device: device.name.clone(),
                    rpc: "load-configuration (additional commands on a generic RFC 6241 device)"
                        .into(),
                }));
            }
            let payload = change.merge_text.trim();
            if !payload.is_empty() {
                if !payload.starts_with('<') {
                    return Err(load(NetconfError::Unsupported {
                        device: device.name.clone(),
                        rpc: "load-configuration (Junos text on a generic RFC 6241 device)".into(),
                    }));
                }
                s.rpc(&format!(
                    "<edit-config><target><candidate/></target><default-operation>merge</default-operation><config>{payload}</config></edit-config>"
                ))
                .await
                .map_err(load)?;
            }
        }
    }
    match confirmed {
        None => {
            s.rpc("<commit/>").await.map_err(commit)?;
        }
        Some(c) => {
            let body = match profile {
                Profile::Junos => format!(
                    "<commit-configuration><confirmed/><confirm-timeout>{}</confirm-timeout></commit-configuration>",
                    junos_minutes(c.timeout)
                ),
                Profile::Generic => format!(
                    "<commit><confirmed/><confirm-timeout>{}</confirm-timeout></commit>",
                    c.timeout.as_secs().max(1)
                ),
            };
            s.rpc(&body).await.map_err(commit)?;
            let interfaces = touched_interfaces(&change.merge_text);
            // The check may query the device: it uses a second session of its own (this one
            // is busy with the transaction), which the health check owns.
            let mut checker = NetconfDevice::with_permits(
                device.target.clone(),
                device.auth(),
                Arc::clone(&device.options),
                Arc::clone(&device.permits),
            );
            checker.name = device.name.clone();
            let verdict = c.check.check(&checker, &interfaces).await;
            checker.close().await;
            if let Err(message) = verdict {
                tracing::warn!(device = %device.name, resource = %change.resource, check = c.check.name(), %message, "health check failed; cancelling confirmed commit");
                if let Err(e) = s.rpc("<cancel-commit/>").await {
                    tracing::warn!(device = %device.name, error = %e, "cancel-commit failed; the device rolls back when its timer expires");
                }
                return Err(commit(NetconfError::HealthCheck {
                    device: device.name.clone(),
                    check: c.check.name().to_string(),
                    message,
                }));
            }
            let confirm = match profile {
                Profile::Junos => "<commit-configuration/>",
                Profile::Generic => "<commit/>",
            };
            s.rpc(confirm).await.map_err(commit)?;
        }
    }
    s.rpc(UNLOCK).await.map_err(commit)?;
    Ok(())
}

fn quote_path(p: &[String]) -> String {
    p.iter()
        .map(|t| {
            if t.is_empty()
                || t.chars()
                    .any(|c| c.is_whitespace() || "{};\"#[]".contains(c))
            {
                format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\""))
            } else {
                t.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn load_set(lines: &str) -> String {
    format!(
        "<load-configuration action=\"set\" format=\"text\"><configuration-set>{}</configuration-set></load-configuration>",
        escape(lines)
    )
}

#[async_trait]
impl Device for NetconfDevice {
    fn name(&self) -> &str {
        &self.name
    }

    async fn load_config(&self, change: &ConfigChange) -> Result<CommitInfo, DeviceError> {
        match self.transaction(change).await {
            Ok(sequence) => {
                tracing::info!(device = %self.name, resource = %change.resource, "committed");
                Ok(CommitInfo { sequence })
            }
            Err((e, stage)) => {
                tracing::warn!(device = %self.name, resource = %change.resource, error = %e, "transaction failed");
                Err(e.into_device_error(&change.resource, stage))
            }
        }
    }

    async fn configuration(&self) -> Result<String, DeviceError> {
        let profile = self
            .profile()
            .await
            .map_err(|e| e.into_device_error("", Stage::Load))?;
        let body = match profile {
            Profile::Junos => "<get-configuration format=\"text\"/>",
            Profile::Generic => "<get-config><source><running/></source></get-config>",
        };
        let raw = self
            .query(body.to_string())
            .await
            .map_err(|e| e.into_device_error("", Stage::Load))?;
        let doc = xml::parse(&raw).ok_or_else(|| DeviceError::LoadFailed {
            device: self.name.clone(),
            resource: String::new(),
            message: "malformed configuration reply".into(),
        })?;
        Ok(match profile {
            Profile::Junos => {
                xml::text_of(doc.root_element(), "configuration-text").unwrap_or_default()
            }
            Profile::Generic => xml::find(doc.root_element(), "data")
                .map(|n| raw[n.range()].to_string())
                .unwrap_or_default(),
        })
    }

    async fn interface_status(&self, name: &str) -> Result<OperStatus, DeviceError> {
        let map = |e: NetconfError| e.into_device_error("", Stage::Load);
        let profile = self.profile().await.map_err(map)?;
        let body = match profile {
            Profile::Junos => format!(
                "<get-interface-information><terse/><interface-name>{}</interface-name></get-interface-information>",
                escape(name)
            ),
            Profile::Generic => format!(
                "<get><filter type=\"subtree\"><interfaces-state xmlns=\"urn:ietf:params:xml:ns:yang:ietf-interfaces\"><interface><name>{}</name></interface></interfaces-state></filter></get>",
                escape(name)
            ),
        };
        let raw = match self.query(body).await {
            Err(NetconfError::Rpc { error, .. }) if error.message.contains("not found") => {
                return Err(DeviceError::NotConfigured {
                    device: self.name.clone(),
                    what: format!("interface {name}"),
                })
            }
            other => other.map_err(map)?,
        };
        let status = xml::parse(&raw).and_then(|d| xml::text_of(d.root_element(), "oper-status"));
        match status.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("up") => Ok(OperStatus::Up),
            Some(_) => Ok(OperStatus::Down),
            None => Err(DeviceError::NotConfigured {
                device: self.name.clone(),
                what: format!("interface {name}"),
            }),
        }
    }

    async fn vrrp_status(&self, interface: &str, vrid: u32) -> Result<VrrpState, DeviceError> {
        let map = |e: NetconfError| e.into_device_error("", Stage::Load);
        self.junos_only("get-vrrp-information").await.map_err(map)?;
        let raw = self
            .query(format!(
                "<get-vrrp-information><interface>{}</interface></get-vrrp-information>",
                escape(interface)
            ))
            .await
            .map_err(map)?;
        let doc = xml::parse(&raw);
        let state = doc.as_ref().and_then(|d| {
            d.descendants()
                .filter(|n| n.is_element() && n.tag_name().name() == "vrrp-interface")
                .find(|n| {
                    xml::text_of(*n, "interface").as_deref() == Some(interface)
                        && xml::text_of(*n, "group").and_then(|g| g.parse::<u32>().ok())
                            == Some(vrid)
                })
                .and_then(|n| xml::text_of(n, "vrrp-state"))
        });
        match state.map(|s| s.to_ascii_lowercase()).as_deref() {
            Some("master") => Ok(VrrpState::Master),
            Some("backup") => Ok(VrrpState::Backup),
            Some(_) => Ok(VrrpState::Init),
            None => Err(DeviceError::NotConfigured {
                device: self.name.clone(),
                what: format!("vrrp group {vrid} on {interface}"),
            }),
        }
    }

    async fn bgp_peer_status(&self, instance: &str, peer: &str) -> Result<BgpState, DeviceError> {
        let map = |e: NetconfError| e.into_device_error("", Stage::Load);
        self.junos_only("get-bgp-neighbor-information")
            .await
            .map_err(map)?;
        let mut body = format!(
            "<get-bgp-neighbor-information><neighbor-address>{}</neighbor-address>",
            escape(peer)
        );
        if !instance.is_empty() && instance != "master" {
            body.push_str(&format!("<instance>{}</instance>", escape(instance)));
        }
        body.push_str("</get-bgp-neighbor-information>");
        let raw = match self.query(body).await {
            Err(NetconfError::Rpc { error, .. }) if error.message.contains("not found") => {
                return Err(DeviceError::NotConfigured {
                    device: self.name.clone(),
                    what: format!("bgp neighbor {peer} in instance {instance}"),
                })
            }
            other => other.map_err(map)?,
        };
        let state = xml::parse(&raw).and_then(|d| xml::text_of(d.root_element(), "peer-state"));
        match state.map(|s| s.to_ascii_lowercase()).as_deref() {
            Some("established") => Ok(BgpState::Established),
            Some("active") | Some("connect") | Some("opensent") | Some("openconfirm") => {
                Ok(BgpState::Active)
            }
            Some(_) => Ok(BgpState::Idle),
            None => Err(DeviceError::NotConfigured {
                device: self.name.clone(),
                what: format!("bgp neighbor {peer} in instance {instance}"),
            }),
        }
    }

    async fn ping(&self) -> Result<(), DeviceError> {
        self.with_session(|_| Box::pin(async { Ok(()) }))
            .await
            .map_err(|e| e.into_device_error("", Stage::Load))
    }
}

/// Resolves addresses to [`NetconfDevice`]s: one per (host, port, user), shared, so sessions
/// are reused; all share the global session cap.
pub struct NetconfRegistry {
    options: Arc<NetconfOptions>,
    permits: Arc<Semaphore>,
    devices: StdMutex<HashMap<Target, Arc<NetconfDevice>>>,
}

impl std::fmt::Debug for NetconfRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetconfRegistry")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl NetconfRegistry {
    /// A registry with these options.
    pub fn new(options: NetconfOptions) -> Self {
        NetconfRegistry {
            permits: Arc::new(Semaphore::new(options.max_sessions.max(1))),
            options: Arc::new(options),
            devices: StdMutex::new(HashMap::new()),
        }
    }

    /// The device for a target (created on first use, no session opened yet).
    pub fn device(&self, target: Target, auth: Auth) -> Arc<NetconfDevice> {
        self.device_with(target, auth, None)
    }

    /// The device for the router the resources call `host:port`, through the device map when
    /// it has an entry for it (connecting to the mapped address, the pinned fingerprint
    /// replacing the host key policy; errors still name `host:port`).
    pub fn device_at(
        &self,
        host: &str,
        port: u16,
        username: String,
        auth: Auth,
    ) -> Arc<NetconfDevice> {
        let entry = self
            .options
            .device_map
            .as_ref()
            .and_then(|m| m.lookup(host, port))
            .cloned();
        match entry {
            None => self.device(
                Target {
                    host: host.to_string(),
                    port,
                    username,
                },
                auth,
            ),
            Some(e) => {
                let target = Target {
                    host: e.host.clone(),
                    port: e.port,
                    username,
                };
                let options = match &e.fingerprint {
                    Some(fp) => {
                        let mut o = (*self.options).clone();
                        o.session.host_keys = HostKeyPolicy::Fingerprints(vec![fp.clone()]);
                        Arc::new(o)
                    }
                    None => Arc::clone(&self.options),
                };
                let name = format!("{host}:{port} (at {}:{})", e.host, e.port);
                self.device_with(target, auth, Some((name, options)))
            }
        }
    }

    fn device_with(
        &self,
        target: Target,
        auth: Auth,
        mapped: Option<(String, Arc<NetconfOptions>)>,
    ) -> Arc<NetconfDevice> {
        let mut map = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        let dev = map.entry(target.clone()).or_insert_with(|| {
            let (name, options) = match mapped {
                Some((name, options)) => (Some(name), options),
                None => (None, Arc::clone(&self.options)),
            };
            let mut d = NetconfDevice::with_permits(
                target,
                auth.clone(),
                options,
                Arc::clone(&self.permits),
            );
            if let Some(n) = name {
                d.name = n;
            }
            Arc::new(d)
        });
        if let Ok(mut a) = dev.auth.lock() {
            *a = auth;
        }
        Arc::clone(dev)
    }

    /// Closes every open session.
    pub async fn close_all(&self) {
        let devices: Vec<Arc<NetconfDevice>> = self
            .devices
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for d in devices {
            d.close().await;
        }
    }
}

#[async_trait]
impl DeviceRegistry for NetconfRegistry {
    async fn connect(
        &self,
        address: &DeviceAddress,
        credentials: &Credentials,
    ) -> Result<Arc<dyn Device>, DeviceError> {
        let (username, password) = match credentials {
            Credentials::Login { username, password } => (username.clone(), password.clone()),
            _ => {
                return Err(DeviceError::AuthenticationFailed {
                    device: address.label(),
                    username: "(no NETCONF login given)".into(),
                })
            }
        };
        let auth = match &self.options.key_file {
            Some((path, passphrase)) => Auth::KeyFile {
                path: path.clone(),
                passphrase: passphrase.clone(),
            },
            None => Auth::Password(password),
        };
        Ok(self.device_at(&address.host, address.port.unwrap_or(830), username, auth))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touched_and_units() {
        assert_eq!(
            touched_interfaces("interfaces { ae0 { unit 5 { vlan-id 5; } mtu 9000; } xe-0/0/1 { disable; } }\nrouting-instances { V { interface ae0.5; } }"),
            ["ae0.5", "ae0", "xe-0/0/1"]
        );
        assert_eq!(junos_minutes(Duration::from_secs(61)), 2);
        assert_eq!(junos_minutes(Duration::from_secs(1)), 1);
        assert_eq!(quote_path(&["a".into(), "b c".into()]), "a \"b c\"");
        let auth = Auth::Password(Secret::new("hunter2".into()));
        assert!(!format!("{auth:?}").contains("hunter2"));
    }
}
