//! esi-core: the pure core of esi.
//!
//! Resource model, schemas and templates, the mapping language (template paths and parameter
//! mappings), job expansion, and the conformance checks that prove them against the recorded
//! behaviour. No network or disk I/O happens here.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod catalog;
pub mod clock;
pub mod collector;
pub mod conformance;
pub mod device;
pub mod exec;
pub mod expand;
pub mod generate;
pub mod heat;
pub mod keys;
pub mod mapping;
pub mod model;
pub mod plan;
pub mod runtime;
pub mod secret;
pub mod store;
pub mod validate;
pub mod world;

pub use catalog::{Catalog, HeatTemplate, LoadError, Schema};
pub use expand::{
    expand, expand_world, ChangeEvent, EventAction, ExpandError, Expansion, InFlight,
    ResourceOutcome, SeededSuffixes, SuffixSource,
};
pub use model::{Job, JobAction, JobParam, ParamType, Resource, ResourceRef};
pub use store::{MemoryStore, Store, StoreError};
pub use world::{World, WorldBuilder};
