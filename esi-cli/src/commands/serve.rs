//! `esi serve`: the daemon. Wires a store (etcd, or the embedded in-memory store), a Heat
//! backend and devices into the real-time driver of esi-core, serves `/metrics` and `/healthz`
//! (esi-http) and stops gracefully on SIGTERM/SIGINT.

use crate::backend;
use crate::commands::monitoring::{MonitorArgs, MonitorSettings};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use esi_core::clock::SystemClock;
use esi_core::collector::{Collector, TargetService};
use esi_core::device::{DeviceRegistry, SimFabric};
use esi_core::heat::local::{MONITORING_TYPE, NETCONF_TYPE};
use esi_core::heat::plugins::{MonitoringPlugin, NetconfPlugin};
use esi_core::heat::{Heat, LocalHeat};
use esi_core::runtime::driver::{Driver, DriverConfig, Roles};
use esi_core::runtime::metrics::{MeteredDevices, MeteredHeat, Metrics};
use esi_core::runtime::monitor::{SharedConfig, SharedTargets};
use esi_core::secret::Secret;
use esi_core::store::{MemoryStore, Store};
use esi_core::Catalog;
use esi_netconf::{
    AllOf, DeviceMap, HostKeyPolicy, InterfacesUp, NetconfOptions, NetconfRegistry, VrrpActive,
};
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
    /// With `--devices netconf`: address overrides, one router per line
    /// `NAME HOST:PORT [SHA256:FINGERPRINT]` (exactly what `esi netsim` prints). A router the
    /// resources call NAME (its address, or `address:port`) is reached at HOST:PORT, its host
    /// key pinned to the fingerprint when one is given.
    #[arg(long, env = "ESI_DEVICE_MAP")]
    pub device_map: Option<PathBuf>,
    /// With `--devices netconf`: commit confirmed with this rollback timer (seconds), check
    /// that every interface the change touches is up (`interfaces-up`) and that the VRRP groups
    /// on them are master or backup (`vrrp-active`), then confirm; a failed check cancels the
    /// commit and the resource records the check.
    #[arg(long, env = "ESI_CONFIRMED_COMMIT", value_name = "SECONDS")]
    pub confirmed_commit: Option<u64>,
    /// With `--devices netconf`: timeout of the SSH connect and of each RPC (default 15 s to
    /// connect, 60 s per RPC).
    #[arg(long, env = "ESI_NETCONF_TIMEOUT", value_name = "SECONDS")]
    pub netconf_timeout: Option<u64>,
    /// With `--devices netconf`: log in with this SSH private key (OpenSSH format; its
    /// passphrase, if any, in ESI_NETCONF_KEY_PASSPHRASE) instead of the resources' passwords
    /// (the user is still the resources').
    #[arg(long, env = "ESI_NETCONF_KEY", value_name = "FILE")]
    pub netconf_key: Option<PathBuf>,
    /// A TOML file with any of: etcd, roles, jobs, heat, devices, device_resources, heat_url,
    /// esi_resource_types, known_hosts, netconf_insecure, device_map, confirmed_commit,
    /// netconf_timeout, netconf_key, log_format, listen, name.
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
    /// Monitoring (role `monitor`).
    #[command(flatten)]
    pub monitor: MonitorArgs,
    /// etcd TLS and user.
    #[command(flatten)]
    pub access: backend::EtcdAccess,
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
    device_map: Option<PathBuf>,
    confirmed_commit: Option<u64>,
    netconf_timeout: Option<u64>,
    netconf_key: Option<PathBuf>,
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
    /// Address overrides (and pinned host keys) of routers.
    pub device_map: Option<PathBuf>,
    /// Confirmed commit rollback timer, when on.
    pub confirmed_commit: Option<Duration>,
    /// Connect and RPC timeout of NETCONF sessions, when not the default.
    pub netconf_timeout: Option<Duration>,
    /// SSH private key for NETCONF logins (instead of passwords).
    pub netconf_key: Option<PathBuf>,
    /// Log format.
    pub log_format: LogFormat,
    /// HTTP listen address.
    pub listen: Option<String>,
    /// Process name.
    pub name: String,
    /// Lease TTL override.
    pub lease_ttl: Option<Duration>,
    /// Monitoring.
    pub monitor: MonitorSettings,
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
        backend::set_access(self.access.clone());
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
            device_map: self.device_map.or(file.device_map),
            confirmed_commit: match self.confirmed_commit.or(file.confirmed_commit) {
                Some(0) => bail!("--confirmed-commit must be at least 1 second"),
                Some(s) => Some(Duration::from_secs(s)),
                None => None,
            },
            netconf_key: self.netconf_key.or(file.netconf_key),
            netconf_timeout: match self.netconf_timeout.or(file.netconf_timeout) {
                Some(0) => bail!("--netconf-timeout must be at least 1 second"),
                Some(s) => Some(Duration::from_secs(s)),
                None => None,
            },
            log_format: self
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            listen: self.listen.or(file.listen),
            name: self.name.or(file.name).unwrap_or_else(default_name),
            lease_ttl,
            monitor: self.monitor.resolve()?,
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
    // on etcd the monitoring targets are stored and divided between the monitor processes
    let shared_store = (!s.etcd.is_empty() && !s.monitor.local).then(|| {
        (
            store.clone(),
            SharedConfig {
                name: s.name.clone(),
                ttl: config.claim_ttl,
                refresh: config.claim_refresh,
                resync: Duration::from_secs(300),
            },
        )
    });
    let (heat, collector, shared, fabric) = backends(&s, &metrics, shared_store)?;
    let targets: Arc<dyn TargetService> = match &shared {
        Some(t) => t.clone(),
        None => collector.clone(),
    };
    let mut driver = Driver::new(store, heat, Arc::new(Catalog::default()), config)
        .with_collector(collector)
        .with_metrics(metrics.clone());
    if let Some(t) = shared {
        driver = driver.with_shared_targets(t);
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let http = match &s.listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))?;
            let mut rx = stop_rx.clone();
            let mut app = esi_http::daemon_router(metrics, targets);
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

