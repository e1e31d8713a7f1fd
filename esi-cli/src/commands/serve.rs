//! `esi serve`: the daemon. Wires a store (etcd, or the embedded in-memory store), a Heat
//! backend and devices into the real-time driver of esi-core, serves `/metrics` and `/healthz`
//! (esi-http) and stops gracefully on SIGTERM/SIGINT.

use crate::backend;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use esi_core::clock::SystemClock;
use esi_core::collector::Collector;
use esi_core::device::{DeviceRegistry, SimFabric};
use esi_core::heat::Heat;
use esi_core::runtime::driver::{Driver, DriverConfig, Roles};
use esi_core::runtime::embedded::LocalBackends;
use esi_core::runtime::metrics::{MeteredDevices, MeteredHeat, Metrics};
use esi_core::store::{MemoryStore, Store};
use esi_core::Catalog;
use esi_netconf::{HostKeyPolicy, NetconfOptions, NetconfRegistry};
use serde::Deserialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Heat backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeatKind {
    /// The in-process Heat with the NETCONF and monitoring plug-ins.
    Local,
    /// OpenStack Heat over HTTP (`OS_*` variables as the OpenStack CLI names them, or
    /// `HEAT_URL` for a Heat without Keystone).
    Openstack,
}

/// Who drives the device resources (`OS::Contrail::NetconfNamedConfigs`,
/// `ESI::Monitoring::MonitoringTarget`) of a stack sent to OpenStack Heat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceResourcesKind {
    /// esi: Heat gets stand-ins and esi configures the routers and registers the targets.
    Esi,
    /// Heat itself (it has the original plug-ins): templates go to Heat untouched.
    Heat,
}

/// Device backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DevicesKind {
    /// Simulated routers.
    Sim,
    /// Real routers (or `esi netsim`) over NETCONF/SSH, with the credentials of the resources.
    Netconf,
}

/// Log formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (coloured only when stderr is a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

/// `esi serve` options. Precedence: flags, then environment, then the `--config` file.
#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// etcd endpoints (`http://127.0.0.1:2379[,...]`); without them the embedded in-memory
    /// store is used.
    #[arg(long, env = "ESI_ETCD_ENDPOINTS", value_delimiter = ',')]
    pub etcd: Option<Vec<String>>,
    /// Roles among reader, manager, worker, monitor (default: all).
    #[arg(long, env = "ESI_ROLES", value_delimiter = ',')]
    pub roles: Option<Vec<String>>,
    /// Concurrent jobs (default 4).
    #[arg(long, env = "ESI_JOBS")]
    pub jobs: Option<usize>,
    /// Heat backend (default local).
    #[arg(long, env = "ESI_HEAT", value_enum)]
    pub heat: Option<HeatKind>,
    /// Device backend (default sim).
    #[arg(long, env = "ESI_DEVICES", value_enum)]
    pub devices: Option<DevicesKind>,
    /// With `--heat openstack`: who drives the device resources (default esi).
    #[arg(long, env = "ESI_DEVICE_RESOURCES", value_enum)]
    pub device_resources: Option<DeviceResourcesKind>,
    /// With `--heat openstack`: a fixed orchestration endpoint (else the Keystone catalog's).
    #[arg(long, env = "HEAT_URL")]
    pub heat_url: Option<String>,
    /// With `--heat openstack --device-resources esi`: further resource types esi drives with
    /// its generic plug-in (as `--heat local` does) because that Heat lacks them, e.g.
    /// `OS::Contrail::*` (a trailing `*` matches any rest).
    #[arg(long, env = "ESI_RESOURCE_TYPES", value_delimiter = ',')]
    pub esi_resource_types: Option<Vec<String>>,
    /// With `--devices netconf`: the known_hosts file that router host keys are checked against.
    #[arg(long, env = "ESI_KNOWN_HOSTS")]
    pub known_hosts: Option<PathBuf>,
    /// With `--devices netconf`: accept any router host key (labs only; logged as a warning).
    #[arg(long, env = "ESI_NETCONF_INSECURE")]
    pub netconf_insecure: bool,
    /// A TOML file with any of: etcd, roles, jobs, heat, devices, device_resources, heat_url,
    /// esi_resource_types, known_hosts, log_format, listen, name.
    #[arg(long, env = "ESI_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format (default text).
    #[arg(long, env = "ESI_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Address serving /metrics and /healthz (e.g. 127.0.0.1:9464), and with `--devices sim`
    /// the read-only router view `/devices`; none by default.
    #[arg(long, env = "ESI_LISTEN")]
    pub listen: Option<String>,
    /// This process's name (default: host-pid).
    #[arg(long, env = "ESI_NAME")]
    pub name: Option<String>,
    /// Timing scale for tests: every lease TTL (claims, leadership) in seconds.
    #[arg(long, env = "ESI_LEASE_TTL", hide = true)]
    pub lease_ttl: Option<f64>,
}

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    etcd: Option<Endpoints>,
    roles: Option<Vec<String>>,
    jobs: Option<usize>,
    heat: Option<HeatKind>,
    devices: Option<DevicesKind>,
    device_resources: Option<DeviceResourcesKind>,
    heat_url: Option<String>,
    esi_resource_types: Option<Vec<String>>,
    known_hosts: Option<PathBuf>,
    netconf_insecure: Option<bool>,
    log_format: Option<LogFormat>,
    listen: Option<String>,
    name: Option<String>,
    lease_ttl: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Endpoints {
    One(String),
    Many(Vec<String>),
}

