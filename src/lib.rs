//! esi: network service orchestration. This facade re-exports the pure core ([`esi_core`]) and,
//! behind cargo features, the backends: `etcd` ([`etcd`], the `Store` on etcd v3), `heat`
//! (`openstack_heat`, the `Heat` trait on OpenStack Heat), `netconf` ([`netconf`], devices over
//! NETCONF/SSH and `esi netsim` servers) and `snmp` ([`snmp`], SNMP polling for the collector).
pub use esi_core::*;

/// The `Store` trait over a real etcd (feature `etcd`).
#[cfg(feature = "etcd")]
pub use esi_etcd as etcd;

/// OpenStack Heat and Keystone over HTTP (`esi-heat`): the [`esi_core::heat::Heat`] trait
/// against a real Heat. Named `openstack_heat` so it does not hide `esi::heat` (the core module).
#[cfg(feature = "heat")]
pub use esi_heat as openstack_heat;
/// NETCONF/SSH devices (Junos and RFC 6241) and simulated routers served over NETCONF
/// (`esi netsim`); feature `netconf`.
#[cfg(feature = "netconf")]
pub use esi_netconf as netconf;

/// SNMP polling for the collector (feature `snmp`).
#[cfg(feature = "snmp")]
pub use esi_snmp as snmp;
