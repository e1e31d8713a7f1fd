//! esi-core integration tests (one binary: far less linking on a 2-core CI).

mod devices;
mod errors;
mod exec_cases;
mod exec_sensitivity;
mod exec_world_templates;
mod expansion;
mod fixture;
mod heat_local;
mod mapping;
mod properties;
mod runtime;
mod simulation;
mod store;

/// The conformance corpus: `$ESI_CONFORMANCE`, else `../shared/conformance` beside the repo.
/// Tests that read it are `#[ignore]`d with that reason; CI runs them with `--include-ignored`.
pub fn corpus() -> std::path::PathBuf {
    match std::env::var_os("ESI_CONFORMANCE") {
        Some(p) => std::path::PathBuf::from(p),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance"),
    }
}
