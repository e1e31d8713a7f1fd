//! Secrets: a redacting wrapper and the masking of secret-looking values in JSON output.

use serde_json::Value;
use std::fmt;

/// What a masked value is replaced with.
pub const MASK: &str = "******";

/// A value that must never be printed: `Debug` and `Display` show [`MASK`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value itself, for the one place that must send it (a device login, an API call).
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
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

/// True for names that hold secrets (`password`, `admin_password`, `secondary_device_password`,
/// `auth_token`, `secret_key`, SNMP `community`, `bgp_auth_key` …).
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "private_key",
        "community",
        "auth_key",
        "psk",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// Masks, recursively, every object member whose key is a secret name, and the `value` of every
/// job param (`{"param": <secret name>, "value": …}`).
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(o) => {
            let param_is_secret = o
                .get("param")
                .and_then(Value::as_str)
                .is_some_and(is_secret_name);
            for (k, child) in o.iter_mut() {
                if (is_secret_name(k) || (param_is_secret && k == "value")) && !child.is_null() {
                    *child = Value::String(MASK.to_string());
                } else {
                    redact(child);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s} {s:?}"), "****** ******");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn passwords_are_masked_recursively_like_the_heat_worker_log() {
        let v = json!({"admin_password": "x", "credentials": {"username": "u", "password": "p"}});
        assert_eq!(
            mask_passwords(&v),
            json!({"admin_password": "***", "credentials": {"username": "u", "password": "***"}})
        );
    }

    #[test]
    fn redacts_fields_and_params_but_keeps_the_rest() {
        let mut v = json!({
            "admin_password": "pw1",
            "name": "r1",
            "params": [{"param": "secondary_device_password", "type": "value", "value": "pw2", "resources": []},
                       {"param": "hostname", "type": "value", "value": "r1", "resources": []}],
            "nested": {"auth_token": "tk-9f3e", "empty_password": null}
        });
        redact(&mut v);
        let text = v.to_string();
        for secret in ["pw1", "pw2", "tk-9f3e"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(v["params"][1]["value"], "r1");
        assert_eq!(v["nested"]["empty_password"], Value::Null);
    }
}
