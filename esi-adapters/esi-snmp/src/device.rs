//! SNMP agents as [`esi_core::device::Device`]s for the CollectorAgent: `ping` is a GET of
//! `sysUpTime.0`, `interface_status` a GET of `ifOperStatus.<ifIndex>` with the ifName →
//! ifIndex map walked once per device (and again when an index vanishes).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use esi_core::device::{
    BgpState, CommitInfo, ConfigChange, Credentials, Device, DeviceAddress, DeviceError,
    DeviceRegistry, OperStatus, VrrpState,
};
use esi_core::secret::Secret;

use crate::client::{SnmpAuth, SnmpClient, SnmpConfig, SnmpError, SnmpValue};
use crate::oid::{known, Oid};

/// Traffic counters of one interface (IF-MIB ifHCInOctets / ifHCOutOctets, Counter64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceCounters {
    /// `traffic.in`: octets received.
    pub in_octets: u64,
    /// `traffic.out`: octets sent.
    pub out_octets: u64,
}

/// Interfaces asked per GET PDU by [`SnmpDevice::oper_statuses`].
pub const BATCH: usize = 32;

/// One SNMP agent (a router, switch, firewall …) polled by the collector.
#[derive(Debug)]
pub struct SnmpDevice {
    name: String,
    client: SnmpClient,
    if_index: tokio::sync::Mutex<Option<HashMap<String, u64>>>,
}

fn to_device_error(device: &str, e: SnmpError) -> DeviceError {
    tracing::debug!(device, error = %e, "snmp request failed");
    match e {
        SnmpError::Authentication { principal, .. } => DeviceError::AuthenticationFailed {
            device: device.into(),
            username: principal,
        },
        SnmpError::Protocol {
            request, reason, ..
        } => DeviceError::NotConfigured {
            device: device.into(),
            what: format!("a valid answer to {request} ({reason})"),
        },
        SnmpError::ErrorStatus {
            request, status, ..
        } => DeviceError::NotConfigured {
            device: device.into(),
            what: format!("{request} (error-status {status})"),
        },
        SnmpError::Timeout { .. } | SnmpError::Socket { .. } => DeviceError::Unreachable {
            device: device.into(),
        },
    }
}

impl SnmpDevice {
    /// A device reached through `client`, named `name` in errors.
    pub fn new(name: impl Into<String>, client: SnmpClient) -> Self {
        SnmpDevice {
            name: name.into(),
            client,
            if_index: tokio::sync::Mutex::new(None),
        }
    }

    /// The underlying client (GET/GETNEXT/GETBULK/walk).
    pub fn client(&self) -> &SnmpClient {
        &self.client
    }

    /// `sysUpTime.0` in hundredths of a second.
    pub async fn sys_uptime(&self) -> Result<u32, SnmpError> {
        let oid = known::sys_uptime();
        let v = self.client.get(std::slice::from_ref(&oid)).await?;
        match v.first() {
            Some((_, SnmpValue::Timeticks(t))) => Ok(*t),
            Some((_, other)) => Err(SnmpError::Protocol {
                agent: self.client.agent().into(),
                request: format!("GET {oid}"),
                reason: format!("sysUpTime is {other:?}, not TimeTicks"),
            }),
            None => Err(SnmpError::Protocol {
                agent: self.client.agent().into(),
                request: format!("GET {oid}"),
                reason: "empty answer".into(),
            }),
        }
    }

    /// Walks `ifName` and replaces the cached name → index map.
    pub async fn refresh_interfaces(&self) -> Result<HashMap<String, u64>, SnmpError> {
        let root = known::if_name();
        let rows = self.client.walk(&root).await?;
        let map: HashMap<String, u64> = rows
            .into_iter()
            .filter_map(|(oid, v)| Some((v.as_text()?, oid.last()?)))
            .collect();
        tracing::debug!(device = %self.name, interfaces = map.len(), "ifName walked");
        *self.if_index.lock().await = Some(map.clone());
        Ok(map)
    }

