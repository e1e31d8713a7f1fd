//! Keystone v3: issuing a project-scoped token, finding the orchestration endpoint in its
//! catalog, and caching it until shortly before it expires.

use std::time::{Duration, Instant};

use esi_core::secret::Secret;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::config::{Auth, Domain, Named};
use crate::error::CallError;

/// A token and where it leads.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// `X-Subject-Token`.
    pub value: Secret<String>,
    /// When to get a new one.
    pub refresh_at: Instant,
    /// The orchestration endpoint of the catalog (region and interface as configured).
    pub heat_url: Option<String>,
}

fn domain(d: &Domain) -> Value {
    match d {
        Domain::Name(n) => json!({"name": n}),
        Domain::Id(i) => json!({"id": i}),
    }
}

fn named(n: &Named) -> Value {
    match n {
        Named::Id(id) => json!({"id": id}),
        Named::Name { name, domain: d } => json!({"name": name, "domain": domain(d)}),
    }
}

/// The request body of `POST /v3/auth/tokens` (holds the secret: never logged).
fn auth_body(auth: &Auth) -> Option<Value> {
    match auth {
        Auth::None => None,
        Auth::Password {
            user,
            password,
            project,
            ..
        } => {
            let mut u = named(user);
            if let Value::Object(m) = &mut u {
                m.insert("password".into(), password.expose().clone().into());
            }
            Some(json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": u}},
                "scope": {"project": named(project)}
            }}))
        }
        Auth::ApplicationCredential { id, secret, .. } => Some(json!({"auth": {
            "identity": {"methods": ["application_credential"],
                         "application_credential": {"id": id, "secret": secret.expose()}}
        }})),
    }
}

/// Seconds since the epoch of an ISO-8601 UTC time as Keystone writes it
/// (`2026-12-03T11:39:00.000000Z`).
pub(crate) fn parse_time(s: &str) -> Option<f64> {
    let s = s.trim().trim_end_matches('Z');
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('+').next()?;
    let mut t = time.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let mi: i64 = t.next()?.parse().ok()?;
    let sec: f64 = t.next().unwrap_or("0").parse().ok()?;
    // days from civil (Howard Hinnant)
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some((days * 86400 + h * 3600 + mi * 60) as f64 + sec)
}

/// The lifetime of a token from its `issued_at` and `expires_at` (both Keystone's clock).
fn lifetime(token: &Value) -> Option<Duration> {
    let issued = parse_time(token.get("issued_at")?.as_str()?)?;
    let expires = parse_time(token.get("expires_at")?.as_str()?)?;
    (expires > issued).then(|| Duration::from_secs_f64(expires - issued))
}

/// Renew this long before expiry: a quarter of the lifetime, at most 60 s.
fn margin(life: Duration) -> Duration {
    (life / 4).min(Duration::from_secs(60))
}

