//! Template paths and parameter mappings: AST, parser and evaluator.
//!
//! See `shared/spec/mappings.md`. Parse once with [`parse_mapping`] / [`parse_template_path`],
//! evaluate many times with [`Evaluator`].

pub mod ast;
pub mod eval;
pub mod parse;

pub use ast::{Condition, Hop, Items, Mapping, Pattern, TemplatePath};
pub use eval::{json_kind, Evaluated, Evaluator, Relations, ResourceView, Subject};
pub use parse::{parse_mapping, parse_template_path};

use crate::model::ResourceRef;
use thiserror::Error;

/// A malformed mapping or template path, found when it is loaded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{reason} in `{fragment}`")]
pub struct SyntaxError {
    /// The offending fragment (shortened when long).
    pub fragment: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A mapping that could not be evaluated against the data (a broken relation chain, a value of
/// the wrong shape). The caller adds the template, param and resource.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EvalError {
    /// A hop of a relation walk names a resource that does not exist.
    #[error("hop {hop}: resource {target} does not exist")]
    MissingResource {
        /// Zero-based hop index.
        hop: usize,
        /// The resource the hop named.
        target: ResourceRef,
    },
    /// A hop's id field is null or empty.
    #[error("hop {hop}: relation field `{field}` (to {target}) is empty")]
    EmptyRelation {
        /// Zero-based hop index.
        hop: usize,
        /// The id field read.
        field: String,
        /// The target type.
        target: String,
    },
    /// A path item is not a relation field of the current type.
    #[error("`{field}` is not a relation field of `{resource_type}`")]
    UnknownRelation {
        /// The type whose schema was consulted.
        resource_type: String,
        /// The field named.
        field: String,
    },
    /// An `M` mapping whose relation field is null or empty.
    #[error("relation field `{field}` is empty, so the output cannot be named")]
    NullRelation {
        /// The relation field.
        field: String,
    },
    /// An id field holds something other than a string.
    #[error("id field `{field}` holds a {found}, not a string")]
    IdNotAString {
        /// The field.
        field: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// A `for_field` source is not a list.
    #[error("`{field}` is a {found}, not a list")]
    NotAList {
        /// The iterated field.
        field: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// A concatenation part evaluated to null.
    #[error("part {part} of a concatenation is null")]
    NullInConcatenation {
        /// Zero-based part index.
        part: usize,
    },
    /// A concatenation part evaluated to a list or an object.
    #[error("part {part} of a concatenation is a {found}, not a scalar")]
    NotAScalar {
        /// Zero-based part index.
        part: usize,
        /// The JSON type found.
        found: &'static str,
    },
    /// A computed regular expression is invalid.
    #[error("invalid regular expression `{pattern}`: {reason}")]
    InvalidRegex {
        /// The pattern.
        pattern: String,
        /// The compiler's message.
        reason: String,
    },
    /// A template path evaluated to something other than a string or null.
    #[error("the template path yields a {found}, not a template id")]
    TemplateIdNotAString {
        /// The JSON type found.
        found: &'static str,
    },
}
