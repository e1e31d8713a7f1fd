//! Create, read back and delete one stack in a real OpenStack Heat.
//!
//! `HEAT_URL=http://127.0.0.1:8004/v1/admin cargo run --example heat_stack --features heat`
//! (or the `OS_*` variables of a Keystone-authenticated Heat, as the OpenStack CLI reads them)

use esi::exec::stack::{StackOperation, StackRequest};
use esi::heat::Heat;
use esi::openstack_heat::{HeatConfig, OpenStackHeat};
use serde_json::{json, Map};

const TEMPLATE: &str = "heat_template_version: 2013-05-23
parameters:
  vlan: {type: number}
resources:
  v:
    type: OS::Heat::Value
    properties: {value: {get_param: vlan}}
outputs:
  vlan: {value: {get_attr: [v, value]}}
";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let heat = OpenStackHeat::new(HeatConfig::from_env()?)?;
    let mut parameters = Map::new();
    parameters.insert("vlan".into(), json!(101));
    let request = StackRequest {
        stack_name: "example_heat_stack".into(),
        operation: StackOperation::Create,
        template_id: Some("example".into()),
        timeout_mins: Some(5),
        disable_rollback: true,
        request_parameters: parameters,
        jinja_params: Map::new(),
        template_text: Some(TEMPLATE.into()),
    };
    let created = heat.create(&request).await?;
    println!(
        "{}: {} — outputs {}",
        request.stack_name,
        created.status,
        json!(created.outputs)
    );
    let deleted = heat.delete(&request.stack_name).await?;
    println!("{}: {}", request.stack_name, deleted.status);
    Ok(())
}
