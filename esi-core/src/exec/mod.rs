//! The execution half of ESI as pure functions: a job becomes a Heat
//! request ([`stack`]), a Heat result becomes etcd documents ([`state`]),
//! Heat's display of parameters ([`heat_view`]), the Junos configuration of
//! `OS::Contrail::NetconfNamedConfigs` ([`junos`]), and the CollectorAgent
//! side of `ESI::Monitoring::MonitoringTarget` ([`monitor`]).
//! [`conformance`] checks the recorded execution cases.
//!
//! No I/O happens here; callers supply stored documents and receive the
//! requests and writes to perform.

pub mod conformance;
pub mod heat_view;
pub mod job;
pub mod junos;
pub mod monitor;
pub mod pytext;
pub mod render;
pub mod stack;
pub mod state;
pub mod template_path;
pub mod yaml;

pub use conformance::{check_exec_case, ExecVerdict};
