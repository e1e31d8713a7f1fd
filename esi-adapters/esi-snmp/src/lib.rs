//! SNMP polling for the esi CollectorAgent, over [`snmp2`] (async, tokio).
//!
//! * [`SnmpClient`]: one agent, one UDP socket reused for every request; v2c (community) or
//!   v3 USM (auth + privacy, context name); GET, GETNEXT, GETBULK and a GETBULK walk that
//!   stops on `endOfMibView`; a timeout and retries per request.
//! * [`SnmpDevice`]: an agent as an [`esi_core::device::Device`]: `ping` = GET `sysUpTime.0`,
//!   `interface_status` = GET `ifOperStatus.<ifIndex>` with the ifName → ifIndex map walked
//!   once per device and refreshed when an index vanishes; HC traffic counters as Counter64.
//! * [`SnmpRegistry`]: an [`esi_core::device::DeviceRegistry`] for the
//!   [`esi_core::collector::Collector`]: `snmp_device*` and `snmp_ports*` targets are polled on
//!   `<device_ip>:161` with their community, or where [`SnmpRegistry::route`] says (another
//!   port, v3 credentials). [`SplitRegistry`] sends NETCONF targets elsewhere.
//!
//! Communities and v3 passwords are [`esi_core::secret::Secret`]s: never in logs, errors or
//! `Debug` output.
//!
//! ```no_run
//! use esi_snmp::{known, SnmpAuth, SnmpClient, SnmpConfig};
//! # async fn demo() -> Result<(), esi_snmp::SnmpError> {
//! let client = SnmpClient::new(
//!     "127.0.0.1:16101".parse().unwrap(),
//!     SnmpAuth::community("public"),
//!     SnmpConfig::default(),
//! );
//! let up = client.get(&[known::sys_uptime()]).await?;
//! for (oid, name) in client.walk(&known::if_name()).await? {
//!     println!("{oid} = {:?}", name.as_text());
//! }
//! # let _ = up; Ok(()) }
//! ```

mod client;
mod device;
mod oid;

pub use client::{
    AuthProtocol, PrivProtocol, SnmpAuth, SnmpClient, SnmpConfig, SnmpError, SnmpValue,
    V3Credentials, Varbind,
};
pub use device::{InterfaceCounters, SnmpDevice, SnmpRegistry, SnmpRoute, SplitRegistry};
pub use oid::{known, Oid, OidError};