fn catalog_url(token: &Value, region: Option<&str>, interface: &str) -> Option<String> {
    let catalog = token.get("catalog")?.as_array()?;
    catalog
        .iter()
        .filter(|s| s.get("type").and_then(Value::as_str) == Some("orchestration"))
        .flat_map(|s| {
            s.get("endpoints")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .find(|e| {
            e.get("interface").and_then(Value::as_str) == Some(interface)
                && region.is_none_or(|r| {
                    e.get("region_id").and_then(Value::as_str) == Some(r)
                        || e.get("region").and_then(Value::as_str) == Some(r)
                })
        })
        .and_then(|e| {
            e.get("url")
                .and_then(Value::as_str)
                .map(|u| u.trim_end_matches('/').to_string())
        })
}

/// Keystone's (or Heat's) error message from an OpenStack error body.
pub(crate) fn message_of(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let err = v.get("error");
    let msg = err
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .or_else(|| v.get("explanation").and_then(Value::as_str))
        .or_else(|| v.get("message").and_then(Value::as_str));
    match (err.and_then(|e| e.get("type")).and_then(Value::as_str), msg) {
        (Some(t), Some(m)) => format!("{t}: {m}"),
        (None, Some(m)) => m.to_string(),
        _ => body
            .chars()
            .take(300)
            .collect::<String>()
            .trim()
            .to_string(),
    }
}

/// Issues a token with `auth`.
pub(crate) async fn issue(
    http: &reqwest::Client,
    auth: &Auth,
    region: Option<&str>,
    interface: &str,
) -> Result<Token, CallError> {
    let (Some(url), Some(body)) = (auth.auth_url(), auth_body(auth)) else {
        return Err(CallError::Rejected("no Keystone configured".into()));
    };
    let endpoint = format!("{}/auth/tokens", url.trim_end_matches('/'));
    let resp = http.post(&endpoint).json(&body).send().await.map_err(|e| {
        CallError::Unavailable(format!("keystone {url}: {}", crate::error::transport(&e)))
    })?;
    let status = resp.status();
    let subject = resp
        .headers()
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.text().await.unwrap_or_default();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Err(CallError::Unavailable(format!(
            "keystone {url}: {status}: {}",
            message_of(&text)
        )));
    }
    if !status.is_success() {
        return Err(CallError::Rejected(format!(
            "keystone {url} refused the credentials ({status}): {}",
            message_of(&text)
        )));
    }
    let Some(subject) = subject else {
        return Err(CallError::Unavailable(format!(
            "keystone {url}: {status} without X-Subject-Token"
        )));
    };
    let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let token = doc.get("token").cloned().unwrap_or(Value::Null);
    let life = lifetime(&token).unwrap_or(Duration::from_secs(300));
    tracing::debug!(keystone = %url, lifetime_s = life.as_secs(), "keystone token issued");
    Ok(Token {
        value: Secret::new(subject),
        refresh_at: Instant::now() + life - margin(life),
        heat_url: catalog_url(&token, region, interface),
    })
}

/// Revokes `token` (`DELETE /v3/auth/tokens`, the token revoking itself).
pub(crate) async fn revoke(
    http: &reqwest::Client,
    auth: &Auth,
    token: &Secret<String>,
) -> Result<(), CallError> {
    let Some(url) = auth.auth_url() else {
        return Ok(());
    };
    let resp = http
        .delete(format!("{}/auth/tokens", url.trim_end_matches('/')))
        .header("X-Auth-Token", token.expose())
        .header("X-Subject-Token", token.expose())
        .send()
        .await
        .map_err(|e| {
            CallError::Unavailable(format!("keystone {url}: {}", crate::error::transport(&e)))
        })?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(CallError::Rejected(format!(
            "keystone {url}: revoke: {}",
            resp.status()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_times_and_lifetime() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_time("2000-03-01T00:00:01.500000Z"), Some(951868801.5));
        let t = json!({"issued_at": "2026-12-03T11:39:00.000000Z", "expires_at": "2026-12-03T11:39:20.000000Z"});
        assert_eq!(lifetime(&t), Some(Duration::from_secs(20)));
        assert_eq!(margin(Duration::from_secs(20)), Duration::from_secs(5));
        assert_eq!(margin(Duration::from_secs(3600)), Duration::from_secs(60));
    }

    #[test]
    fn catalog_by_region_and_interface() {
        let t = json!({"catalog": [
            {"type": "identity", "endpoints": [{"interface": "public", "region_id": "R1", "url": "http://k/v3"}]},
            {"type": "orchestration", "endpoints": [
                {"interface": "internal", "region_id": "R1", "url": "http://int/v1/p"},
                {"interface": "public", "region_id": "R2", "url": "http://r2/v1/p"},
                {"interface": "public", "region_id": "R1", "url": "http://r1/v1/p/"}]}]});
        assert_eq!(
            catalog_url(&t, Some("R1"), "public").as_deref(),
            Some("http://r1/v1/p")
        );
        assert_eq!(
            catalog_url(&t, Some("R1"), "internal").as_deref(),
            Some("http://int/v1/p")
        );
        assert_eq!(
            catalog_url(&t, None, "public").as_deref(),
            Some("http://r2/v1/p")
        );
        assert_eq!(catalog_url(&t, Some("R3"), "public"), None);
    }

    #[test]
    fn the_auth_body_carries_the_secret_but_debug_does_not() {
        let auth = Auth::Password {
            auth_url: "http://k/v3".into(),
            user: Named::Name {
                name: "u".into(),
                domain: Domain::Name("Default".into()),
            },
            password: Secret::new("pw-123".into()),
            project: Named::Id("p1".into()),
        };
        let body = auth_body(&auth).unwrap();
        assert_eq!(
            body["auth"]["identity"]["password"]["user"]["password"],
            "pw-123"
        );
        assert_eq!(body["auth"]["scope"]["project"]["id"], "p1");
        assert!(!format!("{auth:?}").contains("pw-123"));
    }

    #[test]
    fn openstack_error_messages() {
        assert_eq!(
            message_of(
                r#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#
            ),
            "The request you have made requires authentication."
        );
        assert_eq!(
            message_of(
                r#"{"explanation": "x", "code": 400, "error": {"message": "bad", "type": "StackValidationFailed"}, "title": "Bad Request"}"#
            ),
            "StackValidationFailed: bad"
        );
    }
}
