//! One module per subcommand.

pub mod conformance;
pub mod expand;
pub mod netsim;
pub mod plan;
pub mod run;

use esi_core::model::ResourceRef;

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
