//! Routers reached over NETCONF (devices.md): the [`Device`] trait, the [`DeviceRegistry`]
//! that resolves an address to a device, and an in-memory Junos-like router
//! ([`sim::SimRouter`], [`sim::SimFabric`]) for the embedded default and for tests.
//!
//! One [`Device::load_config`] is one NETCONF transaction of devices.md §4: discard changes,
//! lock the candidate, delete the statements the change removes, merge-load the text, run the
//! additional commands, commit (never confirmed), unlock. On a load or commit error the
//! candidate is discarded and the lock released before the error is returned. Retrying is the
//! caller's business ([`load_with_retry`]): only lock contention and transport errors are
//! retried, never a configuration error (decision D6).

pub mod config;
pub mod sim;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::exec::junos::ComposedConfig;
use crate::secret::Secret;

pub use config::{canonical_text, statement_paths, JunosConfig};
pub use sim::{SimFabric, SimRouter};

/// Where a device is reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceAddress {
    /// Host (management address).
    pub host: String,
    /// Port (`830` for NETCONF); `None` matches any (SNMP targets name only the host).
    pub port: Option<u16>,
}

impl DeviceAddress {
    /// `host:port` or `host`.
    pub fn label(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }
}

/// How a session authenticates. Secrets never appear in `Debug` output.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    /// No authentication (tests, auto-created simulated routers).
    #[default]
    None,
    /// NETCONF over SSH with a password.
    Login {
        /// User.
        username: String,
        /// Password.
        password: Secret<String>,
    },
    /// SNMP v2c community.
    Community(Secret<String>),
}

/// One configuration transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigChange {
    /// The Heat resource (or other origin) the change belongs to; names errors and commits.
    pub resource: String,
    /// Statements to delete first, as set-form token paths (missing ones are skipped).
    pub delete: Vec<Vec<String>>,
    /// Junos text merge-loaded after the deletes (`load-configuration action="merge"`).
    pub merge_text: String,
    /// Configuration-mode lines run after the load, before the commit (decision D1).
    pub additional_commands: Vec<String>,
}

impl ConfigChange {
    /// Merge-loads a composed configuration.
    pub fn merge(resource: impl Into<String>, composed: &ComposedConfig) -> Self {
        ConfigChange {
            resource: resource.into(),
            delete: Vec::new(),
            merge_text: composed.text.clone(),
            additional_commands: composed.additional_commands.clone(),
        }
    }

    /// Deletes statements only.
    pub fn removal(resource: impl Into<String>, paths: Vec<Vec<String>>) -> Self {
        ConfigChange {
            resource: resource.into(),
            delete: paths,
            ..Default::default()
        }
    }

    /// Whether the change does nothing.
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty()
            && self.merge_text.trim().is_empty()
            && self.additional_commands.is_empty()
    }
}

/// What a successful commit reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitInfo {
    /// Commit sequence number on the device (1 for the first commit).
    pub sequence: u64,
}

/// Operational state of an interface (`ifOperStatus` 1 → UP, anything else → DOWN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperStatus {
    /// Up.
    Up,
    /// Down (disabled or link down).
    Down,
}

impl OperStatus {
    /// `UP` / `DOWN`, as the CollectorAgent publishes it.
    pub fn as_str(self) -> &'static str {
        match self {
            OperStatus::Up => "UP",
            OperStatus::Down => "DOWN",
        }
    }
}

/// VRRP state of one group on one router (Junos state names upper-cased).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpState {
    /// Owns the virtual address.
    Master,
    /// Standing by.
    Backup,
    /// The interface is down.
    Init,
}

impl VrrpState {
    /// `MASTER` / `BACKUP` / `INIT`.
    pub fn as_str(self) -> &'static str {
        match self {
            VrrpState::Master => "MASTER",
            VrrpState::Backup => "BACKUP",
            VrrpState::Init => "INIT",
        }
    }
}

/// BGP peer state (Junos names upper-cased).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BgpState {
    /// Session up.
    Established,
    /// Trying to connect.
    Active,
    /// Not trying.
    Idle,
}

