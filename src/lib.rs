pub use esi_core::*;

/// NETCONF/SSH devices (Junos and RFC 6241) and simulated routers served over NETCONF
/// (`esi netsim`); feature `netconf`.
#[cfg(feature = "netconf")]
pub use esi_netconf as netconf;
