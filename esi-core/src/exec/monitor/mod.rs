//! `ESI::Monitoring::MonitoringTarget` ↔ CollectorAgent (EXEC.md kind
//! `monitor`, monitoring.md).
//!
//! * [`target_request`] — the `POST /targets` body: the resource properties
//!   with Heat's intrinsic functions resolved (`get_param` yields the typed
//!   parameter value, `get_resource`/`get_attr` other resources' ids and
//!   attributes, `str_replace` substitutes keys longest first, `list_join`; the one
//!   implementation lives in [`crate::heat::hot`]);
//! * [`target_response`] — the agent's `201` body: request + `id`,
//!   `created_at`, `monitorer`, `link = monitorer + "/targets/" + id`;
//! * [`sync::EtcdSync`] — the etcd syncer with its hold window, as a pure
//!   state machine; [`sync_writes`] drives it over a list of events.

pub mod sync;
pub mod time;

use serde_json::{Map, Value};

pub use crate::heat::hot::{resolve_intrinsics, str_replace, IntrinsicError, StackContext};
pub use sync::{EtcdSync, Hold, MonitoringWrite, PositiveStatus};
pub use time::Timestamp;

/// Errors of the monitoring side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonitorError {
    /// An intrinsic function cannot be resolved.
    #[error("resource {resource}: {function}: {reason}")]
    Intrinsic {
        /// Heat resource name.
        resource: String,
        /// The function (`get_param`, `get_attr`, …).
        function: String,
        /// What is wrong.
        reason: String,
    },
    /// The target (request body) lacks a field or has a wrong one.
    #[error("monitoring target {target}: {field}: {reason}")]
    MalformedTarget {
        /// Target label (`<resource_type>/<resource_id>` or resource name).
        target: String,
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A timestamp is not RFC 3339.
    #[error(transparent)]
    Timestamp(#[from] time::TimestampError),
}

impl From<IntrinsicError> for MonitorError {
    fn from(e: IntrinsicError) -> Self {
        MonitorError::Intrinsic {
            resource: e.resource,
            function: e.function,
            reason: e.reason,
        }
    }
}

/// The `POST /targets` body of a MonitoringTarget resource.
pub fn target_request(
    resource_name: &str,
    resource_properties: &Value,
    ctx: StackContext<'_>,
) -> Result<Value, MonitorError> {
    let body = resolve_intrinsics(resource_name, resource_properties, ctx)?;
    let Value::Object(m) = &body else {
        return Err(MonitorError::MalformedTarget {
            target: resource_name.into(),
            field: "properties".into(),
            reason: "not a mapping".into(),
        });
    };
    for field in ["type", "resource_type", "resource_id"] {
        if !m.contains_key(field) {
            return Err(MonitorError::MalformedTarget {
                target: resource_name.into(),
                field: field.into(),
                reason: "missing".into(),
            });
        }
    }
    Ok(body)
}

/// The CollectorAgent's `201` response body for a created target.
pub fn target_response(request_body: &Value, id: &str, created_at: &str, monitorer: &str) -> Value {
    let mut m = match request_body {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    m.insert("id".into(), id.into());
    m.insert("created_at".into(), created_at.into());
    m.insert("monitorer".into(), monitorer.into());
    m.insert(
        "link".into(),
        format!("{}/targets/{}", monitorer.trim_end_matches('/'), id).into(),
    );
    Value::Object(m)
}

/// A registered target (request body + `id` + `created_at`).
#[derive(Debug, Clone, PartialEq)]
pub struct MonitoringTarget {
    /// Target type (`snmp_device`, `vrrp_pool`, …).
    pub target_type: String,
    /// Plural resource type used in the etcd key.
    pub resource_type: String,
    /// Gohan id.
    pub resource_id: String,
    /// Resource version the target was created for.
    pub version: Value,
    /// `syncer_properties`.
    pub syncer_properties: Value,
    /// Agent-assigned id.
    pub id: Option<String>,
    /// Creation time (start of the hold window).
    pub created_at: Option<Timestamp>,
}

impl MonitoringTarget {
    /// Reads a target document.
    pub fn from_value(v: &Value) -> Result<Self, MonitorError> {
        let label = format!(
            "{}/{}",
            v.get("resource_type")
                .and_then(Value::as_str)
                .unwrap_or("?"),
            v.get("resource_id").and_then(Value::as_str).unwrap_or("?")
        );
        let field = |f: &str| {
            v.get(f)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| MonitorError::MalformedTarget {
                    target: label.clone(),
                    field: f.into(),
                    reason: "missing or not a string".into(),
                })
        };
        Ok(MonitoringTarget {
            target_type: field("type")?,
            resource_type: field("resource_type")?,
            resource_id: field("resource_id")?,
            version: v.get("version").cloned().unwrap_or(Value::Null),
            syncer_properties: v.get("syncer_properties").cloned().unwrap_or(Value::Null),
            id: v.get("id").and_then(Value::as_str).map(str::to_string),
            created_at: v
                .get("created_at")
                .and_then(Value::as_str)
                .map(Timestamp::parse)
                .transpose()?,
        })
    }

    /// `<resource_type>/<resource_id>`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.resource_type, self.resource_id)
    }

    /// `/monitoring/v2.0/<resource_type>/<resource_id>`.
    pub fn etcd_key(&self) -> String {
        format!(
            "/monitoring/v2.0/{}/{}",
            self.resource_type, self.resource_id
        )
    }
}

