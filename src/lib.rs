//! esi: network service orchestration. This facade re-exports the pure core ([`esi_core`]) and,
//! behind cargo features, the backends: `etcd` ([`etcd`], the `Store` on etcd v3).
pub use esi_core::*;

/// The `Store` trait over a real etcd (feature `etcd`).
#[cfg(feature = "etcd")]
pub use esi_etcd as etcd;
