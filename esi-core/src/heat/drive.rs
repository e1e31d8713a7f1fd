//! Driving resources through their [`ResourcePlugin`]s, shared by [`super::LocalHeat`] (every
//! resource of a stack) and the OpenStack adapter's `--device-resources esi` mode (only the
//! device resources, with the properties OpenStack Heat resolved).
//!
//! [`converge_resource`] brings one resource from its previous record (if any) to newly resolved
//! properties: unchanged and healthy → kept untouched; same type → the plug-in's update (or a
//! replacement when the plug-in asks for one); otherwise the old resource is deleted and a new
//! one created. [`delete_resource`] deletes one. Failures carry the reason in Heat's wording,
//! `Resource <ACTION> failed: resources.<name>: <error>`.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::plugins::{ResourceContext, ResourcePlugin, ResourceState, UpdateOutcome};

/// A resource as the driver keeps it between operations.
#[derive(Clone, Debug)]
pub struct DrivenResource {
    /// Name in the template.
    pub name: String,
    /// Resource type.
    pub resource_type: String,
    /// Resolved properties it was last created or updated with.
    pub properties: Value,
    /// What its plug-in keeps about it.
    pub state: ResourceState,
    /// `CREATE_COMPLETE`, `UPDATE_COMPLETE`, `CREATE_FAILED`, …
    pub status: String,
}

impl DrivenResource {
    /// True unless its last operation failed.
    pub fn healthy(&self) -> bool {
        !self.status.ends_with("_FAILED")
    }
}

/// Where the plug-ins and the [`ResourceContext`]s come from.
pub trait Driver: Send + Sync {
    /// The plug-in of `resource_type` (a generic one when none is registered).
    fn plugin(&self, resource_type: &str) -> Arc<dyn ResourcePlugin>;
    /// A context for a call on resource `name` of stack `stack_name`; each call may hand out a
    /// fresh [`ResourceContext::new_id`].
    fn context<'a>(
        &self,
        stack_name: &'a str,
        stack_id: &'a str,
        name: &'a str,
        resource_type: &'a str,
    ) -> ResourceContext<'a>;
}

/// Heat's wording of a failed resource operation.
pub fn failure_reason(verb: &str, name: &str, error: &dyn fmt::Display) -> String {
    format!("Resource {verb} failed: resources.{name}: {error}")
}

/// A failed step: the records to keep (the failed resource marked `*_FAILED`) and the reason.
#[derive(Debug)]
pub struct DriveFailure {
    /// The resource's record after the failure (`None` when nothing is left to keep).
    pub record: Option<DrivenResource>,
    /// `Resource <ACTION> failed: resources.<name>: <error>`.
    pub reason: String,
}

/// Brings resource `name` of type `resource_type` to `properties`, starting from `previous`.
#[allow(clippy::too_many_arguments)]
pub async fn converge_resource(
    driver: &dyn Driver,
    stack_name: &str,
    stack_id: &str,
    name: &str,
    resource_type: &str,
    properties: Value,
    previous: Option<DrivenResource>,
) -> Result<DrivenResource, DriveFailure> {
    let plugin = driver.plugin(resource_type);
    if let Some(o) = previous {
        let same_type = o.resource_type == resource_type;
        let healthy = o.healthy();
        if same_type && healthy && o.properties == properties {
            return Ok(o);
        }
        if same_type && healthy {
            let ctx = driver.context(stack_name, stack_id, name, resource_type);
            match plugin
                .update(&ctx, &o.state, &o.properties, &properties)
                .await
            {
                Ok(UpdateOutcome::Updated(state)) => {
                    return Ok(DrivenResource {
                        name: name.to_string(),
                        resource_type: resource_type.to_string(),
                        properties,
                        state,
                        status: "UPDATE_COMPLETE".into(),
                    });
                }
                Ok(UpdateOutcome::Replace) => {}
                Err(e) => {
                    let reason = failure_reason("UPDATE", name, &e);
                    return Err(DriveFailure {
                        record: Some(DrivenResource {
                            status: "UPDATE_FAILED".into(),
                            ..o
                        }),
                        reason,
                    });
                }
            }
        }
        if o.status != "CREATE_FAILED" {
            if let Err(reason) = delete_resource(driver, stack_name, stack_id, &o).await {
                return Err(DriveFailure {
                    record: Some(DrivenResource {
                        status: "DELETE_FAILED".into(),
                        ..o
                    }),
                    reason,
                });
            }
        }
    }
    let ctx = driver.context(stack_name, stack_id, name, resource_type);
    match plugin.create(&ctx, &properties).await {
        Ok(state) => Ok(DrivenResource {
            name: name.to_string(),
            resource_type: resource_type.to_string(),
            properties,
            state,
            status: "CREATE_COMPLETE".into(),
        }),
        Err(e) => Err(DriveFailure {
            reason: failure_reason("CREATE", name, &e),
            record: Some(DrivenResource {
                name: name.to_string(),
                resource_type: resource_type.to_string(),
                properties,
                state: ResourceState {
                    physical_id: String::new(),
                    attributes: Map::new(),
                    open_attributes: false,
                    data: Value::Null,
                },
                status: "CREATE_FAILED".into(),
            }),
        }),
    }
}

/// Deletes `resource` through its plug-in (a `CREATE_FAILED` resource has nothing to delete);
/// the error is the failure reason in Heat's wording.
pub async fn delete_resource(
    driver: &dyn Driver,
    stack_name: &str,
    stack_id: &str,
    resource: &DrivenResource,
) -> Result<(), String> {
    if resource.status == "CREATE_FAILED" {
        return Ok(());
    }
    let ctx = driver.context(
        stack_name,
        stack_id,
        &resource.name,
        &resource.resource_type,
    );
    driver
        .plugin(&resource.resource_type)
        .delete(&ctx, &resource.state, &resource.properties)
        .await
        .map_err(|e| failure_reason("DELETE", &resource.name, &e))
}

/// Deletes `resources` newest first. On a failure the remaining ones (the failed one last,
/// marked `DELETE_FAILED`) are returned with the reason.
pub async fn delete_all(
    driver: &dyn Driver,
    stack_name: &str,
    stack_id: &str,
    mut resources: Vec<DrivenResource>,
) -> Result<(), (Vec<DrivenResource>, String)> {
    while let Some(r) = resources.pop() {
        if let Err(reason) = delete_resource(driver, stack_name, stack_id, &r).await {
            resources.push(DrivenResource {
                status: "DELETE_FAILED".into(),
                ..r
            });
            return Err((resources, reason));
        }
    }
    Ok(())
}