/// The Heat and device backends the settings name, metered; the collector; with a shared
/// store, the target registry shared with the other processes (what the monitoring plug-in
/// and the REST API register targets with); and the simulated routers, if simulated (shown
/// read-only on `/devices`).
fn backends(
    s: &Settings,
    metrics: &Arc<Metrics>,
    shared: Option<(Arc<dyn Store>, SharedConfig)>,
) -> Result<Backends> {
    let seed = seed_of(&s.name);
    let mut fabric = None;
    let registry: Arc<dyn DeviceRegistry> = match s.devices {
        DevicesKind::Sim => {
            let f = Arc::new(SimFabric::auto());
            fabric = Some(f.clone());
            f
        }
        DevicesKind::Netconf => {
            let policy = match (&s.known_hosts, s.netconf_insecure, &s.device_map) {
                (Some(path), _, _) => HostKeyPolicy::KnownHosts(path.clone()),
                (None, true, _) => HostKeyPolicy::Insecure,
                // only the routers the map pins a fingerprint for are accepted
                (None, false, Some(_)) => HostKeyPolicy::Fingerprints(Vec::new()),
                (None, false, None) => bail!(
                    "--devices netconf needs --known-hosts FILE or a --device-map with \
                     fingerprints to check router host keys (or --netconf-insecure for a lab)"
                ),
            };
            let mut options = NetconfOptions::default().with_host_keys(policy);
            if let Some(path) = &s.device_map {
                let map = DeviceMap::load(path).context("--device-map")?;
                tracing::info!(path = %path.display(), routers = map.entries().len(), "device map loaded");
                options = options.with_device_map(map);
            }
            if let Some(path) = &s.netconf_key {
                if !path.is_file() {
                    bail!("--netconf-key {}: no such file", path.display());
                }
                let passphrase = std::env::var("ESI_NETCONF_KEY_PASSPHRASE")
                    .ok()
                    .filter(|p| !p.is_empty())
                    .map(Secret::new);
                options.key_file = Some((path.clone(), passphrase));
            }
            if let Some(t) = s.netconf_timeout {
                options.session.connect_timeout = t;
                options.session.rpc_timeout = t;
            }
            if let Some(timeout) = s.confirmed_commit {
                let check = AllOf::new(vec![Arc::new(InterfacesUp), Arc::new(VrrpActive)]);
                options = options.with_confirmed_commit(timeout, Arc::new(check));
            }
            Arc::new(NetconfRegistry::new(options))
        }
    };
    let polled: Arc<dyn DeviceRegistry> = Arc::new(MeteredDevices::new(
        s.monitor.registry(registry.clone())?,
        metrics.clone(),
    ));
    let registry: Arc<dyn DeviceRegistry> =
        Arc::new(MeteredDevices::new(registry, metrics.clone()));
    let collector = Arc::new(Collector::new(
        polled,
        Arc::new(SystemClock),
        s.monitor.collector_config(seed, s.listen.as_deref()),
    ));
    let shared = shared
        .map(|(store, config)| Arc::new(SharedTargets::new(store, collector.clone(), config)));
    let targets: Arc<dyn TargetService> = match &shared {
        Some(t) => t.clone(),
        None => collector.clone(),
    };
    let local: Arc<dyn Heat> = Arc::new(
        LocalHeat::new(seed)
            .with_plugin(NETCONF_TYPE, Arc::new(NetconfPlugin::new(registry.clone())))
            .with_plugin(
                MONITORING_TYPE,
                Arc::new(MonitoringPlugin::new(targets.clone())),
            ),
    );
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
                    heat.with_device_plugins(registry, targets)
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
        shared,
        fabric,
    ))
}

/// What [`backends`] wires.
type Backends = (
    Arc<dyn Heat>,
    Arc<Collector>,
    Option<Arc<SharedTargets>>,
    Option<Arc<SimFabric>>,
);

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
            None,
        )
        .err()
        .expect("refused");
        assert!(e.to_string().contains("--known-hosts"), "{e}");
        // With a known_hosts file (or --netconf-insecure) it is built.
        let kh = std::env::temp_dir().join("esi-serve-known-hosts");
        assert!(backends(
            &settings(HeatKind::Local, DevicesKind::Netconf, Some(kh), None),
            &metrics,
            None
        )
        .is_ok());
        // A device map alone (fingerprints pinned in it) is enough; a bad one names its line.
        let map = file("192.0.2.11 127.0.0.1:27000 SHA256:abc\n");
        let mut s = settings(HeatKind::Local, DevicesKind::Netconf, None, None);
        s.device_map = Some(map.clone());
        assert!(backends(&s, &metrics, None).is_ok());
        let bad = file("192.0.2.11 127.0.0.1\n");
        s.device_map = Some(bad.clone());
        let e = backends(&s, &metrics, None).err().expect("bad map refused");
        assert!(format!("{e:#}").contains("line 1"), "{e:#}");
        let _ = std::fs::remove_file(map);
        let _ = std::fs::remove_file(bad);
        // OpenStack Heat with a fixed endpoint and no Keystone is built from the flag alone.
        assert!(backends(
            &settings(
                HeatKind::Openstack,
                DevicesKind::Sim,
                None,
                Some("http://127.0.0.1:1/v1/admin")
            ),
            &metrics,
            None
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
