//! In-memory simulated Junos routers for the embedded default and for tests.
//!
//! A [`SimRouter`] keeps a hierarchical running configuration ([`JunosConfig`]) and performs the
//! NETCONF transaction of devices.md §4 on it (every step is recorded in [`SimRouter::rpc_log`]).
//! Operational state is derived from the configuration, deterministically:
//!
//! * an interface is **UP** when it is configured (or declared physical) and neither it nor its
//!   physical interface is `disable`d or forced down ([`SimRouter::set_interface_down`]);
//! * a VRRP group (`interfaces I unit U family inet address A vrrp-group V { priority P;
//!   virtual-address X; }`) is **MASTER** on the router with the highest priority among the
//!   routers of the same [`SimFabric`] that run group `V` with a common virtual address and an
//!   up interface (ties: the higher interface address, then the router name), **BACKUP**
//!   elsewhere, **INIT** while its interface is down; the default priority is 100. Groups
//!   inherited through `apply-groups` wildcards are not expanded;
//! * a BGP neighbour that is configured is **ESTABLISHED**.
//!
//! Faults: fail the next commits, refuse the lock (another session holds it), be unreachable,
//! force an interface down. Passwords and communities are [`Secret`]s; `Debug` shows neither
//! them nor the configuration.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::config::JunosConfig;
use super::{
    BgpState, CommitInfo, ConfigChange, Credentials, Device, DeviceAddress, DeviceError,
    DeviceRegistry, OperStatus, VrrpState,
};
use crate::secret::Secret;

/// One VRRP group as a router runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VrrpGroup {
    router: String,
    interface: String,
    vrid: u32,
    priority: u32,
    address: String,
    virtual_addresses: BTreeSet<String>,
    up: bool,
}

/// What the routers of one fabric advertise (the shared LAN of VRRP).
#[derive(Debug, Default)]
struct Segment {
    groups: Mutex<BTreeMap<String, Vec<VrrpGroup>>>,
}

impl Segment {
    fn publish(&self, router: &str, groups: Vec<VrrpGroup>) {
        if let Ok(mut g) = self.groups.lock() {
            g.insert(router.to_string(), groups);
        }
    }

