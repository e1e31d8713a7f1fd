//! esi devices over NETCONF/SSH, and simulated routers served as NETCONF servers.
//!
//! * [`NetconfRegistry`] / [`NetconfDevice`] implement the core
//!   [`DeviceRegistry`](esi_core::device::DeviceRegistry) and [`Device`](esi_core::device::Device)
//!   traits over [`russh`]: SSH subsystem `netconf`, password or key authentication, host keys
//!   checked against a `known_hosts` file or pinned SHA-256 fingerprints (or, explicitly,
//!   not at all), base 1.0 and 1.1 framing, message-id matching, a timeout per RPC and on
//!   connect. One session per (host, port, user), reused and closed after 30 s idle; one
//!   transaction per device at a time; a global cap on sessions. The payload profile follows
//!   the server's capabilities: Junos (`load-configuration`) or RFC 6241 (`edit-config`).
//!   Optionally a confirmed commit with a [`HealthCheck`] before the confirming commit.
//! * [`netsim`] serves [`SimRouter`](esi_core::device::SimRouter)s as Junos-dialect NETCONF
//!   servers (what `esi netsim` runs).
//!
//! # Why not `rustnetconf`
//!
//! `rustnetconf` 0.19 (also on russh 0.65, with a Junos API) was evaluated from its
//! documentation and the shared recipe findings, not adopted: it hangs forever in connect
//! against a server that sends its `<hello>` before the SSH subsystem-success message, and
//! its RPC timeout does not cover connect, while this adapter needs a bounded connect (dead or
//! lying servers must give a typed error within the timeout), pinned SHA-256 fingerprints
//! beside known_hosts, the netconfd hello/first-RPC pause, typed errors that map onto the core
//! `DeviceError` (lock contention vs. configuration errors vs. unsupported RPCs), and the same
//! framing code on the server side for `esi netsim`. The client here is ~600 lines over russh.
//!
//! ```no_run
//! use esi_core::device::{ConfigChange, Credentials, DeviceAddress, DeviceRegistry};
//! use esi_core::secret::Secret;
//! use esi_netconf::{HostKeyPolicy, NetconfOptions, NetconfRegistry};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let options = NetconfOptions::default().with_host_keys(HostKeyPolicy::Fingerprints(vec![
//!     "SHA256:2mXyT0cL0iG6B7w1bU3k9o0PZg0m0m1p0i3q5yE7R3A".into(),
//! ]));
//! let registry = NetconfRegistry::new(options);
//! let device = registry
//!     .connect(
//!         &DeviceAddress { host: "10.79.5.185".into(), port: Some(830) },
//!         &Credentials::Login { username: "esi".into(), password: Secret::new("…".into()) },
//!     )
//!     .await?;
//! let change = ConfigChange {
//!     resource: "vpn_gateway/b1da850c".into(),
//!     merge_text: "interfaces { ae0 { unit 1025 { vlan-id 1025; } } }".into(),
//!     ..Default::default()
//! };
//! esi_core::device::load_with_retry(device.as_ref(), &change, Default::default()).await?;
//! # Ok(()) }
//! ```

mod device;
mod device_map;
mod error;
pub mod framing;
pub mod netsim;
mod session;
pub mod xml;

pub use device::{
    touched_interfaces, AllOf, ConfirmedCommit, FnCheck, HealthCheck, InterfacesUp, NetconfDevice,
    NetconfOptions, NetconfRegistry, Profile, ProfileChoice, VrrpActive,
};
pub use device_map::{DeviceMap, DeviceMapEntry, DeviceMapError};
pub use error::{NetconfError, Stage};
/// The SSH key types of the API ([`NetsimOptions::authorized_keys`](netsim::NetsimOptions)).
pub use russh::keys as russh_keys;
pub use session::{
    rpc_name, Auth, HostKeyPolicy, Session, SessionOptions, Target, BASE_10, BASE_11,
    JUNOS_CAPABILITY,
};
