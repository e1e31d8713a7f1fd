//! One module per subcommand.

pub mod conformance;
pub mod expand;
pub mod plan;
pub mod run;
