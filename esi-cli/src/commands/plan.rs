//! `esi plan WORLD`: what each change will do, before anything touches the network.

use crate::Output;
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;

/// Prints the plan of a world (optionally of one resource `TYPE/ID`).
pub fn run(_world: &Path, _resource: Option<&str>, _output: Output) -> Result<ExitCode> {
    anyhow::bail!("esi plan is not implemented yet")
}
