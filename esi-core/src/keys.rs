//! The etcd key layout (`shared/spec/keys.md`).

/// Prefix of the desired state written by the API server.
pub const CONFIG: &str = "/config";
/// Prefix of results read back by the API server.
pub const STATE: &str = "/state";
/// Prefix of polled status documents.
pub const MONITORING: &str = "/monitoring";
/// Every job record: `/jobs/all/<job id>` = `["<handler>", job, 0]`.
pub const JOBS_ALL: &str = "/jobs/all";
/// Jobs waiting for dependencies.
pub const JOBS_WAITING: &str = "/jobs/waiting";
/// Jobs a worker may claim.
pub const JOBS_READY: &str = "/jobs/ready";
/// Claimed jobs (bound to a lease).
pub const JOBS_WORKING: &str = "/jobs/working";
/// Finished jobs, until the manager cleans up.
pub const JOBS_FINISHED: &str = "/jobs/finished";
/// The scheduling journal written around each chain.
pub const WORKFLOW_JOURNAL: &str = "/worker-workflow-jobs";
/// The manager's leadership key.
pub const JOB_MANAGER_ID: &str = "/job_manager_id";
/// The manager's resource cache.
pub const WORKER_CONFIG: &str = "/esi-worker/config";

/// `/config<prefix>/<id>`.
pub fn config(prefix: &str, id: &str) -> String {
    format!("{CONFIG}{prefix}/{id}")
}

/// `/state<prefix>/<id>`.
pub fn state(prefix: &str, id: &str) -> String {
    format!("{STATE}{prefix}/{id}")
}

/// `/esi-worker/config<prefix>/<id>`.
pub fn worker_config(prefix: &str, id: &str) -> String {
    format!("{WORKER_CONFIG}{prefix}/{id}")
}

/// `/esi-worker/heat_stacks/v2.0/<type>s/<id>`.
pub fn heat_stack(resource_type: &str, id: &str) -> String {
    format!("/esi-worker/heat_stacks/v2.0/{resource_type}s/{id}")
}

/// `/esi-worker/job_state/v2.0/<type>s/<id>`.
pub fn job_state(resource_type: &str, id: &str) -> String {
    format!("/esi-worker/job_state/v2.0/{resource_type}s/{id}")
}

/// `/monitoring/v2.0/<plural>/<id>`.
pub fn monitoring(plural: &str, id: &str) -> String {
    format!("{MONITORING}/v2.0/{plural}/{id}")
}

/// `/jobs/all/<job id>`.
pub fn job(job_id: &str) -> String {
    format!("{JOBS_ALL}/{job_id}")
}

/// The Heat stack name of a resource: `<type>_<id>`.
pub fn stack_name(resource_type: &str, id: &str) -> String {
    format!("{resource_type}_{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_recorded_keys() {
        assert_eq!(config("/v2.0/ports", "p1"), "/config/v2.0/ports/p1");
        assert_eq!(
            state("/common/v1.0/tenants", "t"),
            "/state/common/v1.0/tenants/t"
        );
        assert_eq!(
            heat_stack("port", "p1"),
            "/esi-worker/heat_stacks/v2.0/ports/p1"
        );
        assert_eq!(
            job("create:heat_worker:port:p1:1:abcde"),
            "/jobs/all/create:heat_worker:port:p1:1:abcde"
        );
        assert_eq!(stack_name("port", "p1"), "port_p1");
    }
}