/// An event reported for a target.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetEvent {
    /// A changed polled status at a time.
    Status {
        /// When.
        time: Timestamp,
        /// Raw status (`"UP"` or a map).
        status: Value,
    },
    /// The target was deleted.
    Deleted,
}

impl TargetEvent {
    /// Reads `{time, status}` or `{time, deleted: true}`.
    pub fn from_value(v: &Value) -> Result<Self, MonitorError> {
        if v.get("deleted").and_then(Value::as_bool) == Some(true) {
            return Ok(TargetEvent::Deleted);
        }
        let time =
            v.get("time")
                .and_then(Value::as_str)
                .ok_or_else(|| MonitorError::MalformedTarget {
                    target: "event".into(),
                    field: "time".into(),
                    reason: "missing".into(),
                })?;
        let status = v
            .get("status")
            .cloned()
            .ok_or_else(|| MonitorError::MalformedTarget {
                target: "event".into(),
                field: "status".into(),
                reason: "missing".into(),
            })?;
        Ok(TargetEvent::Status {
            time: Timestamp::parse(time)?,
            status,
        })
    }
}

/// Runs the etcd syncer of `target` over `events`; no writes for tsdb-only targets.
pub fn sync_writes(
    target: &MonitoringTarget,
    etcd_before: Option<Value>,
    events: &[TargetEvent],
) -> Result<Vec<MonitoringWrite>, MonitorError> {
    let Some(mut sync) = EtcdSync::new(target, etcd_before)? else {
        return Ok(Vec::new());
    };
    Ok(events
        .iter()
        .filter_map(|e| match e {
            TargetEvent::Status { time, status } => sync.next(status, *time),
            TargetEvent::Deleted => sync.delete(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn request_resolves_intrinsics_with_types() {
        let params = obj(json!({"uuid": "r1", "port": 22, "group": 5, "name": "x"}));
        let resources =
            obj(json!({"vmi": {"ref": "ref-1", "attrs": {"fq_name": ["d", "p", "v"]}}}));
        let props = json!({"type": "t", "resource_type": "things", "resource_id": {"get_param": "uuid"},
            "properties": {"port": {"get_param": "port"}, "ids": [{"get_param": "group"}],
                           "fq": {"get_attr": ["vmi", "fq_name", 2]}, "ref": {"get_resource": "vmi"},
                           "label": {"str_replace": {"template": "%n%-%nn%", "params": {"%n%": {"get_param": "name"}, "%nn%": 7}}}}});
        let body = target_request(
            "mon",
            &props,
            StackContext {
                parameters: &params,
                resources: &resources,
            },
        )
        .unwrap();
        assert_eq!(body["resource_id"], json!("r1"));
        assert_eq!(
            body["properties"],
            json!({"port": 22, "ids": [5], "fq": "v", "ref": "ref-1", "label": "x-7"})
        );
        let bad = target_request(
            "mon",
            &json!({"type": "t", "resource_type": "x", "resource_id": {"get_param": "nope"}}),
            StackContext {
                parameters: &params,
                resources: &resources,
            },
        );
        assert!(matches!(bad, Err(MonitorError::Intrinsic { .. })));
    }

    #[test]
    fn response_adds_link() {
        let r = target_response(
            &json!({"type": "t"}),
            "abc",
            "2020-01-01T00:00:00Z",
            "http://agent:7070",
        );
        assert_eq!(r["link"], json!("http://agent:7070/targets/abc"));
    }

    fn target(hold: Option<Value>) -> MonitoringTarget {
        let mut etcd = json!({"status": {"key": "st"}});
        if let Some(h) = hold {
            etcd["hold_options"] = h;
        }
        MonitoringTarget::from_value(&json!({"type": "t", "resource_type": "things", "resource_id": "a",
            "version": 2, "created_at": "2020-01-01T00:00:00Z", "syncer_properties": {"etcd": etcd}})).unwrap()
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::parse("2020-01-01T00:00:00Z")
            .unwrap()
            .plus_seconds(secs as f64)
    }

    #[test]
    fn dedupe_first_time_and_delete() {
        let mut s = EtcdSync::new(&target(None), Some(json!({"st": "UP", "version": 2})))
            .unwrap()
            .unwrap();
        assert_eq!(s.next(&json!("UP"), at(60)), None);
        let w = s.next(&json!("FAIL"), at(120)).unwrap();
        assert_eq!(w.to_json()["first_time"], json!(true));
        assert_eq!(w.etcd_text().unwrap(), r#"{"st":"FAIL","version":2}"#);
        assert_eq!(s.next(&json!("FAIL"), at(180)), None);
        assert!(matches!(s.delete(), Some(MonitoringWrite::Delete { .. })));
        assert_eq!(s.next(&json!("UP"), at(240)), None);
    }

    #[test]
    fn tsdb_only_targets_never_write() {
        let t = MonitoringTarget::from_value(
            &json!({"type": "t", "resource_type": "x", "resource_id": "a",
            "syncer_properties": {"tsdb": {}}}),
        )
        .unwrap();
        assert!(sync_writes(
            &t,
            None,
            &[TargetEvent::Status {
                time: at(1),
                status: json!("UP")
            }]
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn map_positive_status_and_wrapped_list() {
        let m = PositiveStatus::from_value(&json!({"p": "MASTER"}));
        assert!(m.is_positive(&json!({"p": "MASTER", "s": "BACKUP"})));
        assert!(!m.is_positive(&json!({"p": "BACKUP"})));
        let l = PositiveStatus::from_value(&json!([{"p": "MASTER"}]));
        assert!(l.is_positive(&json!({"p": "MASTER"})));
        assert!(!l.is_positive(&json!("MASTER")));
    }

    #[test]
    fn hold_withholds_until_positive_or_expiry() {
        let mut s = EtcdSync::new(
            &target(Some(
                json!({"positive_status": ["UP"], "time_seconds": 100}),
            )),
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.next(&json!("FAIL"), at(10)), None);
        assert!(s.next(&json!("UP"), at(20)).is_some());
        // hold ended by the positive write: a negative status is now written
        assert!(s.next(&json!("FAIL"), at(30)).is_some());
        let mut s = EtcdSync::new(
            &target(Some(
                json!({"positive_status": ["UP"], "time_seconds": 100}),
            )),
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.next(&json!("FAIL"), at(10)), None);
        assert!(s.next(&json!("FAIL"), at(100)).is_some());
    }

    proptest! {
        /// Inside the window only positive statuses are written (and the
        /// first one ends the window); after it, every change of status is
        /// written exactly once.
        #[test]
        fn hold_state_machine(steps in proptest::collection::vec((0u8..3, 1i64..40), 1..40),
                              window in 0i64..200) {
            let names = ["UP", "DOWN", "FAIL"];
            let t = target(Some(json!({"positive_status": ["UP"], "time_seconds": window})));
            let mut s = EtcdSync::new(&t, None).unwrap().unwrap();
            let mut now = 0i64;
            let mut hold_over = false;
            let mut last_written: Option<String> = None;
            for (idx, dt) in steps {
                now += dt;
                let status = names[idx as usize];
                let w = s.next(&json!(status), at(now));
                let in_window = !hold_over && now < window;
                if in_window {
                    if status == "UP" {
                        prop_assert!(w.is_some());
                        hold_over = true;
                    } else {
                        prop_assert!(w.is_none(), "non-positive {} written inside window", status);
                        continue;
                    }
                } else {
                    hold_over = true;
                    let changed = last_written.as_deref() != Some(status);
                    prop_assert_eq!(w.is_some(), changed);
                }
                if let Some(MonitoringWrite::Set { value, first_time, .. }) = &w {
                    prop_assert_eq!(*first_time, last_written.is_none());
                    prop_assert_eq!(&value["st"], &json!(status));
                    last_written = Some(status.to_string());
                }
            }
        }
    }
}