/// The resolved settings.
#[derive(Debug)]
pub struct Settings {
    /// etcd endpoints (empty: embedded store).
    pub etcd: Vec<String>,
    /// Roles.
    pub roles: Roles,
    /// Job slots.
    pub jobs: usize,
    /// Heat backend.
    pub heat: HeatKind,
    /// Devices.
    pub devices: DevicesKind,
    /// Who drives device resources with OpenStack Heat.
    pub device_resources: DeviceResourcesKind,
    /// Fixed Heat endpoint.
    pub heat_url: Option<String>,
    /// Resource types esi drives generically with OpenStack Heat in esi mode.
    pub esi_resource_types: Vec<String>,
    /// Router host keys: a known_hosts file, or none with `netconf_insecure`.
    pub known_hosts: Option<PathBuf>,
    /// Accept any router host key.
    pub netconf_insecure: bool,
    /// Log format.
    pub log_format: LogFormat,
    /// HTTP listen address.
    pub listen: Option<String>,
    /// Process name.
    pub name: String,
    /// Lease TTL override.
    pub lease_ttl: Option<Duration>,
}

fn parse_roles(list: &[String]) -> Result<Roles> {
    let mut r = Roles {
        reader: false,
        manager: false,
        worker: false,
        monitor: false,
    };
    for name in backend::endpoints(list) {
        match name.as_str() {
            "reader" | "api" => r.reader = true,
            "manager" => r.manager = true,
            "worker" => r.worker = true,
            "monitor" => r.monitor = true,
            "all" => r = Roles::default(),
            other => {
                bail!("unknown role `{other}` (expected reader, manager, worker, monitor)")
            }
        }
    }
    if r.names().is_empty() {
        bail!("--roles: at least one role is needed");
    }
    Ok(r)
}

impl ServeArgs {
    /// Merges flags/env (already in `self`) over the config file.
    pub fn resolve(self) -> Result<Settings> {
        let file: FileConfig = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let etcd = match (self.etcd, file.etcd) {
            (Some(v), _) => v,
            (None, Some(Endpoints::One(s))) => vec![s],
            (None, Some(Endpoints::Many(v))) => v,
            (None, None) => Vec::new(),
        };
        let roles = match self.roles.or(file.roles) {
            Some(list) => parse_roles(&list)?,
            None => Roles::default(),
        };
        let jobs = self.jobs.or(file.jobs).unwrap_or(4);
        if jobs == 0 {
            bail!("--jobs must be at least 1");
        }
        let lease_ttl = match self.lease_ttl.or(file.lease_ttl) {
            Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
            Some(s) => bail!("lease TTL must be a positive number of seconds, not {s}"),
            None => None,
        };
        Ok(Settings {
            etcd: backend::endpoints(&etcd),
            roles,
            jobs,
            heat: self.heat.or(file.heat).unwrap_or(HeatKind::Local),
            devices: self.devices.or(file.devices).unwrap_or(DevicesKind::Sim),
            device_resources: self
                .device_resources
                .or(file.device_resources)
                .unwrap_or(DeviceResourcesKind::Esi),
            heat_url: self.heat_url.or(file.heat_url),
            esi_resource_types: backend::endpoints(
                &self
                    .esi_resource_types
                    .or(file.esi_resource_types)
                    .unwrap_or_default(),
            ),
            known_hosts: self.known_hosts.or(file.known_hosts),
            netconf_insecure: self.netconf_insecure || file.netconf_insecure.unwrap_or(false),
            log_format: self
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            listen: self.listen.or(file.listen),
            name: self.name.or(file.name).unwrap_or_else(default_name),
            lease_ttl,
        })
    }
}