    fn peers(&self, router: &str) -> Vec<VrrpGroup> {
        self.groups
            .lock()
            .map(|g| {
                g.iter()
                    .filter(|(name, _)| name.as_str() != router)
                    .flat_map(|(_, groups)| groups.iter().cloned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A commit as the router recorded it.
#[derive(Clone, PartialEq, Eq)]
pub struct CommitRecord {
    /// Commit sequence number.
    pub sequence: u64,
    /// The resource of the change.
    pub resource: String,
    /// How many statements the change deleted (existing ones).
    pub deleted: usize,
    /// The merged text in canonical form, secrets masked.
    pub merged: String,
}

impl fmt::Debug for CommitRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommitRecord")
            .field("sequence", &self.sequence)
            .field("resource", &self.resource)
            .field("deleted", &self.deleted)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct RouterState {
    running: JunosConfig,
    sequence: u64,
    lock_held_elsewhere: bool,
    commit_faults: VecDeque<String>,
    unreachable: bool,
    forced_down: BTreeSet<String>,
    commits: Vec<CommitRecord>,
    rpc_log: Vec<String>,
}

/// A simulated Junos router.
pub struct SimRouter {
    name: String,
    host: String,
    port: u16,
    login: Option<(String, Secret<String>)>,
    community: Option<Secret<String>>,
    physical: BTreeSet<String>,
    segment: Arc<Segment>,
    state: Mutex<RouterState>,
}

impl fmt::Debug for SimRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimRouter")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

fn split_interface(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once('.') {
        Some((ifd, unit)) if !unit.is_empty() && unit.bytes().all(|b| b.is_ascii_digit()) => {
            (ifd, Some(unit))
        }
        _ => (name, None),
    }
}

fn ip_key(address: &str) -> Vec<u32> {
    address
        .split('/')
        .next()
        .unwrap_or("")
        .split(['.', ':'])
        .map(|p| p.parse::<u32>().unwrap_or(0))
        .collect()
}

impl SimRouter {
    /// A router named `name` answering NETCONF at `host:port`, accepting any credentials, with
    /// an empty configuration. Standalone (its own VRRP segment) until added to a
    /// [`SimFabric`].
    pub fn new(name: impl Into<String>, host: impl Into<String>, port: u16) -> Self {
        SimRouter {
            name: name.into(),
            host: host.into(),
            port,
            login: None,
            community: None,
            physical: BTreeSet::new(),
            segment: Arc::new(Segment::default()),
            state: Mutex::new(RouterState::default()),
        }
    }

    /// Requires this NETCONF login.
    pub fn with_login(mut self, username: impl Into<String>, password: Secret<String>) -> Self {
        self.login = Some((username.into(), password));
        self
    }

    /// Requires this SNMP community.
    pub fn with_community(mut self, community: Secret<String>) -> Self {
        self.community = Some(community);
        self
    }

    /// Physical interfaces that exist (and are up) without configuration.
    pub fn with_physical_interfaces<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.physical.extend(names.into_iter().map(Into::into));
        self
    }

    /// Starts from this configuration text.
    pub fn with_configuration(self, text: &str) -> Result<Self, super::config::ConfigSyntaxError> {
        let parsed = JunosConfig::parse(text)?;
        if let Ok(mut st) = self.state.lock() {
            st.running = parsed;
        }
        Ok(self)
    }

    /// The router's name.
    pub fn router_name(&self) -> &str {
        &self.name
    }

    /// Management address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// NETCONF port.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn state(&self) -> MutexGuard<'_, RouterState> {
        // a poisoned lock only means a panicking test thread; the data is still consistent
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The running configuration as text, secrets masked.
    pub fn config_text(&self) -> String {
        self.state().running.to_text(true)
    }

    /// The VRRP groups the running configuration declares: `(interface, vrid, local address)`
    /// per group, as `show vrrp` lists them.
    pub fn vrrp_interfaces(&self) -> Vec<(String, u32, String)> {
        let st = self.state();
        self.vrrp_groups(&st)
            .into_iter()
            .map(|g| (g.interface, g.vrid, g.address))
            .collect()
    }

    /// The running configuration (secret values included: for assertions, never print it).
    pub fn running(&self) -> JunosConfig {
        self.state().running.clone()
    }

    /// The commits so far.
    pub fn commits(&self) -> Vec<CommitRecord> {
        self.state().commits.clone()
    }

    /// The NETCONF operations performed so far (`discard-changes`, `lock`, …).
    pub fn rpc_log(&self) -> Vec<String> {
        self.state().rpc_log.clone()
    }

    /// Fault: the next `n` commits fail with `message`.
    pub fn fail_next_commits(&self, n: usize, message: &str) {
        let mut st = self.state();
        st.commit_faults
            .extend(std::iter::repeat_n(message.to_string(), n));
    }

    /// Fault: another session holds the candidate lock (`lock-denied`) while `held`.
    pub fn hold_lock(&self, held: bool) {
        self.state().lock_held_elsewhere = held;
    }

    /// Fault: the router does not answer while `unreachable`.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.state().unreachable = unreachable;
    }

    /// Fault: force an interface (`xe-0/0/2` or `xe-0/0/2.2101`) operationally down.
    pub fn set_interface_down(&self, name: &str, down: bool) {
        {
            let mut st = self.state();
            if down {
                st.forced_down.insert(name.to_string());
            } else {
                st.forced_down.remove(name);
            }
        }
        self.publish();
    }

    fn authenticate(&self, credentials: &Credentials) -> Result<(), DeviceError> {
        let fail = |username: &str| DeviceError::AuthenticationFailed {
            device: self.name.clone(),
            username: username.to_string(),
        };
        match credentials {
            Credentials::Login { username, password } => match &self.login {
                Some((u, p)) if u != username || p != password => Err(fail(username)),
                _ => Ok(()),
            },
            Credentials::Community(c) => match &self.community {
                Some(expected) if expected != c => Err(fail("community")),
                _ => Ok(()),
            },
            Credentials::None => match &self.login {
                Some((u, _)) => Err(fail(u)),
                None => Ok(()),
            },
        }
    }

    fn interface_up(&self, st: &RouterState, paths: &[Vec<String>], name: &str) -> Option<bool> {
        let (ifd, unit) = split_interface(name);
        let starts = |p: &Vec<String>, prefix: &[&str]| {
            p.len() >= prefix.len() && p.iter().zip(prefix).all(|(a, b)| a == b)
        };
        let ifd_known =
            self.physical.contains(ifd) || paths.iter().any(|p| starts(p, &["interfaces", ifd]));
        let known = match unit {
            None => ifd_known,
            Some(u) => paths
                .iter()
                .any(|p| starts(p, &["interfaces", ifd, "unit", u])),
        };
        if !known {
            return None;
        }
        let mut disabled = paths
            .iter()
            .any(|p| p.as_slice() == ["interfaces", ifd, "disable"]);
        if let Some(u) = unit {
            disabled |= paths
                .iter()
                .any(|p| p.as_slice() == ["interfaces", ifd, "unit", u, "disable"]);
        }
        let forced = st.forced_down.contains(ifd) || st.forced_down.contains(name);
        Some(!disabled && !forced)
    }

    fn vrrp_groups(&self, st: &RouterState) -> Vec<VrrpGroup> {
        let paths = st.running.paths();
        let mut groups: BTreeMap<(String, u32), VrrpGroup> = BTreeMap::new();
        for p in &paths {
            let [i, ifd, u, unit, f, inet, a, address, v, vrid, rest @ ..] = p.as_slice() else {
                continue;
            };
            if (
                i.as_str(),
                u.as_str(),
                f.as_str(),
                inet.as_str(),
                a.as_str(),
                v.as_str(),
            ) != (
                "interfaces",
                "unit",
                "family",
                "inet",
                "address",
                "vrrp-group",
            ) {
                continue;
            }
            let Ok(vrid) = vrid.parse::<u32>() else {
                continue;
            };
            let interface = format!("{ifd}.{unit}");
            let up = self.interface_up(st, &paths, &interface).unwrap_or(false);
            let g = groups
                .entry((interface.clone(), vrid))
                .or_insert_with(|| VrrpGroup {
                    router: self.name.clone(),
                    interface,
                    vrid,
                    priority: 100,
                    address: address.clone(),
                    virtual_addresses: BTreeSet::new(),
                    up,
                });
            match rest {
                [k, val] if k == "priority" => {
                    if let Ok(pr) = val.parse() {
                        g.priority = pr;
                    }
                }
                [k, val] if k == "virtual-address" => {
                    g.virtual_addresses.insert(val.clone());
                }
                _ => {}
            }
        }
        groups.into_values().collect()
    }

    fn publish(&self) {
        let groups = {
            let st = self.state();
            self.vrrp_groups(&st)
        };
        self.segment.publish(&self.name, groups);
    }

    fn check_reachable(&self, st: &RouterState) -> Result<(), DeviceError> {
        if st.unreachable {
            Err(DeviceError::Unreachable {
                device: self.name.clone(),
            })
        } else {
            Ok(())
        }
    }

    fn transaction(&self, change: &ConfigChange) -> Result<CommitInfo, DeviceError> {
        let mut st = self.state();
        self.check_reachable(&st)?;
        st.rpc_log.push("discard-changes".into());
        if st.lock_held_elsewhere {
            st.rpc_log.push("lock: lock-denied".into());
            return Err(DeviceError::LockDenied {
                device: self.name.clone(),
                resource: change.resource.clone(),
            });
        }
        st.rpc_log.push("lock".into());
        let mut candidate = st.running.clone();
        let load_failed = |st: &mut RouterState, message: String| {
            st.rpc_log.push("discard-changes".into());
            st.rpc_log.push("unlock".into());
            DeviceError::LoadFailed {
                device: self.name.clone(),
                resource: change.resource.clone(),
                message,
            }
        };
        let mut deleted = 0;
        if !change.delete.is_empty() {
            st.rpc_log.push(format!(
                "load-configuration action=set ({} deletes)",
                change.delete.len()
            ));
            deleted = change.delete.iter().filter(|p| candidate.delete(p)).count();
        }
        if !change.merge_text.trim().is_empty() {
            st.rpc_log
                .push("load-configuration action=merge format=text".into());
            if let Err(e) = candidate.merge_text(&change.merge_text) {
                return Err(load_failed(&mut st, e.to_string()));
            }
        }
        if !change.additional_commands.is_empty() {
            st.rpc_log.push(format!(
                "load-configuration action=set ({} commands)",
                change.additional_commands.len()
            ));
            for line in &change.additional_commands {
                if let Err(e) = candidate.command(line) {
                    return Err(load_failed(&mut st, e.to_string()));
                }
            }
        }
        st.rpc_log.push("commit".into());
        if let Some(message) = st.commit_faults.pop_front() {
            st.rpc_log.push("discard-changes".into());
            st.rpc_log.push("unlock".into());
            return Err(DeviceError::CommitFailed {
                device: self.name.clone(),
                resource: change.resource.clone(),
                message,
            });
        }
        st.running = candidate;
        st.sequence += 1;
        let sequence = st.sequence;
        let merged = JunosConfig::parse(&change.merge_text)
            .map(|c| c.to_text(true))
            .unwrap_or_default();
        st.commits.push(CommitRecord {
            sequence,
            resource: change.resource.clone(),
            deleted,
            merged,
        });
        st.rpc_log.push("unlock".into());
        Ok(CommitInfo { sequence })
    }
}

#[async_trait]
impl Device for SimRouter {
    fn name(&self) -> &str {
        &self.name
    }

    async fn load_config(&self, change: &ConfigChange) -> Result<CommitInfo, DeviceError> {
        let result = self.transaction(change);
        match &result {
            Ok(info) => {
                tracing::debug!(device = %self.name, resource = %change.resource, sequence = info.sequence, "committed");
                self.publish();
            }
            Err(e) => {
                tracing::debug!(device = %self.name, resource = %change.resource, error = %e, "transaction failed")
            }
        }
        result
    }

    async fn configuration(&self) -> Result<String, DeviceError> {
        let st = self.state();
        self.check_reachable(&st)?;
        Ok(st.running.to_text(true))
    }

    async fn interface_status(&self, name: &str) -> Result<OperStatus, DeviceError> {
        let st = self.state();
        self.check_reachable(&st)?;
        let paths = st.running.paths();
        match self.interface_up(&st, &paths, name) {
            Some(true) => Ok(OperStatus::Up),
            Some(false) => Ok(OperStatus::Down),
            None => Err(DeviceError::NotConfigured {
                device: self.name.clone(),
                what: format!("interface {name}"),
            }),
        }
    }

    async fn vrrp_status(&self, interface: &str, vrid: u32) -> Result<VrrpState, DeviceError> {
        let own = {
            let st = self.state();
            self.check_reachable(&st)?;
            self.vrrp_groups(&st)
                .into_iter()
                .find(|g| g.interface == interface && g.vrid == vrid)
        };
        let Some(own) = own else {
            return Err(DeviceError::NotConfigured {
                device: self.name.clone(),
                what: format!("vrrp group {vrid} on {interface}"),
            });
        };
        if !own.up {
            return Ok(VrrpState::Init);
        }
        let rank = |g: &VrrpGroup| (g.priority, ip_key(&g.address), g.router.clone());
        let best_peer = self
            .segment
            .peers(&self.name)
            .into_iter()
            .filter(|g| {
                g.up && g.vrid == vrid
                    && (g.virtual_addresses.is_empty() && own.virtual_addresses.is_empty()
                        || !g.virtual_addresses.is_disjoint(&own.virtual_addresses))
            })
            .map(|g| rank(&g))
            .max();
        Ok(match best_peer {
            Some(peer) if peer > rank(&own) => VrrpState::Backup,
            _ => VrrpState::Master,
        })
    }

    async fn bgp_peer_status(&self, instance: &str, peer: &str) -> Result<BgpState, DeviceError> {
        let st = self.state();
        self.check_reachable(&st)?;
        let found = st.running.paths().iter().any(|p| {
            let rest: &[String] = if instance.is_empty() || instance == "master" {
                p.as_slice()
            } else {
                match p.as_slice() {
                    [r, i, rest @ ..] if r == "routing-instances" && i == instance => rest,
                    _ => return false,
                }
            };
            matches!(rest, [pr, b, g, _, n, addr, ..] if pr == "protocols" && b == "bgp" && g == "group" && n == "neighbor" && addr == peer)
        });
        if found {
            Ok(BgpState::Established)
        } else {
            Err(DeviceError::NotConfigured {
                device: self.name.clone(),
                what: format!("bgp neighbor {peer} in instance {instance}"),
            })
        }
    }

    async fn ping(&self) -> Result<(), DeviceError> {
        let st = self.state();
        self.check_reachable(&st)
    }
}

/// A set of simulated routers sharing one VRRP segment; the [`DeviceRegistry`] of the
/// embedded default.
pub struct SimFabric {
    routers: Mutex<Vec<Arc<SimRouter>>>,
    segment: Arc<Segment>,
    auto_create: bool,
}

impl fmt::Debug for SimFabric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .routers()
            .iter()
            .map(|r| r.router_name().to_string())
            .collect();
        f.debug_struct("SimFabric")
            .field("routers", &names)
            .field("auto_create", &self.auto_create)
            .finish()
    }
}

impl Default for SimFabric {
    fn default() -> Self {
        Self::new()
    }
}

impl SimFabric {
    /// A fabric that only knows the routers added to it.
    pub fn new() -> Self {
        SimFabric {
            routers: Mutex::new(Vec::new()),
            segment: Arc::new(Segment::default()),
            auto_create: false,
        }
    }

