//! The monitoring side of `esi serve` (role `monitor`): how targets are polled (`--monitoring`,
//! `--snmp-config`) and the collector loop's tunables (`--monitor-*`).

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use esi_core::collector::CollectorConfig;
use esi_core::device::DeviceRegistry;
use esi_snmp::{SnmpAuth, SnmpConfig, SnmpRegistry, SnmpRoute, SplitRegistry, V3Credentials};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What polls the SNMP targets (`snmp_device*`, `snmp_ports*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MonitoringKind {
    /// The device backend (`--devices`): simulated routers answer every target.
    Devices,
    /// Real SNMP agents (esi-snmp, v2c with the target's community or per-device settings from
    /// `--snmp-config`); VRRP and BGP targets still go to the device backend (NETCONF).
    Snmp,
}

/// `esi serve` monitoring options (flags or environment).
#[derive(Args, Debug, Default, Clone)]
pub struct MonitorArgs {
    /// How SNMP targets are polled (default devices).
    #[arg(long, env = "ESI_MONITORING", value_enum)]
    pub monitoring: Option<MonitoringKind>,
    /// With `--monitoring snmp`: a TOML file with the agent port, timeout, retries and
    /// per-device settings (address, v2c community or v3 credentials).
    #[arg(long, env = "ESI_SNMP_CONFIG")]
    pub snmp_config: Option<PathBuf>,
    /// Seconds between polls of a target (default 60, the recorded interval).
    #[arg(long, env = "ESI_MONITOR_INTERVAL")]
    pub monitor_interval: Option<f64>,
    /// Consecutive failed polls before `FAIL` is published (default 2).
    #[arg(long, env = "ESI_MONITOR_FAILURES")]
    pub monitor_failures: Option<u32>,
    /// Devices polled at once (default 16).
    #[arg(long, env = "ESI_MONITOR_CONCURRENCY")]
    pub monitor_concurrency: Option<usize>,
    /// Spread of the polls as a fraction of the interval (default 0.1).
    #[arg(long, env = "ESI_MONITOR_JITTER")]
    pub monitor_jitter: Option<f64>,
    /// The CollectorAgent's advertised base URL (`monitorer`; default `http://<listen>`).
    #[arg(long, env = "ESI_ADVERTISE")]
    pub advertise: Option<String>,
    /// Keep the targets in this process only, even on etcd (default: on etcd they are stored
    /// under `/esi/monitor/targets/` and divided between the processes with the monitor role).
    #[arg(long, env = "ESI_MONITOR_LOCAL")]
    pub monitor_local: bool,
}

/// The `--snmp-config` file.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SnmpFile {
    /// Default agent port (161).
    port: Option<u16>,
    /// Timeout of one request in milliseconds.
    timeout_ms: Option<u64>,
    /// Resends after a timeout.
    retries: Option<u32>,
    /// Per device IP.
    #[serde(default)]
    device: Vec<SnmpDeviceFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnmpDeviceFile {
    device_ip: String,
    /// `host:port` of the agent (default `<device_ip>:<port>`).
    address: Option<String>,
    /// v2c community replacing the target's.
    community: Option<String>,
    /// v3 user (SHA auth + AES privacy).
    user: Option<String>,
    auth_password: Option<String>,
    priv_password: Option<String>,
    context: Option<String>,
}

/// Resolved monitoring settings.
#[derive(Debug, Clone)]
pub struct MonitorSettings {
    /// Polling backend.
    pub kind: MonitoringKind,
    /// The SNMP file (validated when resolving).
    pub snmp_config: Option<PathBuf>,
    /// The collector's settings (without seed and monitorer, set when wiring).
    pub interval: f64,
    /// `FAIL` after this many failures.
    pub failures: u32,
    /// Concurrent device polls.
    pub concurrency: usize,
    /// Phase spread.
    pub jitter: f64,
    /// Advertised URL.
    pub advertise: Option<String>,
    /// Targets only in this process.
    pub local: bool,
}

impl MonitorArgs {
    /// Validates the options.
    pub fn resolve(self) -> Result<MonitorSettings> {
        let interval = self.monitor_interval.unwrap_or(60.0);
        if !interval.is_finite() || interval < 0.05 {
            bail!("--monitor-interval must be at least 0.05 seconds, not {interval}");
        }
        let jitter = self.monitor_jitter.unwrap_or(0.1);
        if !(0.0..=1.0).contains(&jitter) {
            bail!("--monitor-jitter must be between 0 and 1, not {jitter}");
        }
        let failures = self.monitor_failures.unwrap_or(2);
        if failures == 0 {
            bail!("--monitor-failures must be at least 1");
        }
        let concurrency = self.monitor_concurrency.unwrap_or(16);
        if concurrency == 0 {
            bail!("--monitor-concurrency must be at least 1");
        }
        let kind = self.monitoring.unwrap_or(MonitoringKind::Devices);
        if self.snmp_config.is_some() && kind != MonitoringKind::Snmp {
            bail!("--snmp-config needs --monitoring snmp");
        }
        if let Some(p) = &self.snmp_config {
            snmp_registry(p)?; // refuse a bad file at start
        }
        Ok(MonitorSettings {
            kind,
            snmp_config: self.snmp_config,
            interval,
            failures,
            concurrency,
            jitter,
            advertise: self.advertise,
            local: self.monitor_local,
        })
    }
}

