pub use esi_core::*;

/// SNMP polling for the collector (feature `snmp`).
#[cfg(feature = "snmp")]
pub use esi_snmp as snmp;
