//! esi: network service orchestration. This facade re-exports the pure core ([`esi_core`]) and,
//! behind cargo features, the backends: `etcd` ([`etcd`], the `Store` on etcd v3) and `netconf`
//! ([`netconf`], devices over NETCONF/SSH and `esi netsim` servers).
pub use esi_core::*;

/// The `Store` trait over a real etcd (feature `etcd`).
#[cfg(feature = "etcd")]
pub use esi_etcd as etcd;

/// NETCONF/SSH devices (Junos and RFC 6241) and simulated routers served over NETCONF
/// (`esi netsim`); feature `netconf`.
#[cfg(feature = "netconf")]
pub use esi_netconf as netconf;
