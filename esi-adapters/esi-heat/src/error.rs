//! Error classification shared by the Keystone and Heat calls.

use esi_core::heat::HeatError;

/// The outcome class of a failed call, before it is attached to a stack name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallError {
    /// Retrying may help (transport, 5xx, 409 exhausted, Keystone unreachable).
    Unavailable(String),
    /// It will not (400/401/403/404-on-create, wrong credentials).
    Rejected(String),
}

impl CallError {
    /// As the trait's error for stack `stack`.
    pub(crate) fn into_heat(self, stack: &str) -> HeatError {
        match self {
            CallError::Unavailable(m) => HeatError::Unavailable(m),
            CallError::Rejected(reason) => HeatError::Rejected {
                stack: stack.to_string(),
                reason,
            },
        }
    }
}

/// A transport error in a few words (reqwest's message without the request details).
pub(crate) fn transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_decode() {
        "bad response body"
    } else {
        "transport error"
    };
    let mut cause = String::new();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}
