pub use esi_core::*;

/// OpenStack Heat and Keystone over HTTP (`esi-heat`): the [`esi_core::heat::Heat`] trait
/// against a real Heat. Named `openstack_heat` so it does not hide `esi::heat` (the core module).
#[cfg(feature = "heat")]
pub use esi_heat as openstack_heat;
