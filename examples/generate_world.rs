//! Write a generated world of N resources to a file, for measuring the CLI at scale
//! (`/usr/bin/time -v esi plan world-20k.json`).
//!
//! `cargo run --example generate_world -- 20000 /tmp/world-20k.json`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let path = args.next().unwrap_or_else(|| format!("world-{n}.json"));
    let doc = esi::generate::world_document(n);
    std::fs::write(&path, serde_json::to_vec(&doc)?)?;
    println!("{n} resources written to {path}");
    Ok(())
}
