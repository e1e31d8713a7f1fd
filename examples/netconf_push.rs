//! Push one Junos configuration to a router over NETCONF/SSH and read it back.
//!
//! `cargo run --example netconf_push --features netconf -- HOST:PORT USER SHA256:FINGERPRINT`
//! (password from `ESI_NETCONF_PASSWORD`). Without arguments it serves one simulated router
//! (`esi netsim`) on a loopback port and pushes to that.

use std::sync::Arc;

use esi::device::{
    load_with_retry, ConfigChange, Credentials, DeviceAddress, DeviceRegistry, RetryPolicy,
    SimRouter,
};
use esi::netconf::netsim::{Netsim, NetsimOptions};
use esi::netconf::{HostKeyPolicy, NetconfOptions, NetconfRegistry};
use esi::secret::Secret;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut _local = None;
    let (address, user, fingerprint, password) = match args.as_slice() {
        [addr, user, fp] => (
            addr.clone(),
            user.clone(),
            fp.clone(),
            std::env::var("ESI_NETCONF_PASSWORD")?,
        ),
        _ => {
            let sim = Netsim::start(
                vec![Arc::new(SimRouter::new("lab1", "127.0.0.1", 0))],
                "127.0.0.1:0".parse()?,
                NetsimOptions::default(),
            )
            .await?;
            let r = &sim.routers()[0];
            let local = (
                r.addr().to_string(),
                "esi".to_string(),
                r.fingerprint(),
                "esi".to_string(),
            );
            _local = Some(sim);
            local
        }
    };
    let (host, port) = address.rsplit_once(':').ok_or("HOST:PORT")?;
    let registry = NetconfRegistry::new(
        NetconfOptions::default().with_host_keys(HostKeyPolicy::Fingerprints(vec![fingerprint])),
    );
    let device = registry
        .connect(
            &DeviceAddress {
                host: host.to_string(),
                port: Some(port.parse()?),
            },
            &Credentials::Login {
                username: user,
                password: Secret::new(password),
            },
        )
        .await?;
    let change = ConfigChange {
        resource: "example/netconf_push".into(),
        merge_text: "interfaces {\n    ge-0/0/1 {\n        unit 122 {\n            vlan-id 122;\n            description CloudGW_vpn;\n        }\n    }\n}\n".into(),
        ..Default::default()
    };
    load_with_retry(device.as_ref(), &change, RetryPolicy::default()).await?;
    println!("committed on {}; running configuration:", device.name());
    print!("{}", device.configuration().await?);
    registry.close_all().await;
    Ok(())
}
