//! OpenStack Heat (and Keystone v3) over HTTP: [`OpenStackHeat`] implements esi's
//! [`esi_core::heat::Heat`] trait against a real Heat.
//!
//! ```no_run
//! use esi_core::exec::stack::{StackOperation, StackRequest};
//! use esi_core::heat::Heat;
//! use esi_heat::{HeatConfig, OpenStackHeat};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME … as the OpenStack CLI reads
//! // them; or only HEAT_URL for a Heat without Keystone.
//! let heat = OpenStackHeat::new(HeatConfig::from_env()?)?;
//! let request = StackRequest {
//!     stack_name: "network_82712b89".into(),
//!     operation: StackOperation::Create,
//!     template_id: Some("network".into()),
//!     timeout_mins: Some(5),
//!     disable_rollback: true,
//!     request_parameters: serde_json::Map::new(),
//!     jinja_params: serde_json::Map::new(),
//!     template_text: Some(
//!         "heat_template_version: 2013-05-23\nresources:\n  v: {type: OS::Heat::Value, \
//!          properties: {value: 42}}\noutputs:\n  id: {value: {get_attr: [v, value]}}\n"
//!             .into(),
//!     ),
//! };
//! let outcome = heat.create(&request).await?;
//! assert_eq!(outcome.status, "CREATE_COMPLETE");
//! heat.delete("network_82712b89").await?;
//! # Ok(()) }
//! ```
//!
//! Behaviour:
//!
//! * **Keystone**: password (user and project by name or id, domains by name or id) or
//!   application-credential authentication ([`Auth`]); the token is cached until a quarter of
//!   its lifetime (at most 60 s) before it expires, and renewed once when Heat answers 401
//!   (the request is then replayed). The orchestration endpoint is taken from the token's
//!   catalog (region, interface) unless [`HeatConfig::heat_url`] fixes it. [`Auth::None`]
//!   talks to a noauth Heat without any token. Passwords, secrets and tokens are
//!   [`esi_core::secret::Secret`]s: never logged, never in errors or `Debug`.
//! * **Stacks** are addressed by name: create (`POST /stacks`; an existing name is updated),
//!   update (the full template and parameters, `PUT /stacks/<name>/<id>` — never through the
//!   `/stacks/<name>` redirect, which drops the body; a missing stack is created), delete (a
//!   missing stack is `DELETE_COMPLETE`), get. Each waits for `*_IN_PROGRESS` to end with a
//!   geometric back-off sized to about [`PollPolicy::max_polls`] polls over the request's
//!   `timeout_mins`. `*_FAILED` is an outcome carrying Heat's status reason; outputs come
//!   back as `{output_key, output_value, description}` in Heat's order.
//! * **Errors**: 409 (stack locked), 5xx and transport errors are retried with back-off
//!   ([`RetryPolicy`]; while Heat or Keystone does not answer at all, for up to
//!   [`RetryPolicy::unavailable_patience`], 120 s by default, so that jobs wait through a Heat
//!   restart; a stack still `*_IN_PROGRESS` when Heat answers again gets its operation sent
//!   again, since a crashed engine leaves it so) and then become
//!   [`esi_core::heat::HeatError::Unavailable`]; 400, 401
//!   (after one renewal), 403 and 404 on create are
//!   [`esi_core::heat::HeatError::Rejected`] with Heat's (or Keystone's, named) message.
//! * **Concurrency**: at most [`HeatConfig::max_in_flight`] stack operations at once per
//!   client (one client per endpoint), and one at a time per stack name.
//! * **Device resources** ([`DeviceResources`]): with `Heat` the template goes to Heat
//!   untouched (Heat has the device plug-ins). With `Esi`, every resource whose type has an esi
//!   plug-in ([`OpenStackHeat::with_device_plugins`], [`OpenStackHeat::with_plugin`]) is sent
//!   as an `OS::Heat::Value` holding its properties; Heat resolves them, an added output reads
//!   them back, and esi drives the resources through the plug-ins `LocalHeat` uses
//!   (`esi_core::heat::drive`), including update and delete. The plug-in state lives in this
//!   client; after a restart a delete re-applies the values Heat holds before removing them.
//!   The resolved properties (device passwords included) are stack outputs in Heat, visible
//!   to whoever may show the stack there; [`esi_core::heat::Heat::get`] strips them.

mod client;
mod config;
mod error;
mod esi_mode;
mod keystone;

pub use client::OpenStackHeat;
pub use config::{
    Auth, ConfigError, DeviceResources, Domain, HeatConfig, Named, PollPolicy, RetryPolicy,
};
pub use esi_mode::{stand_in_template, DEFERRED_PREFIX, DEVICE_OUTPUT_PREFIX, STAND_IN_TYPE};
