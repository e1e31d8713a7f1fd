//! Address overrides: where a router the resources name is actually reached, and the host key
//! it must present.
//!
//! The file is exactly what `esi netsim` prints, one router per line:
//!
//! ```text
//! # NAME            HOST:PORT          [SHA256:FINGERPRINT]
//! 192.0.2.11        127.0.0.1:27000    SHA256:Vg0m…
//! 192.0.2.12:830    10.0.0.5:22830
//! ```
//!
//! `NAME` is the router's address as the resources give it (its management address, with or
//! without `:PORT`); a line matches a connection to that host (on any port, or on that port).
//! The connection then goes to `HOST:PORT` instead, and when a fingerprint is given the host
//! key must have it (it replaces the known_hosts check for that router). It serves real labs
//! as well (routers behind NAT or a jump port) as `esi netsim`.

use std::path::Path;

/// One line of a device map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceMapEntry {
    /// The address the resources name (`192.0.2.11` or `192.0.2.11:830`).
    pub name: String,
    /// Where to connect instead.
    pub host: String,
    /// Port to connect to.
    pub port: u16,
    /// The pinned host key fingerprint (`SHA256:…`), if given.
    pub fingerprint: Option<String>,
}

impl DeviceMapEntry {
    /// Whether a connection to `host:port` is redirected by this entry.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.name == host
            || self.name == format!("{host}:{port}")
            || self.name == format!("[{host}]:{port}")
    }
}

/// A line of a device map that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device map {source_name} line {line}: {message}")]
pub struct DeviceMapError {
    /// The file (or `<text>`).
    pub source_name: String,
    /// 1-based line number (0: the file itself).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Address overrides ([`DeviceMapEntry`] per router), in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceMap {
    entries: Vec<DeviceMapEntry>,
}

fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse::<u16>().ok().filter(|p| *p > 0)?;
    (!host.is_empty()).then(|| (host.to_string(), port))
}

impl DeviceMap {
    /// Parses map text; `source_name` names it in errors. Blank lines and `#` comments are
    /// skipped; a name given twice is an error.
    pub fn parse(text: &str, source_name: &str) -> Result<DeviceMap, DeviceMapError> {
        let err = |line: usize, message: String| DeviceMapError {
            source_name: source_name.to_string(),
            line,
            message,
        };
        let mut entries: Vec<DeviceMapEntry> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (name, addr, fingerprint) = match fields.as_slice() {
                [n, a] => (*n, *a, None),
                [n, a, f] => (*n, *a, Some(*f)),
                _ => {
                    return Err(err(
                        i + 1,
                        format!(
                            "expected `NAME HOST:PORT [SHA256:FINGERPRINT]`, found {} fields",
                            fields.len()
                        ),
                    ))
                }
            };
            let (host, port) = split_host_port(addr).ok_or_else(|| {
                err(
                    i + 1,
                    format!("address `{addr}` of {name} is not HOST:PORT with a port 1-65535"),
                )
            })?;
            if let Some(f) = fingerprint {
                let ok = f.strip_prefix("SHA256:").is_some_and(|b| {
                    !b.is_empty()
                        && b.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
                });
                if !ok {
                    return Err(err(
                        i + 1,
                        format!("fingerprint of {name} is not `SHA256:<base64>`"),
                    ));
                }
            }
            if entries.iter().any(|e| e.name == name) {
                return Err(err(i + 1, format!("{name} is mapped twice")));
            }
            entries.push(DeviceMapEntry {
                name: name.to_string(),
                host,
                port,
                fingerprint: fingerprint.map(str::to_string),
            });
        }
        Ok(DeviceMap { entries })
    }

    /// Reads and parses a map file.
    pub fn load(path: &Path) -> Result<DeviceMap, DeviceMapError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| DeviceMapError {
            source_name: name.clone(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        DeviceMap::parse(&text, &name)
    }

    /// The entry redirecting `host:port` (an exact `host:port` name wins over a bare host).
    pub fn lookup(&self, host: &str, port: u16) -> Option<&DeviceMapEntry> {
        let exact = format!("{host}:{port}");
        self.entries
            .iter()
            .find(|e| e.name == exact || e.name == format!("[{host}]:{port}"))
            .or_else(|| self.entries.iter().find(|e| e.name == host))
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[DeviceMapEntry] {
        &self.entries
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_netsim_prints_and_looks_up() {
        let text = "# esi netsim\n192.0.2.11 127.0.0.1:27000 SHA256:abc+/def=\n\n192.0.2.12:830 [::1]:27001\n192.0.2.12 10.0.0.1:22\n";
        let m = DeviceMap::parse(text, "map").unwrap();
        assert_eq!(m.entries().len(), 3);
        let a = m.lookup("192.0.2.11", 830).unwrap();
        assert_eq!((a.host.as_str(), a.port), ("127.0.0.1", 27000));
        assert_eq!(a.fingerprint.as_deref(), Some("SHA256:abc+/def="));
        assert!(a.matches("192.0.2.11", 22));
        // host:port wins over the bare host; another port falls back to the bare host
        assert_eq!(m.lookup("192.0.2.12", 830).unwrap().host, "::1");
        assert_eq!(m.lookup("192.0.2.12", 831).unwrap().host, "10.0.0.1");
        assert!(m.lookup("192.0.2.13", 830).is_none());
    }

    #[test]
    fn bad_lines_name_the_line_and_the_router() {
        for (text, line, needle) in [
            ("r1 127.0.0.1\n", 1, "r1"),
            ("\nr1 127.0.0.1:0\n", 2, "port 1-65535"),
            ("r1 127.0.0.1:1 MD5:aa\n", 1, "SHA256"),
            ("r1 127.0.0.1:1\nr1 127.0.0.1:2\n", 2, "mapped twice"),
            ("r1 a:1 SHA256:x extra\n", 1, "4 fields"),
        ] {
            let e = DeviceMap::parse(text, "m.txt").unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(needle), "{e}");
            assert!(e.to_string().contains("m.txt"), "{e}");
        }
    }
}
