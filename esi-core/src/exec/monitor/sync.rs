//! The CollectorAgent's etcd syncer as a pure state machine (EXEC.md
//! "sync", monitoring.md §4).
//!
//! * only targets whose `syncer_properties` contain `etcd` write etcd;
//! * payload `{<etcd.status.key>: <status>, "version": <target version>}`
//!   at `/monitoring/v2.0/<resource_type>/<resource_id>`;
//! * a payload equal to what the key holds is not written; `first_time` is
//!   true for the first write of the target;
//! * **hold** (`etcd.hold_options = {positive_status, time_seconds}`): in the
//!   window `[created_at, created_at + time_seconds)` only a *positive*
//!   status is written and the first positive status ends the window; after
//!   the window every change is written.
//! * deleting the target deletes the key if present.
//!
//! Decisions for unrecorded paths (open-questions O1): a non-positive status
//! inside the window is withheld (nothing is queued); the first result after
//! the window is compared with the key and written if different, so the
//! latest status is what gets published. A positive status inside the window
//! ends the hold even when it equals the key's value (no write needed then).

use serde_json::{json, Map, Value};

use super::time::Timestamp;
use super::{MonitorError, MonitoringTarget};

/// Which statuses count as positive for the hold.
#[derive(Debug, Clone, PartialEq)]
pub enum PositiveStatus {
    /// Positive if the status equals an item; a map item matches as
    /// [`PositiveStatus::Map`] does.
    List(Vec<Value>),
    /// Positive if every entry is present with the same value in the status map.
    Map(Map<String, Value>),
}

fn map_matches(want: &Map<String, Value>, status: &Value) -> bool {
    match status {
        Value::Object(got) => want.iter().all(|(k, v)| got.get(k) == Some(v)),
        _ => false,
    }
}

impl PositiveStatus {
    /// Reads `positive_status` (a list, a map, or a single scalar).
    pub fn from_value(v: &Value) -> Self {
        match v {
            Value::Array(items) => PositiveStatus::List(items.clone()),
            Value::Object(m) => PositiveStatus::Map(m.clone()),
            other => PositiveStatus::List(vec![other.clone()]),
        }
    }

    /// Whether `status` is positive.
    pub fn is_positive(&self, status: &Value) -> bool {
        match self {
            PositiveStatus::Map(m) => map_matches(m, status),
            PositiveStatus::List(items) => items.iter().any(|item| match item {
                Value::Object(m) => map_matches(m, status),
                other => other == status,
            }),
        }
    }
}

/// The hold window of one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    positive: PositiveStatus,
    until: Timestamp,
    active: bool,
}

impl Hold {
    /// A hold running from `created_at` for `time_seconds`.
    pub fn new(positive: PositiveStatus, created_at: Timestamp, time_seconds: f64) -> Self {
        Hold {
            positive,
            until: created_at.plus_seconds(time_seconds),
            active: true,
        }
    }

    /// Whether the hold still withholds non-positive statuses at `now`.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.active && now < self.until
    }

    /// Decides whether `status` observed at `now` may be written; a positive
    /// status inside the window ends the hold.
    pub fn admit(&mut self, status: &Value, now: Timestamp) -> bool {
        if !self.is_active(now) {
            self.active = false;
            return true;
        }
        if self.positive.is_positive(status) {
            self.active = false;
            return true;
        }
        false
    }
}

/// One etcd operation of the syncer.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitoringWrite {
    /// `set key = value`.
    Set {
        /// `/monitoring/v2.0/<resource_type>/<resource_id>`.
        key: String,
        /// `{<status key>: status, "version": v}`.
        value: Value,
        /// First write of this target.
        first_time: bool,
    },
    /// `delete key`.
    Delete {
        /// The key.
        key: String,
    },
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

impl MonitoringWrite {
    /// The value as the agent stores it in etcd: compact JSON with keys
    /// sorted (`{"version":3,"vmi":"UP"}`); `None` for deletes.
    pub fn etcd_text(&self) -> Option<String> {
        match self {
            MonitoringWrite::Set { value, .. } => Some(sorted(value).to_string()),
            MonitoringWrite::Delete { .. } => None,
        }
    }