    /// The ifIndex of `if_name`, from the cached map (walked on first use; walked again when
    /// the name is unknown or `refresh` is set). `None` if the device has no such interface.
    pub async fn if_index(&self, if_name: &str, refresh: bool) -> Result<Option<u64>, SnmpError> {
        if !refresh {
            if let Some(map) = self.if_index.lock().await.as_ref() {
                if let Some(i) = map.get(if_name) {
                    return Ok(Some(*i));
                }
            }
        }
        Ok(self.refresh_interfaces().await?.get(if_name).copied())
    }

    async fn column_value(
        &self,
        if_name: &str,
        column: &[Oid],
    ) -> Result<Vec<SnmpValue>, DeviceError> {
        let not_found = || DeviceError::NotConfigured {
            device: self.name.clone(),
            what: format!("interface {if_name}"),
        };
        let mut refresh = false;
        loop {
            let idx = self
                .if_index(if_name, refresh)
                .await
                .map_err(|e| to_device_error(&self.name, e))?
                .ok_or_else(not_found)?;
            let oids: Vec<Oid> = column.iter().map(|c| c.child(idx)).collect();
            let values = self
                .client
                .get(&oids)
                .await
                .map_err(|e| to_device_error(&self.name, e))?;
            let values: Vec<SnmpValue> = values.into_iter().map(|(_, v)| v).collect();
            if values.len() == oids.len() && !values.iter().any(SnmpValue::is_exception) {
                return Ok(values);
            }
            if refresh {
                return Err(not_found());
            }
            // the index vanished (interface re-created, agent restarted): walk again
            tracing::debug!(device = %self.name, if_name, idx, "ifIndex vanished; refreshing the ifName map");
            refresh = true;
        }
    }

    /// `ifOperStatus` of every name in `names` with one GET per [`BATCH`] interfaces (the
    /// recorded "pool": every port target of a device polled in one iteration). Names missing
    /// from the cached ifName map, and rows that vanished, are asked again one by one (which
    /// walks the map again).
    pub async fn oper_statuses(&self, names: &[String]) -> Vec<Result<OperStatus, DeviceError>> {
        let mut out: Vec<Option<Result<OperStatus, DeviceError>>> = vec![None; names.len()];
        let cached = self.if_index.lock().await.clone();
        let map = match cached {
            Some(m) => m,
            None => match self.refresh_interfaces().await {
                Ok(m) => m,
                Err(e) => {
                    let e = to_device_error(&self.name, e);
                    return names.iter().map(|_| Err(e.clone())).collect();
                }
            },
        };
        let known: Vec<(usize, u64)> = names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| map.get(n).map(|idx| (i, *idx)))
            .collect();
        for chunk in known.chunks(BATCH) {
            let oids: Vec<Oid> = chunk
                .iter()
                .map(|(_, idx)| known::if_oper_status().child(*idx))
                .collect();
            match self.client.get(&oids).await {
                Ok(values) if values.len() == oids.len() => {
                    for ((i, _), (_, v)) in chunk.iter().zip(values) {
                        if !v.is_exception() {
                            out[*i] = Some(Ok(match v.as_i64() {
                                Some(1) => OperStatus::Up,
                                _ => OperStatus::Down,
                            }));
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let e = to_device_error(&self.name, e);
                    for (i, _) in chunk {
                        out[*i] = Some(Err(e.clone()));
                    }
                }
            }
        }
        let mut result = Vec::with_capacity(names.len());
        for (name, r) in names.iter().zip(out) {
            result.push(match r {
                Some(r) => r,
                None => self.oper_status(name).await,
            });
        }
        result
    }

    /// `ifOperStatus` of `if_name` (1 → up, anything else → down).
    pub async fn oper_status(&self, if_name: &str) -> Result<OperStatus, DeviceError> {
        let v = self
            .column_value(if_name, &[known::if_oper_status()])
            .await?;
        Ok(match v.first().and_then(SnmpValue::as_i64) {
            Some(1) => OperStatus::Up,
            _ => OperStatus::Down,
        })
    }

    /// `ifHCInOctets` / `ifHCOutOctets` of `if_name`, as Counter64.
    pub async fn counters(&self, if_name: &str) -> Result<InterfaceCounters, DeviceError> {
        let v = self
            .column_value(
                if_name,
                &[known::if_hc_in_octets(), known::if_hc_out_octets()],
            )
            .await?;
        let get = |i: usize| v.get(i).and_then(SnmpValue::as_counter64);
        match (get(0), get(1)) {
            (Some(in_octets), Some(out_octets)) => Ok(InterfaceCounters {
                in_octets,
                out_octets,
            }),
            _ => Err(DeviceError::NotConfigured {
                device: self.name.clone(),
                what: format!("HC octet counters of {if_name}"),
            }),
        }
    }

    /// The scalar metrics of a device target type (`snmp_device_fw`, `snmp_device_lb`) in
    /// one GET; objects the agent lacks are left out.
    pub async fn device_metrics(
        &self,
        target_type: &str,
    ) -> Result<Vec<(String, f64)>, DeviceError> {
        let wanted = known::device_metrics(target_type);
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let oids: Vec<Oid> = wanted.iter().map(|(_, o)| o.clone()).collect();
        let got = self
            .client
            .get(&oids)
            .await
            .map_err(|e| to_device_error(&self.name, e))?;
        Ok(wanted
            .iter()
            .zip(got)
            .filter_map(|((key, _), (_, v))| {
                let n = match &v {
                    SnmpValue::OctetString(_) => v.as_text()?.trim().parse::<f64>().ok()?,
                    _ => v
                        .as_counter64()
                        .map(|c| c as f64)
                        .or(v.as_i64().map(|i| i as f64))?,
                };
                Some((key.to_string(), n))
            })
            .collect())
    }
}

#[async_trait]
impl Device for SnmpDevice {
    fn name(&self) -> &str {
        &self.name
    }