impl BgpState {
    /// `ESTABLISHED` / `ACTIVE` / `IDLE`.
    pub fn as_str(self) -> &'static str {
        match self {
            BgpState::Established => "ESTABLISHED",
            BgpState::Active => "ACTIVE",
            BgpState::Idle => "IDLE",
        }
    }
}

/// A device operation that failed. Every variant names the device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// No device answers at this address.
    #[error("device {address}: unknown device")]
    UnknownDevice {
        /// `host:port`.
        address: String,
    },
    /// The device does not answer (transport error); retrying may help.
    #[error("device {device}: unreachable")]
    Unreachable {
        /// Device name.
        device: String,
    },
    /// Wrong user, password or community.
    #[error("device {device}: authentication failed for {username}")]
    AuthenticationFailed {
        /// Device name.
        device: String,
        /// The user (or `community`).
        username: String,
    },
    /// The candidate is locked by another session (`lock-denied`); retrying may help.
    #[error("device {device}: lock-denied (resource {resource})")]
    LockDenied {
        /// Device name.
        device: String,
        /// The resource whose change waited.
        resource: String,
    },
    /// The load was refused (`<rpc-error>` of `load-configuration`).
    #[error("device {device}: resource {resource}: load failed: {message}")]
    LoadFailed {
        /// Device name.
        device: String,
        /// Resource of the change.
        resource: String,
        /// The device's error message.
        message: String,
    },
    /// The commit was refused (configuration error).
    #[error("device {device}: resource {resource}: commit failed: {message}")]
    CommitFailed {
        /// Device name.
        device: String,
        /// Resource of the change.
        resource: String,
        /// The device's error message.
        message: String,
    },
    /// An operational query names something the device does not have.
    #[error("device {device}: {what} not found")]
    NotConfigured {
        /// Device name.
        device: String,
        /// What was asked (`interface xe-0/0/2.7`, `vrrp group 21 on ae0.5` …).
        what: String,
    },
    /// The device does not support an RPC the operation needs (never retried).
    #[error("device {device}: RPC {rpc} is not supported")]
    Unsupported {
        /// Device name.
        device: String,
        /// The RPC (`load-configuration`, `get-vrrp-information` …).
        rpc: String,
    },
    /// The device's SSH host key is unknown or does not match the expected one.
    #[error("device {device}: host key rejected: {reason}")]
    HostKeyRejected {
        /// Device name.
        device: String,
        /// Mismatch or unknown, with the offered fingerprint.
        reason: String,
    },
    /// The device did not answer in time (transport error; retrying may help).
    #[error("device {device}: {operation} timed out after {after_ms} ms")]
    Timeout {
        /// Device name.
        device: String,
        /// `connect` or the RPC.
        operation: String,
        /// The timeout in milliseconds.
        after_ms: u64,
    },
    /// The health check after a confirmed commit failed; the change was cancelled (or left
    /// to roll back), so the device keeps its previous configuration.
    #[error("device {device}: resource {resource}: health check {check} failed: {message}")]
    HealthCheckFailed {
        /// Device name.
        device: String,
        /// Resource of the change.
        resource: String,
        /// The check's name.
        check: String,
        /// Why it failed.
        message: String,
    },
    /// The retry budget of a transaction ran out.
    #[error("device {device}: resource {resource}: gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// Device name.
        device: String,
        /// Resource of the change.
        resource: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: Box<DeviceError>,
    },
}

impl DeviceError {
    /// Lock contention and transport errors are retried; configuration errors never are.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DeviceError::LockDenied { .. }
                | DeviceError::Unreachable { .. }
                | DeviceError::Timeout { .. }
        )
    }
}

/// A Junos-like router reached over NETCONF (configuration) and polled for operational state.
#[async_trait]
pub trait Device: Send + Sync {
    /// A stable name (host name of a simulated router, `host:port` otherwise).
    fn name(&self) -> &str;

