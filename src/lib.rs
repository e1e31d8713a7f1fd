pub use esi_core::*;
