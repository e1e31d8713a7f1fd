//! The typed form of `parameter_mappings` and `template_path` expressions.
//!
//! Both languages share one AST: a template path is a mapping restricted to the forms
//! `C`, `P`, `A` (with `C`/`P` parts), `{"constant"}`, `{"field"}`, `{"concatenate"}` and
//! `{"if_mapping"}`. Parsing happens once, when a template or schema is loaded
//! ([`super::parse`]); evaluation ([`super::eval`]) only ever sees a well-formed tree.

use regex::Regex;
use serde_json::Value;

/// One parsed mapping.
#[derive(Debug, Clone)]
pub enum Mapping {
    /// `P<field>`: read a field of the context, JSON type unchanged, no resources.
    Read(String),
    /// `C<text>` or a bare string operand: always a string.
    Text(String),
    /// `{"constant": c}`: `c` with its own JSON type.
    Constant(Value),
    /// `V…` / `{"version": …}`: the config version of the change.
    Version,
    /// `O<obj>:<key>` / `{"nested": [k1, …]}`: `read(k1)[k2]…`.
    Nested(Vec<String>),
    /// `A<p1>&<p2>…` / `{"concatenate": [...]}`: text concatenation of the parts.
    Concat(Vec<Mapping>),
    /// `{"field": f}`: read `f`; a relation field with a non-empty id names that resource.
    Field(String),
    /// `F<T>+<r>:…:<f>` / `{"field": f, "path": [...]}`: walk the path, read `field` at the end.
    Walk {
        /// The hops, in order.
        path: Vec<Hop>,
        /// The field read on the last resource.
        field: String,
        /// A missing resource on the path yields `""` instead of an error.
        ignore_missing: bool,
    },
    /// `M<T>:<relfield>:<key>`: an output of the related resource's stack.
    RelatedOutput {
        /// Target resource type.
        resource_type: String,
        /// The field holding the target id.
        id_field: String,
        /// The stack output key.
        output_key: String,
    },
    /// `{"output_key": k}` / `{"output_key": k, "path": [...]}`: an output of the context
    /// resource's stack, or of the last resource of the walk.
    Output {
        /// The stack output key.
        output_key: String,
        /// The walk (empty: the context resource itself).
        path: Vec<Hop>,
        /// A missing resource on the path yields `""` instead of an error.
        ignore_missing: bool,
    },
    /// `{"for_field": F, "for_mapping": M}`: evaluate `each` for every element of a list.
    ForEach {
        /// Where the list comes from.
        items: Box<Items>,
        /// Evaluated once per element, in element context.
        each: Box<Mapping>,
    },
    /// `{"if_mapping": c, "then_mapping": a, "else_mapping": b}`.
    If {
        /// The condition.
        cond: Box<Condition>,
        /// Chosen when the condition holds.
        then: Box<Mapping>,
        /// Chosen otherwise.
        otherwise: Box<Mapping>,
    },
}

/// The source of a `for_field` iteration.
#[derive(Debug, Clone)]
pub enum Items {
    /// A field of the context.
    Field(String),
    /// Any mapping; its resources come first in the result.
    Mapping(Mapping),
}

/// One hop of a relation walk.
#[derive(Debug, Clone)]
pub enum Hop {
    /// A relation field of the current resource's schema (target type from the schema).
    Relation(String),
    /// An explicit target type and the field holding the id (`""`: the loop element itself).
    Typed {
        /// Target resource type.
        resource_type: String,
        /// The field holding the id.
        id_field: String,
    },
    /// A relation field name built from the current resource (e.g. `service_type` + `_gw_id`).
    Computed(Vec<Mapping>),
}

/// A condition of an `if_mapping`.
#[derive(Debug, Clone)]
pub enum Condition {
    /// The two operands are equal JSON values.
    Equal(Mapping, Mapping),
    /// Python `re.match` semantics: the pattern matches at the start of the value.
    Regexp(Mapping, Pattern),
}

/// The pattern operand of a `regexp` condition.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// A constant pattern, compiled (anchored) at load time.
    Static(Regex),
    /// A pattern computed at evaluation time.
    Dynamic(Mapping),
}

/// A parsed template path: `None` when the schema has no path for the handler.
#[derive(Debug, Clone)]
pub struct TemplatePath(pub Mapping);
