//! Object identifiers as owned arc lists, and the OIDs the CollectorAgent polls
//! (monitoring.md §3).

use std::fmt;
use std::str::FromStr;

/// An SNMP object identifier (`1.3.6.1.2.1.1.3.0`), owned.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid(Vec<u64>);

/// A string that is not a dotted OID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid OID {text:?}: {reason}")]
pub struct OidError {
    /// The text given.
    pub text: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl Oid {
    /// An OID from its arcs.
    pub fn new(arcs: impl Into<Vec<u64>>) -> Self {
        Oid(arcs.into())
    }

    /// The arcs.
    pub fn arcs(&self) -> &[u64] {
        &self.0
    }

    /// This OID with `arc` appended (a table column plus an index).
    pub fn child(&self, arc: u64) -> Oid {
        let mut v = self.0.clone();
        v.push(arc);
        Oid(v)
    }

    /// Whether `self` lies under `root` (or equals it).
    pub fn starts_with(&self, root: &Oid) -> bool {
        self.0.starts_with(&root.0)
    }

    /// The last arc (the table index of a column instance).
    pub fn last(&self) -> Option<u64> {
        self.0.last().copied()
    }

    pub(crate) fn to_snmp2(&self) -> Result<snmp2::Oid<'static>, OidError> {
        snmp2::Oid::from(&self.0).map_err(|_| OidError {
            text: self.to_string(),
            reason: "not encodable (needs at least two arcs, the first 0..=2)",
        })
    }

    pub(crate) fn from_snmp2(oid: &snmp2::Oid<'_>) -> Option<Oid> {
        oid.iter().map(|arcs| Oid(arcs.collect()))
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for a in &self.0 {
            if !first {
                f.write_str(".")?;
            }
            first = false;
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl FromStr for Oid {
    type Err = OidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().trim_start_matches('.');
        if t.is_empty() {
            return Err(OidError {
                text: s.into(),
                reason: "empty",
            });
        }
        let arcs = t
            .split('.')
            .map(|p| p.parse::<u64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| OidError {
                text: s.into(),
                reason: "arcs must be decimal numbers separated by dots",
            })?;
        if arcs.len() < 2 {
            return Err(OidError {
                text: s.into(),
                reason: "needs at least two arcs",
            });
        }
        Ok(Oid(arcs))
    }
}

/// Well-known OIDs (the numeric OIDs recorded in the agent configuration).
pub mod known {
    use super::Oid;

    /// SNMPv2-MIB `sysUpTime.0`.
    pub fn sys_uptime() -> Oid {
        Oid::new([1, 3, 6, 1, 2, 1, 1, 3, 0])
    }
    /// IF-MIB `ifOperStatus` column (`.<ifIndex>`).
    pub fn if_oper_status() -> Oid {
        Oid::new([1, 3, 6, 1, 2, 1, 2, 2, 1, 8])
    }
    /// IF-MIB `ifName` column of ifXTable.
    pub fn if_name() -> Oid {
        Oid::new([1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1])
    }
    /// IF-MIB `ifHCInOctets` (Counter64).
    pub fn if_hc_in_octets() -> Oid {
        Oid::new([1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6])
    }
    /// IF-MIB `ifHCOutOctets` (Counter64).
    pub fn if_hc_out_octets() -> Oid {
        Oid::new([1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10])
    }

    /// The scalar OIDs of a device target type and the result key each one feeds
    /// (`snmp_device_fw`: UCD-SNMP cpu/memory and TCP-MIB; `snmp_device_lb`: NetScaler).
    pub fn device_metrics(target_type: &str) -> Vec<(&'static str, Oid)> {
        let ucd = |tail: &[u64]| {
            let mut v = vec![1, 3, 6, 1, 4, 1, 2021];
            v.extend_from_slice(tail);
            Oid::new(v)
        };
        let ns = |tail: &[u64]| {
            let mut v = vec![1, 3, 6, 1, 4, 1, 5951, 4, 1, 1];
            v.extend_from_slice(tail);
            Oid::new(v)
        };
        match target_type {
            "snmp_device_fw" => vec![
                ("cpu.user", ucd(&[11, 9, 0])),
                ("cpu.system", ucd(&[11, 10, 0])),
                ("cpu.idle", ucd(&[11, 11, 0])),
                ("memory.total", ucd(&[4, 5, 0])),
                ("memory.available", ucd(&[4, 6, 0])),
                ("tcp.active", Oid::new([1, 3, 6, 1, 2, 1, 6, 5, 0])),
                ("tcp.passive", Oid::new([1, 3, 6, 1, 2, 1, 6, 6, 0])),
            ],
            "snmp_device_lb" => vec![
                ("cpu.usage", ns(&[41, 1, 0])),
                ("memory.usage", ns(&[41, 2, 0])),
                ("http.request", ns(&[48, 67, 0])),
                ("tcp.client", ns(&[46, 2, 0])),
                ("tcp.server", ns(&[46, 1, 0])),
            ],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let o: Oid = ".1.3.6.1.2.1.1.3.0".parse().unwrap();
        assert_eq!(o, known::sys_uptime());
        assert_eq!(o.to_string(), "1.3.6.1.2.1.1.3.0");
        assert!("1.3.x".parse::<Oid>().is_err());
        assert!("".parse::<Oid>().is_err());
        assert!(known::if_name().child(7).starts_with(&known::if_name()));
        assert!(!known::if_oper_status().starts_with(&known::if_name()));
        assert_eq!(known::if_name().child(7).last(), Some(7));
    }

    #[test]
    fn converts_to_snmp2_and_back() {
        let o = known::if_hc_in_octets().child(3);
        let s = o.to_snmp2().unwrap();
        assert_eq!(Oid::from_snmp2(&s), Some(o));
    }
}
