//! `esi netsim [WORLD] [--routers N]`: serve simulated routers as NETCONF servers over SSH.

use crate::worlddir::load_world;
use anyhow::{bail, Context, Result};
use esi_core::device::SimRouter;
use esi_core::plan::{plan_world, PlanOptions};
use esi_core::secret::Secret;
use esi_core::SeededSuffixes;
use esi_netconf::netsim::{Netsim, NetsimOptions};
use esi_netconf::russh_keys::PublicKey;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Options of `esi netsim`.
pub struct Args<'a> {
    /// World whose routers are served.
    pub world: Option<&'a Path>,
    /// Or this many routers `r1`..`rN`.
    pub routers: Option<usize>,
    /// First address.
    pub listen: SocketAddr,
    /// Login user.
    pub user: String,
    /// Login password.
    pub password: Secret<String>,
    /// Write a known_hosts file for the routers here.
    pub known_hosts: Option<&'a Path>,
    /// `ROUTER=INTERFACE` forced operationally down.
    pub interface_down: Vec<String>,
    /// Host keys and running configurations kept here.
    pub state_dir: Option<PathBuf>,
    /// Routers that never answer an RPC.
    pub stall: Vec<String>,
    /// Public key files accepted for logins.
    pub authorized_keys: Vec<PathBuf>,
}

/// A world's routers with the login of the world resource naming each one's address.
type Logins = HashMap<String, (String, Secret<String>)>;

/// The routers a world's stacks configure (named after their address, as `esi run` names
/// them), in order of first appearance, and their logins: the `username`/`password` fields of
/// the world resource whose body names the router's address (the resource the stacks take
/// the credentials from), when it has them.
fn world_routers(path: &Path) -> Result<(Vec<Arc<SimRouter>>, Logins)> {
    let world = load_world(path)?;
    let plan = plan_world(&world, &mut SeededSuffixes::new(0), PlanOptions::default());
    let mut logins = Logins::new();
    for d in &plan.devices {
        let ip = d.device.device_ip.as_str();
        let login = world.resources.iter().find_map(|r| {
            let body = r.body.as_object()?;
            let names_it = body
                .iter()
                .any(|(k, v)| k != "id" && v.as_str() == Some(ip));
            let user = body.get("username")?.as_str()?;
            let password = body.get("password")?.as_str()?;
            (names_it && user == d.device.username)
                .then(|| (user.to_string(), Secret::new(password.to_string())))
        });
        if let Some(l) = login {
            logins.insert(ip.to_string(), l);
        }
    }
    let routers = plan
        .devices
        .iter()
        .map(|d| {
            Arc::new(SimRouter::new(
                d.device.device_ip.clone(),
                d.device.device_ip.clone(),
                d.device.port,
            ))
        })
        .collect();
    Ok((routers, logins))
}

/// Starts the servers, prints `NAME HOST:PORT SHA256:FINGERPRINT` per router, runs until
/// interrupted.
pub fn run(args: Args<'_>) -> Result<ExitCode> {
    let (routers, logins) = match (args.world, args.routers) {
        (Some(_), Some(_)) => bail!("give either a world or --routers, not both"),
        (Some(w), None) => world_routers(w)?,
        (None, Some(n)) if n > 0 => (
            (1..=n)
                .map(|i| {
                    Arc::new(SimRouter::new(
                        format!("r{i}"),
                        args.listen.ip().to_string(),
                        0,
                    ))
                })
                .collect(),
            Logins::new(),
        ),
        _ => bail!("give a world or --routers N (N > 0)"),
    };
    if routers.is_empty() {
        bail!("the world configures no routers");
    }
    for spec in &args.interface_down {
        let Some((router, interface)) = spec.split_once('=') else {
            bail!("--interface-down {spec}: expected ROUTER=INTERFACE");
        };
        let Some(r) = routers.iter().find(|r| r.router_name() == router) else {
            let names: Vec<&str> = routers.iter().map(|r| r.router_name()).collect();
            bail!(
                "--interface-down {spec}: no router named {router} (routers: {})",
                names.join(", ")
            );
        };
        if interface.is_empty() {
            bail!("--interface-down {spec}: empty interface name");
        }
        r.set_interface_down(interface, true);
    }
    if let Some(name) = args
        .stall
        .iter()
        .find(|n| !routers.iter().any(|r| r.router_name() == n.as_str()))
    {
        bail!("--stall {name}: no such router");
    }
    let mut authorized_keys = Vec::new();
    for path in &args.authorized_keys {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--authorized-key {}", path.display()))?;
        let key = PublicKey::from_openssh(text.trim()).with_context(|| {
            format!(
                "--authorized-key {}: not an OpenSSH public key",
                path.display()
            )
        })?;
        authorized_keys.push(key);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let options = NetsimOptions {
            username: args.user,
            password: args.password,
            logins,
            state_dir: args.state_dir,
            authorized_keys,
            ..NetsimOptions::default()
        };
        let sim = Netsim::start(routers, args.listen, options).await?;
        for name in &args.stall {
            if let Some(r) = sim.router(name) {
                r.set_stall(true);
            }
        }
        if let Some(path) = args.known_hosts {
            std::fs::write(path, sim.known_hosts())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        crate::emit(&sim.listing())?;
        interrupted().await?;
        drop(sim);
        Ok(ExitCode::SUCCESS)
    })
}

/// Completes on SIGINT (or SIGTERM on Unix).
async fn interrupted() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
        tokio::select! {
            _ = term.recv() => {}
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