    async fn load_config(&self, change: &ConfigChange) -> Result<CommitInfo, DeviceError> {
        Err(DeviceError::LoadFailed {
            device: self.name.clone(),
            resource: change.resource.clone(),
            message: "an SNMP agent takes no configuration (use NETCONF)".into(),
        })
    }

    async fn configuration(&self) -> Result<String, DeviceError> {
        Err(DeviceError::NotConfigured {
            device: self.name.clone(),
            what: "a NETCONF configuration (SNMP-only device)".into(),
        })
    }

    async fn interface_status(&self, name: &str) -> Result<OperStatus, DeviceError> {
        self.oper_status(name).await
    }

    async fn vrrp_status(&self, interface: &str, vrid: u32) -> Result<VrrpState, DeviceError> {
        Err(DeviceError::NotConfigured {
            device: self.name.clone(),
            what: format!("vrrp group {vrid} on {interface} over SNMP (use NETCONF)"),
        })
    }

    async fn bgp_peer_status(&self, instance: &str, peer: &str) -> Result<BgpState, DeviceError> {
        Err(DeviceError::NotConfigured {
            device: self.name.clone(),
            what: format!("bgp peer {peer} in {instance} over SNMP (use NETCONF)"),
        })
    }

    async fn ping(&self) -> Result<(), DeviceError> {
        self.sys_uptime()
            .await
            .map(|_| ())
            .map_err(|e| to_device_error(&self.name, e))
    }

    async fn interface_statuses(&self, names: &[String]) -> Vec<Result<OperStatus, DeviceError>> {
        self.oper_statuses(names).await
    }

    async fn metrics(
        &self,
        target_type: &str,
        interface: Option<&str>,
    ) -> Result<Vec<(String, f64)>, DeviceError> {
        match (target_type, interface) {
            ("snmp_ports" | "snmp_ports_metric", Some(name)) => {
                let c = self.counters(name).await?;
                Ok(vec![
                    ("traffic.in".into(), c.in_octets as f64),
                    ("traffic.out".into(), c.out_octets as f64),
                ])
            }
            _ => self.device_metrics(target_type).await,
        }
    }
}

/// Where and how one device IP is polled, overriding the defaults (`<ip>:161`, the target's
/// community).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnmpRoute {
    /// The agent's UDP address.
    pub addr: SocketAddr,
    /// Credentials replacing the target's community (e.g. v3), if any.
    pub auth: Option<SnmpAuth>,
}

/// Resolves `device_ip` (+ community) to an [`SnmpDevice`], one per agent and credentials, so
/// every target of a device shares one socket and one ifName map.
#[derive(Debug)]
pub struct SnmpRegistry {
    config: SnmpConfig,
    port: u16,
    routes: Mutex<HashMap<String, SnmpRoute>>,
    devices: Mutex<HashMap<(SocketAddr, String), Arc<SnmpDevice>>>,
}

