//! `esi run WORLD [--changes FILE]`: the whole system on the embedded default.

use crate::Output;
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;

/// Runs a world to quiescence, applies scripted changes, prints the final state.
pub fn run(
    _world: &Path,
    _changes: Option<&Path>,
    _output: Output,
    _seed: u64,
) -> Result<ExitCode> {
    anyhow::bail!("esi run is not implemented yet")
}