    /// `{op, key, value?, first_time?}` as in the conformance cases.
    pub fn to_json(&self) -> Value {
        match self {
            MonitoringWrite::Set {
                key,
                value,
                first_time,
            } => json!({"op": "set", "key": key, "value": value, "first_time": first_time}),
            MonitoringWrite::Delete { key } => json!({"op": "delete", "key": key}),
        }
    }
}

/// The etcd syncer state of one target.
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdSync {
    key: String,
    status_key: String,
    version: Value,
    hold: Option<Hold>,
    current: Option<Value>,
    written: bool,
    deleted: bool,
}

impl EtcdSync {
    /// The syncer of `target`, or `None` for tsdb-only targets.
    /// `etcd_before` is the key's value before the target existed.
    pub fn new(
        target: &MonitoringTarget,
        etcd_before: Option<Value>,
    ) -> Result<Option<Self>, MonitorError> {
        let Some(etcd) = target.syncer_properties.get("etcd") else {
            return Ok(None);
        };
        let status_key = etcd
            .pointer("/status/key")
            .and_then(Value::as_str)
            .ok_or_else(|| MonitorError::MalformedTarget {
                target: target.label(),
                field: "syncer_properties.etcd.status.key".into(),
                reason: "missing or not a string".into(),
            })?
            .to_string();
        let hold = match etcd.get("hold_options") {
            None | Some(Value::Null) => None,
            Some(opts) => {
                let bad = |reason: &str| MonitorError::MalformedTarget {
                    target: target.label(),
                    field: "syncer_properties.etcd.hold_options".into(),
                    reason: reason.into(),
                };
                let secs = opts
                    .get("time_seconds")
                    .and_then(|v| {
                        v.as_f64()
                            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    })
                    .ok_or_else(|| bad("time_seconds missing or not a number"))?;
                let positive = opts
                    .get("positive_status")
                    .map(PositiveStatus::from_value)
                    .ok_or_else(|| bad("positive_status missing"))?;
                let created = target
                    .created_at
                    .ok_or_else(|| MonitorError::MalformedTarget {
                        target: target.label(),
                        field: "created_at".into(),
                        reason: "needed for the hold window".into(),
                    })?;
                Some(Hold::new(positive, created, secs))
            }
        };
        Ok(Some(EtcdSync {
            key: target.etcd_key(),
            status_key,
            version: target.version.clone(),
            hold,
            current: etcd_before.filter(|v| !v.is_null()),
            written: false,
            deleted: false,
        }))
    }

    /// The key this syncer writes.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// A polled status arrives at `now`: the write it causes, if any.
    pub fn next(&mut self, status: &Value, now: Timestamp) -> Option<MonitoringWrite> {
        if self.deleted {
            return None;
        }
        if let Some(hold) = &mut self.hold {
            if !hold.admit(status, now) {
                return None;
            }
        }
        let mut payload = Map::new();
        payload.insert(self.status_key.clone(), status.clone());
        payload.insert("version".into(), self.version.clone());
        let payload = Value::Object(payload);
        if self.current.as_ref() == Some(&payload) {
            return None;
        }
        self.current = Some(payload.clone());
        let first_time = !self.written;
        self.written = true;
        Some(MonitoringWrite::Set {
            key: self.key.clone(),
            value: payload,
            first_time,
        })
    }

    /// For a target taken over from another process: if the key already holds a positive
    /// status of this target's version (written by the previous poller), its hold window has
    /// ended (monitoring.md §4.4: the first positive write ends it).
    pub fn resume(&mut self) {
        let published = match &self.current {
            Some(v) if v.get("version") == Some(&self.version) => v.get(&self.status_key),
            _ => None,
        };
        if let (Some(status), Some(hold)) = (published, &self.hold) {
            if hold.positive.is_positive(status) {
                self.hold = None;
            }
        }
    }

    /// The target is deleted: delete the key if present.
    pub fn delete(&mut self) -> Option<MonitoringWrite> {
        self.deleted = true;
        self.current.take().map(|_| MonitoringWrite::Delete {
            key: self.key.clone(),
        })
    }
}
