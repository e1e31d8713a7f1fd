//! Polls an SNMP agent once: sysUpTime, the ifName → ifIndex map, each interface's oper
//! status and HC counters.
//!
//! ```sh
//! bash .ci/services/40-snmp.sh start
//! cargo run --example snmp_poll --features snmp -- 127.0.0.1:16101 public
//! ```

use esi::snmp::{SnmpAuth, SnmpClient, SnmpConfig, SnmpDevice};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let agent = args.next().unwrap_or_else(|| "127.0.0.1:16101".into());
    let community = args.next().unwrap_or_else(|| "public".into());
    let client = SnmpClient::new(
        agent.parse()?,
        SnmpAuth::community(community),
        SnmpConfig::default(),
    );
    let device = SnmpDevice::new(agent.clone(), client);
    println!("{agent}: sysUpTime {} ticks", device.sys_uptime().await?);
    let mut interfaces: Vec<(String, u64)> =
        device.refresh_interfaces().await?.into_iter().collect();
    interfaces.sort_by_key(|(_, i)| *i);
    for (name, index) in interfaces {
        let status = device.oper_status(&name).await?;
        let counters = device.counters(&name).await.ok();
        println!(
            "  {index:>3} {name:<16} {:<4} {}",
            status.as_str(),
            counters
                .map(|c| format!("in {} out {}", c.in_octets, c.out_octets))
                .unwrap_or_default()
        );
    }
    Ok(())
}
