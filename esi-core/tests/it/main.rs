//! esi-core integration tests (one binary: far less linking on a 2-core CI).

mod errors;
mod expansion;
mod fixture;
mod mapping;
mod properties;
mod store;