fn default_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "esi".into());
    format!("{host}-{}", std::process::id())
}

/// Completes on SIGTERM or SIGINT.
async fn signalled() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the daemon until a signal; exit 0 after a graceful stop.
pub fn run(settings: Settings) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(serve(settings))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(s: Settings) -> Result<()> {
    let store: Arc<dyn Store> = if s.etcd.is_empty() {
        tracing::warn!(
            "no --etcd given: running on the embedded in-memory store (nothing persists, no \
             other process can reach it)"
        );
        eprintln!(
            "esi serve: no --etcd given: running on the embedded in-memory store (state is \
             lost at exit)"
        );
        Arc::new(MemoryStore::new())
    } else {
        tracing::info!(endpoints = ?s.etcd, "connecting to etcd");
        backend::etcd(&s.etcd).await?
    };
    let metrics = Arc::new(Metrics::new());
    let (heat, collector, fabric) = backends(&s, &metrics)?;
    let mut config = DriverConfig {
        name: s.name.clone(),
        roles: s.roles,
        jobs: s.jobs,
        seed: seed_of(&s.name),
        ..DriverConfig::default()
    };
    if let Some(ttl) = s.lease_ttl {
        config = config.with_ttl(ttl);
    }
    let driver = Driver::new(store, heat, Arc::new(Catalog::default()), config)
        .with_collector(collector)
        .with_metrics(metrics.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let http = match &s.listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))?;
            let mut rx = stop_rx.clone();
            let mut app = esi_http::router(metrics);
            if let Some(fabric) = fabric {
                app = app.merge(esi_http::devices::devices_router(fabric));
            }
            Some(tokio::spawn(esi_http::serve_router(
                listener,
                app,
                async move {
                    let _ = rx.wait_for(|s| *s).await;
                },
            )))
        }
        None => None,
    };
    tracing::info!(name = %s.name, roles = ?s.roles.names(), jobs = s.jobs, "esi serve started");
    driver.run(signalled()).await?;
    let _ = stop_tx.send(true);
    if let Some(h) = http {
        let _ = h.await;
    }
    tracing::info!("esi serve stopped");
    Ok(())
}

/// The simulated routers of `--devices sim` (shown read-only on `/devices`).
type Fabric = Option<Arc<SimFabric>>;

/// The Heat and device backends the settings name, metered, with the collector their
/// monitoring plug-in registers targets with (and the simulated routers, if simulated).
fn backends(
    s: &Settings,
    metrics: &Arc<Metrics>,
) -> Result<(Arc<dyn Heat>, Arc<Collector>, Fabric)> {
    let seed = seed_of(&s.name);
    let mut fabric = None;
    let registry: Arc<dyn DeviceRegistry> = match s.devices {
        DevicesKind::Sim => {
            let f = Arc::new(SimFabric::auto());
            fabric = Some(f.clone());
            f
        }
        DevicesKind::Netconf => {
            let policy = match (&s.known_hosts, s.netconf_insecure) {
                (Some(path), _) => HostKeyPolicy::KnownHosts(path.clone()),
                (None, true) => HostKeyPolicy::Insecure,
                (None, false) => bail!(
                    "--devices netconf needs --known-hosts FILE to check router host keys \
                     (or --netconf-insecure for a lab)"
                ),
            };
            Arc::new(NetconfRegistry::new(
                NetconfOptions::default().with_host_keys(policy),
            ))
        }
    };
    let registry: Arc<dyn DeviceRegistry> =
        Arc::new(MeteredDevices::new(registry, metrics.clone()));
    let (collector, local) = LocalBackends::over(seed, Arc::new(SystemClock), registry.clone());
    let heat: Arc<dyn Heat> = match s.heat {
        HeatKind::Local => local,
        HeatKind::Openstack => {
            let url = s.heat_url.clone();
            let config = esi_heat::HeatConfig::from_vars(|k| match k {
                "HEAT_URL" => url.clone().or_else(|| std::env::var(k).ok()),
                _ => std::env::var(k).ok(),
            })
            .context("--heat openstack")?;
            let (mode, plugins) = match s.device_resources {
                DeviceResourcesKind::Esi => (esi_heat::DeviceResources::Esi, true),
                DeviceResourcesKind::Heat => (esi_heat::DeviceResources::Heat, false),
            };
            let heat = esi_heat::OpenStackHeat::new(config.device_resources(mode))
                .context("--heat openstack")?;
            if plugins {
                Arc::new(
                    heat.with_device_plugins(registry, collector.clone())
                        .with_esi_types(s.esi_resource_types.iter().cloned()),
                )
            } else {
                if !s.esi_resource_types.is_empty() {
                    bail!("--esi-resource-types needs --device-resources esi");
                }
                Arc::new(heat)
            }
        }
    };
    Ok((
        Arc::new(MeteredHeat::new(heat, metrics.clone())),
        collector,
        fabric,
    ))
}

fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "esi-serve-config-{}-{}.toml",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let cfg = file(
            "etcd = \"http://a:1,http://b:2\"\nroles = [\"worker\", \"monitor\"]\njobs = 7\nlisten = \"127.0.0.1:1\"\nlog_format = \"json\"\n",
        );
        let s = ServeArgs {
            jobs: Some(3),
            config: Some(cfg.clone()),
            ..ServeArgs::default()
        }
        .resolve()
        .expect("resolves");
        assert_eq!(s.jobs, 3, "the flag wins");
        assert_eq!(s.etcd, vec!["http://a:1", "http://b:2"]);
        assert_eq!(s.roles.names(), vec!["worker", "monitor"]);
        assert_eq!(s.listen.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(s.log_format, LogFormat::Json);
        let d = ServeArgs::default().resolve().expect("defaults");
        assert!(d.etcd.is_empty());
        assert_eq!(d.jobs, 4);
        assert_eq!(d.roles, Roles::default());
        let _ = std::fs::remove_file(cfg);
    }

    #[test]
    fn bad_settings_are_refused_with_the_field() {
        let e = ServeArgs {
            roles: Some(vec!["manger".into()]),
            ..ServeArgs::default()
        }
        .resolve()
        .expect_err("unknown role");
        assert!(e.to_string().contains("manger"), "{e}");
        let cfg = file("jobs = 2\nbogus = 1\n");
        let e = ServeArgs {
            config: Some(cfg.clone()),
            ..ServeArgs::default()
        }
        .resolve()
        .expect_err("unknown key");
        assert!(format!("{e:#}").contains("bogus"), "{e:#}");
        let _ = std::fs::remove_file(cfg);
    }

    #[tokio::test]
    async fn backends_are_wired_as_named_and_refuse_what_cannot_work() {
        let metrics = Arc::new(Metrics::new());
        let settings = |heat, devices, known_hosts: Option<PathBuf>, url: Option<&str>| {
            ServeArgs {
                heat: Some(heat),
                devices: Some(devices),
                known_hosts,
                heat_url: url.map(String::from),
                name: Some("wiring-test".into()),
                ..ServeArgs::default()
            }
            .resolve()
            .expect("resolves")
        };
        // NETCONF without a way to check host keys is refused, naming the flag.
        let e = backends(
            &settings(HeatKind::Local, DevicesKind::Netconf, None, None),
            &metrics,
        )
        .err()
        .expect("refused");
        assert!(e.to_string().contains("--known-hosts"), "{e}");
        // With a known_hosts file (or --netconf-insecure) it is built.
        let kh = std::env::temp_dir().join("esi-serve-known-hosts");
        assert!(backends(
            &settings(HeatKind::Local, DevicesKind::Netconf, Some(kh), None),
            &metrics
        )
        .is_ok());
        // OpenStack Heat with a fixed endpoint and no Keystone is built from the flag alone.
        assert!(backends(
            &settings(
                HeatKind::Openstack,
                DevicesKind::Sim,
                None,
                Some("http://127.0.0.1:1/v1/admin")
            ),
            &metrics
        )
        .is_ok());
        let file_cfg = file("heat = \"openstack\"\ndevices = \"netconf\"\ndevice_resources = \"heat\"\nnetconf_insecure = true\n");
        let s = ServeArgs {
            config: Some(file_cfg.clone()),
            ..ServeArgs::default()
        }
        .resolve()
        .expect("file");
        assert_eq!(
            (s.heat, s.devices, s.device_resources, s.netconf_insecure),
            (
                HeatKind::Openstack,
                DevicesKind::Netconf,
                DeviceResourcesKind::Heat,
                true
            )
        );
        let _ = std::fs::remove_file(file_cfg);
    }
}
