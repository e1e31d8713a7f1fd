//! One module per subcommand.

pub mod cluster;
pub mod conformance;
pub mod expand;
pub mod monitoring;
pub mod netsim;
pub mod plan;
pub mod run;
pub mod serve;

use esi_core::model::ResourceRef;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Per router, its configuration diff as `+`/`-` set lines, the block `esi run` and
/// `esi plan --changes` both print (a test holds them equal line for line).
pub fn write_device_diffs(s: &mut String, diffs: &BTreeMap<String, Vec<String>>) {
    for (name, lines) in diffs {
        let _ = writeln!(s, "\n   router {name}:");
        for l in lines {
            let _ = writeln!(s, "     {l}");
        }
    }
}

/// `a → b → c`, with `(×n)` when the job record repeats the chain (the recorded quirk).
pub fn chain_text(chain: &[ResourceRef], repeated: usize) -> String {
    let base = chain
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" → ");
    if repeated > 1 && !base.is_empty() {
        format!("{base} (×{repeated})")
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_show_the_repetition() {
        let a = ResourceRef::new("a", "1");
        assert_eq!(chain_text(std::slice::from_ref(&a), 2), "a/1 (×2)");
        assert_eq!(chain_text(&[a], 1), "a/1");
        assert_eq!(chain_text(&[], 3), "");
    }
}
