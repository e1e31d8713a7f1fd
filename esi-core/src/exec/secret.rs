//! A wrapper for secrets (device passwords, hidden Heat parameters) whose
//! `Debug`/`Display` never show the value.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret value. `Debug` and `Display` print `***`; use
/// [`Secret::expose`] where the real value is needed (e.g. the SSH login).
/// Serialisation writes the real value (conformance inputs carry real values).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The wrapped value.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret<String> {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

/// Masks, recursively, every object member whose name contains `password`
/// with `"***"` — the HeatWorker's log masking of sent parameters.
pub fn mask_passwords(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = if k.to_ascii_lowercase().contains("password") {
                        Value::String("***".into())
                    } else {
                        mask_passwords(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask_passwords).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_is_redacted() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn passwords_are_masked_recursively() {
        let v = json!({"admin_password": "x", "credentials": {"username": "u", "password": "p"}});
        assert_eq!(
            mask_passwords(&v),
            json!({"admin_password": "***", "credentials": {"username": "u", "password": "***"}})
        );
    }
}