impl Default for SnmpRegistry {
    fn default() -> Self {
        Self::new(SnmpConfig::default())
    }
}

impl SnmpRegistry {
    /// A registry polling `<device_ip>:161` with `config`.
    pub fn new(config: SnmpConfig) -> Self {
        SnmpRegistry {
            config,
            port: 161,
            routes: Mutex::new(HashMap::new()),
            devices: Mutex::new(HashMap::new()),
        }
    }

    /// Polls every device on `port` instead of 161.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Polls `device_ip` at `route.addr`, with `route.auth` instead of the target's community
    /// when set (how a v3 device is configured: targets carry only a community).
    pub fn route(&self, device_ip: impl Into<String>, route: SnmpRoute) {
        self.routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(device_ip.into(), route);
    }

    /// Number of distinct agents (sockets) opened so far.
    pub fn session_count(&self) -> usize {
        self.devices.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The device for `device_ip` with `community` (created on first use).
    pub fn device(
        &self,
        device_ip: &str,
        community: &Secret<String>,
    ) -> Result<Arc<SnmpDevice>, DeviceError> {
        let route = self
            .routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(device_ip)
            .cloned();
        let (addr, auth) = match route {
            Some(r) => (
                r.addr,
                r.auth.unwrap_or_else(|| SnmpAuth::V2c(community.clone())),
            ),
            None => {
                let ip: IpAddr =
                    device_ip
                        .trim()
                        .parse()
                        .map_err(|_| DeviceError::UnknownDevice {
                            address: format!("{device_ip} (not an IP address)"),
                        })?;
                (
                    SocketAddr::new(ip, self.port),
                    SnmpAuth::V2c(community.clone()),
                )
            }
        };
        // the key holds the credentials' identity, never printed
        let key = match &auth {
            SnmpAuth::V2c(c) => format!("v2c\u{0}{}", c.expose()),
            SnmpAuth::V3(c) => format!(
                "v3\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
                c.user,
                c.auth_password.expose(),
                c.privacy
                    .as_ref()
                    .map(|(_, p)| p.expose().as_str())
                    .unwrap_or(""),
                c.context
            ),
        };
        let mut devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        let d = devices.entry((addr, key)).or_insert_with(|| {
            Arc::new(SnmpDevice::new(
                device_ip.to_string(),
                SnmpClient::new(addr, auth, self.config),
            ))
        });
        Ok(d.clone())
    }
}

#[async_trait]
impl DeviceRegistry for SnmpRegistry {
    async fn connect(
        &self,
        address: &DeviceAddress,
        credentials: &Credentials,
    ) -> Result<Arc<dyn Device>, DeviceError> {
        let community = match credentials {
            Credentials::Community(c) => c.clone(),
            Credentials::None => Secret::new(String::new()),
            Credentials::Login { .. } => {
                return Err(DeviceError::UnknownDevice {
                    address: format!(
                        "{} (SNMP registry given login credentials)",
                        address.label()
                    ),
                })
            }
        };
        Ok(self.device(&address.host, &community)?)
    }
}

/// SNMP targets (community credentials) to an [`SnmpRegistry`], everything else (NETCONF
/// logins for VRRP/BGP) to another registry.
pub struct SplitRegistry {
    snmp: Arc<SnmpRegistry>,
    other: Arc<dyn DeviceRegistry>,
}

impl std::fmt::Debug for SplitRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SplitRegistry")
            .field("snmp", &self.snmp)
            .finish_non_exhaustive()
    }
}

impl SplitRegistry {
    /// Community credentials go to `snmp`, the rest to `other`.
    pub fn new(snmp: Arc<SnmpRegistry>, other: Arc<dyn DeviceRegistry>) -> Self {
        SplitRegistry { snmp, other }
    }
}

#[async_trait]
impl DeviceRegistry for SplitRegistry {
    async fn connect(
        &self,
        address: &DeviceAddress,
        credentials: &Credentials,
    ) -> Result<Arc<dyn Device>, DeviceError> {
        match credentials {
            Credentials::Community(_) => self.snmp.connect(address, credentials).await,
            _ => self.other.connect(address, credentials).await,
        }
    }
}