    /// One transaction: discard, lock, delete + merge-load + additional commands, commit,
    /// unlock (devices.md §4). On error nothing of the change is committed.
    async fn load_config(&self, change: &ConfigChange) -> Result<CommitInfo, DeviceError>;

    /// Deletes statements (set-form token paths) in one transaction; missing ones are skipped,
    /// containers left empty are removed.
    async fn remove_config(
        &self,
        resource: &str,
        paths: &[Vec<String>],
    ) -> Result<CommitInfo, DeviceError> {
        self.load_config(&ConfigChange::removal(resource, paths.to_vec()))
            .await
    }

    /// The running configuration as Junos text (secrets masked).
    async fn configuration(&self) -> Result<String, DeviceError>;

    /// Operational status of an interface (`xe-0/0/2` or a logical unit `xe-0/0/2.2101`).
    async fn interface_status(&self, name: &str) -> Result<OperStatus, DeviceError>;

    /// VRRP state of group `vrid` on logical interface `interface`.
    async fn vrrp_status(&self, interface: &str, vrid: u32) -> Result<VrrpState, DeviceError>;

    /// BGP state of `peer` in routing instance `instance` (empty or `master` for the main
    /// instance).
    async fn bgp_peer_status(&self, instance: &str, peer: &str) -> Result<BgpState, DeviceError>;

    /// Reachability (SNMP `sysUpTime`).
    async fn ping(&self) -> Result<(), DeviceError>;

    /// Operational status of several interfaces in one go (one request where the transport
    /// allows it: an SNMP agent answers one GET). The default asks one by one.
    async fn interface_statuses(&self, names: &[String]) -> Vec<Result<OperStatus, DeviceError>> {
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            out.push(self.interface_status(n).await);
        }
        out
    }

    /// The tsdb results of a monitoring target of type `target_type` (monitoring.md §5: report
    /// keys such as `traffic.in`, `cpu.user`, `tcp.active`), for `interface` when the type is a
    /// port type. The default (a device without counters) reports nothing.
    async fn metrics(
        &self,
        target_type: &str,
        interface: Option<&str>,
    ) -> Result<Vec<(String, f64)>, DeviceError> {
        let _ = (target_type, interface);
        Ok(Vec::new())
    }
}

/// Resolves the device an address names and opens (or reuses) a session.
#[async_trait]
pub trait DeviceRegistry: Send + Sync {
    /// The device at `address`, authenticated with `credentials`.
    async fn connect(
        &self,
        address: &DeviceAddress,
        credentials: &Credentials,
    ) -> Result<Arc<dyn Device>, DeviceError>;
}

/// Retry policy of one transaction (devices.md §4.3: every 5 s within `lock_timeout` s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total budget.
    pub budget: Duration,
    /// Pause between attempts.
    pub interval: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            budget: Duration::from_secs(3000),
            interval: Duration::from_secs(5),
        }
    }
}

/// Runs [`Device::load_config`], retrying retryable errors every `policy.interval` until
/// `policy.budget` is spent (`tokio::time`, so paused test clocks apply).
pub async fn load_with_retry(
    device: &dyn Device,
    change: &ConfigChange,
    policy: RetryPolicy,
) -> Result<CommitInfo, DeviceError> {
    let mut attempts = 0u32;
    let mut spent = Duration::ZERO;
    loop {
        attempts += 1;
        match device.load_config(change).await {
            Ok(info) => return Ok(info),
            Err(e) if e.is_retryable() && spent + policy.interval <= policy.budget => {
                tracing::debug!(device = device.name(), resource = %change.resource, attempt = attempts, error = %e, "retrying transaction");
                tokio::time::sleep(policy.interval).await;
                spent += policy.interval;
            }
            Err(e) if e.is_retryable() && attempts > 1 => {
                return Err(DeviceError::RetriesExhausted {
                    device: device.name().to_string(),
                    resource: change.resource.clone(),
                    attempts,
                    last: Box::new(e),
                })
            }
            Err(e) => return Err(e),
        }
    }
}