    /// A fabric that creates a router (named after its host, any credentials) the first time an
    /// unknown address is connected to: any world runs without describing its devices.
    pub fn auto() -> Self {
        SimFabric {
            auto_create: true,
            ..Self::new()
        }
    }

    fn list(&self) -> MutexGuard<'_, Vec<Arc<SimRouter>>> {
        self.routers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a router to the fabric (joining its VRRP segment).
    pub fn add(&self, mut router: SimRouter) -> Arc<SimRouter> {
        router.segment = Arc::clone(&self.segment);
        let router = Arc::new(router);
        router.publish();
        self.list().push(Arc::clone(&router));
        router
    }

    /// The router named `name`.
    pub fn router(&self, name: &str) -> Option<Arc<SimRouter>> {
        self.list().iter().find(|r| r.name == name).cloned()
    }

    /// The router at `host`.
    pub fn router_at(&self, host: &str) -> Option<Arc<SimRouter>> {
        self.list().iter().find(|r| r.host == host).cloned()
    }

    /// All routers, in the order added.
    pub fn routers(&self) -> Vec<Arc<SimRouter>> {
        self.list().clone()
    }

    /// Every router's running configuration (secrets masked), by router name.
    pub fn configurations(&self) -> BTreeMap<String, String> {
        self.routers()
            .iter()
            .map(|r| (r.name.clone(), r.config_text()))
            .collect()
    }
}

#[async_trait]
impl DeviceRegistry for SimFabric {
    async fn connect(
        &self,
        address: &DeviceAddress,
        credentials: &Credentials,
    ) -> Result<Arc<dyn Device>, DeviceError> {
        let found = {
            let mut list = self.list();
            let hit = list
                .iter()
                .find(|r| r.host == address.host && address.port.is_none_or(|p| p == r.port))
                .cloned();
            match hit {
                Some(r) => Some(r),
                None if self.auto_create => {
                    let mut r = SimRouter::new(
                        address.host.clone(),
                        address.host.clone(),
                        address.port.unwrap_or(830),
                    );
                    r.segment = Arc::clone(&self.segment);
                    let r = Arc::new(r);
                    list.push(Arc::clone(&r));
                    tracing::debug!(device = %address.label(), "auto-created simulated router");
                    Some(r)
                }
                None => None,
            }
        };
        let router = found.ok_or_else(|| DeviceError::UnknownDevice {
            address: address.label(),
        })?;
        router.authenticate(credentials)?;
        Ok(router)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(text: &str) -> ConfigChange {
        ConfigChange {
            resource: "s/r".into(),
            merge_text: text.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn transaction_steps_and_commit_fault() {
        let r = SimRouter::new("r1", "192.0.2.1", 830);
        r.fail_next_commits(1, "boom");
        let err = r.load_config(&change("system { host-name a; }")).await;
        assert!(
            matches!(err, Err(DeviceError::CommitFailed { ref message, .. }) if message == "boom")
        );
        assert!(r.config_text().is_empty());
        r.load_config(&change("system { host-name a; }"))
            .await
            .unwrap();
        assert_eq!(r.config_text(), "system {\n    host-name a;\n}\n");
        assert_eq!(
            r.rpc_log()[r.rpc_log().len() - 5..],
            [
                "discard-changes",
                "lock",
                "load-configuration action=merge format=text",
                "commit",
                "unlock"
            ]
        );
        r.hold_lock(true);
        let e = r.load_config(&change("a;")).await.unwrap_err();
        assert!(e.is_retryable());
        assert!(!format!("{r:?}").contains("host-name"));
    }
}