impl MonitorSettings {
    /// The collector settings.
    pub fn collector_config(&self, seed: u64, listen: Option<&str>) -> CollectorConfig {
        let monitorer = self
            .advertise
            .clone()
            .or_else(|| listen.map(|l| format!("http://{l}")))
            .unwrap_or_else(|| CollectorConfig::default().monitorer);
        CollectorConfig {
            interval_secs: self.interval,
            fail_threshold: self.failures,
            monitorer,
            seed,
            jitter: self.jitter,
            max_concurrent: self.concurrency,
            tsdb: true,
        }
    }

    /// The registry the collector polls through: `devices` itself, or SNMP agents for
    /// community targets and `devices` for the rest.
    pub fn registry(&self, devices: Arc<dyn DeviceRegistry>) -> Result<Arc<dyn DeviceRegistry>> {
        match self.kind {
            MonitoringKind::Devices => Ok(devices),
            MonitoringKind::Snmp => {
                let snmp = match &self.snmp_config {
                    Some(p) => snmp_registry(p)?,
                    None => SnmpRegistry::default(),
                };
                Ok(Arc::new(SplitRegistry::new(Arc::new(snmp), devices)))
            }
        }
    }
}

fn snmp_registry(path: &PathBuf) -> Result<SnmpRegistry> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: SnmpFile =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let defaults = SnmpConfig::default();
    let config = SnmpConfig {
        timeout: file
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(defaults.timeout),
        retries: file.retries.unwrap_or(defaults.retries),
        ..defaults
    };
    let port = file.port.unwrap_or(161);
    let registry = SnmpRegistry::new(config).with_port(port);
    let mut seen = BTreeMap::new();
    for d in file.device {
        let at = format!("{}: device {}", path.display(), d.device_ip);
        if seen.insert(d.device_ip.clone(), ()).is_some() {
            bail!("{at}: listed twice");
        }
        let address = match &d.address {
            Some(a) => a
                .parse()
                .with_context(|| format!("{at}: address `{a}` is not host:port"))?,
            None => format!("{}:{port}", d.device_ip)
                .parse()
                .with_context(|| format!("{at}: device_ip is not an IP address"))?,
        };
        let auth = match (&d.user, &d.community) {
            (Some(_), Some(_)) => bail!("{at}: both community and user (v3) given"),
            (Some(user), None) => {
                let (Some(a), Some(p)) = (&d.auth_password, &d.priv_password) else {
                    bail!("{at}: v3 user {user} needs auth_password and priv_password");
                };
                let mut c = V3Credentials::sha_aes(user.clone(), a.clone(), p.clone());
                if let Some(ctx) = &d.context {
                    c = c.with_context(ctx.clone());
                }
                Some(SnmpAuth::V3(c))
            }
            (None, Some(c)) => Some(SnmpAuth::community(c.clone())),
            (None, None) => None,
        };
        registry.route(
            d.device_ip.clone(),
            SnmpRoute {
                addr: address,
                auth,
            },
        );
    }
    Ok(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_monitoring_options_are_refused_naming_the_field() {
        let p = std::env::temp_dir().join(format!("esi-snmp-cfg-{}.toml", std::process::id()));
        std::fs::write(
            &p,
            "port = 16100\n[[device]]\ndevice_ip = \"10.0.0.1\"\nuser = \"u\"\nauth_password = \"sekrit-a\"\n",
        )
        .expect("write");
        let e = MonitorArgs {
            monitoring: Some(MonitoringKind::Snmp),
            snmp_config: Some(p.clone()),
            ..MonitorArgs::default()
        }
        .resolve()
        .expect_err("no priv password");
        let text = format!("{e:#}");
        assert!(
            text.contains("10.0.0.1") && text.contains("priv_password"),
            "{text}"
        );
        assert!(!text.contains("sekrit"), "{text}");
        std::fs::write(
            &p,
            "port = 16100\ntimeout_ms = 300\n[[device]]\ndevice_ip = \"10.0.0.1\"\naddress = \"127.0.0.1:16101\"\nuser = \"u\"\nauth_password = \"a\"\npriv_password = \"p\"\ncontext = \"public\"\n",
        )
        .expect("write");
        let s = MonitorArgs {
            monitoring: Some(MonitoringKind::Snmp),
            snmp_config: Some(p.clone()),
            monitor_interval: Some(1.0),
            ..MonitorArgs::default()
        }
        .resolve()
        .expect("valid");
        assert_eq!(
            s.collector_config(1, Some("127.0.0.1:7070")).monitorer,
            "http://127.0.0.1:7070"
        );
        let e = MonitorArgs {
            monitor_interval: Some(0.0),
            ..MonitorArgs::default()
        }
        .resolve()
        .expect_err("zero interval");
        assert!(e.to_string().contains("--monitor-interval"), "{e}");
        let e = MonitorArgs {
            snmp_config: Some(p.clone()),
            ..MonitorArgs::default()
        }
        .resolve()
        .expect_err("file without snmp");
        assert!(e.to_string().contains("--monitoring snmp"), "{e}");
        let _ = std::fs::remove_file(p);
    }
}
