//! `esi netsim [WORLD] [--routers N]`: serve simulated routers as NETCONF servers over SSH.

use crate::worlddir::load_world;
use anyhow::{bail, Context, Result};
use esi_core::device::SimRouter;
use esi_core::plan::{plan_world, PlanOptions};
use esi_core::secret::Secret;
use esi_core::SeededSuffixes;
use esi_netconf::netsim::{Netsim, NetsimOptions};
use std::net::SocketAddr;
use std::path::Path;
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
}

/// The routers a world's stacks configure (named after their address, as `esi run` names
/// them), in order of first appearance.
fn world_routers(path: &Path) -> Result<Vec<Arc<SimRouter>>> {
    let world = load_world(path)?;
    let plan = plan_world(&world, &mut SeededSuffixes::new(0), PlanOptions::default());
    Ok(plan
        .devices
        .iter()
        .map(|d| {
            Arc::new(SimRouter::new(
                d.device.device_ip.clone(),
                d.device.device_ip.clone(),
                d.device.port,
            ))
        })
        .collect())
}

/// Starts the servers, prints `NAME HOST:PORT SHA256:FINGERPRINT` per router, runs until
/// interrupted.
pub fn run(args: Args<'_>) -> Result<ExitCode> {
    let routers = match (args.world, args.routers) {
        (Some(_), Some(_)) => bail!("give either a world or --routers, not both"),
        (Some(w), None) => world_routers(w)?,
        (None, Some(n)) if n > 0 => (1..=n)
            .map(|i| {
                Arc::new(SimRouter::new(
                    format!("r{i}"),
                    args.listen.ip().to_string(),
                    0,
                ))
            })
            .collect(),
        _ => bail!("give a world or --routers N (N > 0)"),
    };
    if routers.is_empty() {
        bail!("the world configures no routers");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let options = NetsimOptions {
            username: args.user,
            password: args.password,
            ..NetsimOptions::default()
        };
        let sim = Netsim::start(routers, args.listen, options).await?;
        if let Some(path) = args.known_hosts {
            std::fs::write(path, sim.known_hosts())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        crate::emit(&sim.listing())?;
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        drop(sim);
        Ok(ExitCode::SUCCESS)
    })
}
