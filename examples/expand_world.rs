//! Expand a generated world with the library and print a summary.
//!
//! `cargo run --example expand_world -- 500`

use esi::expand::{expand_world, SeededSuffixes};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100);
    let world = esi::generate::world(n)?;
    let outcomes = expand_world(&world, &mut SeededSuffixes::new(42));
    let jobs: usize = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok())
        .map(Vec::len)
        .sum();
    let deepest = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok())
        .flatten()
        .flat_map(|j| &j.params)
        .map(|p| p.resources.len())
        .max()
        .unwrap_or(0);
    println!("{n} resources -> {jobs} jobs; longest resource chain: {deepest} hops");
    Ok(())
}
