//! The adapter's typed errors and their mapping to [`esi_core::device::DeviceError`].

use std::time::Duration;

use esi_core::device::DeviceError;

use crate::framing::FramingError;
use crate::xml::RpcError;

/// A NETCONF operation that failed. Every variant names the device (`host:port`); none carries
/// a password, key or configuration secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetconfError {
    /// TCP connect failed (dead port, no route).
    #[error("device {device}: cannot connect: {message}")]
    Connect {
        /// Device.
        device: String,
        /// The OS error.
        message: String,
    },
    /// The server's host key is not the expected one (or unknown).
    #[error("device {device}: host key rejected: {reason}")]
    HostKey {
        /// Device.
        device: String,
        /// Mismatch or unknown, with the offered fingerprint.
        reason: String,
    },
    /// Authentication refused.
    #[error("device {device}: authentication failed for {username}")]
    Auth {
        /// Device.
        device: String,
        /// User.
        username: String,
    },
    /// SSH-level failure after connecting (or the subsystem refused).
    #[error("device {device}: ssh: {message}")]
    Ssh {
        /// Device.
        device: String,
        /// What failed.
        message: String,
    },
    /// No answer in time.
    #[error("device {device}: {operation} timed out after {after:?}")]
    Timeout {
        /// Device.
        device: String,
        /// `connect` or the RPC name.
        operation: String,
        /// The timeout.
        after: Duration,
    },
    /// The server closed the session.
    #[error("device {device}: session closed by the server")]
    Closed {
        /// Device.
        device: String,
    },
    /// Bad framing or XML from the server.
    #[error("device {device}: protocol error: {message}")]
    Protocol {
        /// Device.
        device: String,
        /// What was wrong.
        message: String,
    },
    /// The server does not support an RPC (never retried).
    #[error("device {device}: RPC {rpc} is not supported by the device")]
    Unsupported {
        /// Device.
        device: String,
        /// The RPC.
        rpc: String,
    },
    /// The candidate is locked by another session.
    #[error("device {device}: lock-denied: {message}")]
    LockDenied {
        /// Device.
        device: String,
        /// The server's message.
        message: String,
    },
    /// The server answered an RPC with `<rpc-error>`.
    #[error("device {device}: {rpc} failed: {error}")]
    Rpc {
        /// Device.
        device: String,
        /// The RPC.
        rpc: String,
        /// The (first) error.
        error: Box<RpcError>,
    },
    /// The health check after a confirmed commit failed; the change was cancelled.
    #[error("device {device}: health check {check} failed: {message}; confirmed commit cancelled")]
    HealthCheck {
        /// Device.
        device: String,
        /// The check's name.
        check: String,
        /// Why it failed.
        message: String,
    },
    /// No session slot became free in time (global cap).
    #[error("device {device}: no free session slot (cap {cap})")]
    SessionLimit {
        /// Device.
        device: String,
        /// The cap.
        cap: usize,
    },
}

impl NetconfError {
    /// The same error naming the device `name` (a device reached through a
    /// [`DeviceMap`](crate::DeviceMap) is named as the resources name it).
    pub fn with_device(mut self, name: &str) -> Self {
        match &mut self {
            NetconfError::Connect { device, .. }
            | NetconfError::HostKey { device, .. }
            | NetconfError::Auth { device, .. }
            | NetconfError::Ssh { device, .. }
            | NetconfError::Timeout { device, .. }
            | NetconfError::Closed { device }
            | NetconfError::Protocol { device, .. }
            | NetconfError::Unsupported { device, .. }
            | NetconfError::LockDenied { device, .. }
            | NetconfError::Rpc { device, .. }
            | NetconfError::HealthCheck { device, .. }
            | NetconfError::SessionLimit { device, .. } => *device = name.to_string(),
        }
        self
    }

    /// Transport errors and lock contention may succeed on retry; nothing else is retried.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            NetconfError::Connect { .. }
                | NetconfError::Ssh { .. }
                | NetconfError::Timeout { .. }
                | NetconfError::Closed { .. }
                | NetconfError::LockDenied { .. }
                | NetconfError::SessionLimit { .. }
        )
    }

    /// Whether the session is unusable after this error (it is then dropped).
    pub fn breaks_session(&self) -> bool {
        matches!(
            self,
            NetconfError::Connect { .. }
                | NetconfError::Ssh { .. }
                | NetconfError::Timeout { .. }
                | NetconfError::Closed { .. }
                | NetconfError::Protocol { .. }
        )
    }

    pub(crate) fn framing(device: &str, e: FramingError) -> Self {
        NetconfError::Protocol {
            device: device.to_string(),
            message: e.to_string(),
        }
    }

    /// The core error for a failure in the transaction of `resource`, at `stage`
    /// (`load` or `commit`).
    pub fn into_device_error(self, resource: &str, stage: Stage) -> DeviceError {
        let resource = resource.to_string();
        match self {
            NetconfError::Connect { device, .. }
            | NetconfError::Closed { device }
            | NetconfError::Ssh { device, .. }
            | NetconfError::SessionLimit { device, .. } => DeviceError::Unreachable { device },
            NetconfError::Timeout {
                device,
                operation,
                after,
            } => DeviceError::Timeout {
                device,
                operation,
                after_ms: after.as_millis() as u64,
            },
            NetconfError::HostKey { device, reason } => {
                DeviceError::HostKeyRejected { device, reason }
            }
            NetconfError::Auth { device, username } => {
                DeviceError::AuthenticationFailed { device, username }
            }
            NetconfError::Unsupported { device, rpc } => DeviceError::Unsupported { device, rpc },
            NetconfError::LockDenied { device, .. } => DeviceError::LockDenied { device, resource },
            NetconfError::HealthCheck {
                device,
                check,
                message,
            } => DeviceError::HealthCheckFailed {
                device,
                resource,
                check,
                message,
            },
            e @ (NetconfError::Protocol { .. } | NetconfError::Rpc { .. }) => {
                let device = match &e {
                    NetconfError::Protocol { device, .. } | NetconfError::Rpc { device, .. } => {
                        device.clone()
                    }
                    _ => String::new(),
                };
                let message = match &e {
                    NetconfError::Rpc { rpc, error, .. } => format!("{rpc}: {error}"),
                    NetconfError::Protocol { message, .. } => message.clone(),
                    _ => String::new(),
                };
                match stage {
                    Stage::Load => DeviceError::LoadFailed {
                        device,
                        resource,
                        message,
                    },
                    Stage::Commit => DeviceError::CommitFailed {
                        device,
                        resource,
                        message,
                    },
                }
            }
        }
    }
}

/// Where in the transaction an error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before the commit.
    Load,
    /// The commit (or its confirmation).
    Commit,
}
