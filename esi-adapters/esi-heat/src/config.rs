//! How to reach Heat: [`HeatConfig`], from code or from the OpenStack CLI's environment
//! variables ([`HeatConfig::from_env`]).

use std::str::FromStr;
use std::time::Duration;

use esi_core::secret::Secret;

/// A Keystone domain, by name or by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Domain {
    /// `OS_*_DOMAIN_NAME`.
    Name(String),
    /// `OS_*_DOMAIN_ID`.
    Id(String),
}

/// A user or project, by id, or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// By id (`OS_USER_ID`, `OS_PROJECT_ID`).
    Id(String),
    /// By name within a domain (`OS_USERNAME` + `OS_USER_DOMAIN_NAME`, …).
    Name {
        /// The name.
        name: String,
        /// Its domain.
        domain: Domain,
    },
}

/// How esi authenticates (Keystone v3) or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No Keystone: a noauth Heat at a fixed URL.
    None,
    /// Password authentication, scoped to a project.
    Password {
        /// Keystone v3 URL (`OS_AUTH_URL`, e.g. `http://127.0.0.1:5001/v3`).
        auth_url: String,
        /// The user.
        user: Named,
        /// The password (`OS_PASSWORD`).
        password: Secret<String>,
        /// The project the token is scoped to.
        project: Named,
    },
    /// Application credential authentication (the credential carries its project).
    ApplicationCredential {
        /// Keystone v3 URL.
        auth_url: String,
        /// `OS_APPLICATION_CREDENTIAL_ID`.
        id: String,
        /// `OS_APPLICATION_CREDENTIAL_SECRET`.
        secret: Secret<String>,
    },
}

impl Auth {
    /// The Keystone URL, if any.
    pub fn auth_url(&self) -> Option<&str> {
        match self {
            Auth::None => None,
            Auth::Password { auth_url, .. } | Auth::ApplicationCredential { auth_url, .. } => {
                Some(auth_url)
            }
        }
    }
}

/// Who drives the device resources (`OS::Contrail::NetconfNamedConfigs`,
/// `ESI::Monitoring::MonitoringTarget`, and any other type given a plug-in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceResources {
    /// Heat has the device plug-ins installed: the template goes to Heat untouched.
    #[default]
    Heat,
    /// Heat has no device plug-ins: each device resource is sent as an `OS::Heat::Value`
    /// holding its properties, Heat resolves them, and esi drives the resource through its own
    /// plug-ins (the ones `LocalHeat` uses) after the stack operation.
    Esi,
}

impl FromStr for DeviceResources {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "heat" => Ok(DeviceResources::Heat),
            "esi" => Ok(DeviceResources::Esi),
            other => Err(ConfigError::Invalid {
                field: "device_resources".into(),
                reason: format!("`{other}` is neither `heat` nor `esi`"),
            }),
        }
    }
}

/// Waiting for a stack: geometric back-off from `initial` by `factor`, the interval capped so
/// that the whole timeout takes about `max_polls` polls (never above `max_interval`).
#[derive(Debug, Clone, PartialEq)]
pub struct PollPolicy {
    /// First pause after the request.
    pub initial: Duration,
    /// Growth of the pause.
    pub factor: f64,
    /// About how many polls the whole timeout may take (Heat's lesson: ~50, not 600).
    pub max_polls: u32,
    /// Upper bound of one pause.
    pub max_interval: Duration,
    /// How long to wait when the request has no `timeout_mins` (and for deletes).
    pub default_timeout: Duration,
    /// Added to `timeout_mins` (Heat itself fails the stack at its timeout).
    pub grace: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            initial: Duration::from_millis(150),
            factor: 1.5,
            max_polls: 50,
            max_interval: Duration::from_secs(120),
            default_timeout: Duration::from_secs(60 * 60),
            grace: Duration::from_secs(60),
        }
    }
}

/// Retries of one HTTP call.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts on transport errors and 5xx answers (then `Unavailable`, unless
    /// [`Self::unavailable_patience`] has not run out yet).
    pub transport_attempts: u32,
    /// How long one call keeps retrying while Heat does not answer (transport errors, 5xx)
    /// before it gives up with `Unavailable`: a Heat that is restarted makes the jobs wait
    /// and resume instead of failing them. Zero: only [`Self::transport_attempts`] count.
    pub unavailable_patience: Duration,
    /// Attempts on 409 Conflict (stack locked; then `Unavailable`).
    pub conflict_attempts: u32,
    /// First pause.
    pub initial: Duration,
    /// Upper bound of a pause.
    pub max_interval: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            transport_attempts: 4,
            unavailable_patience: Duration::from_secs(120),
            conflict_attempts: 25,
            initial: Duration::from_millis(200),
            max_interval: Duration::from_secs(5),
        }
    }
}

/// Everything [`crate::OpenStackHeat`] needs.
#[derive(Debug, Clone)]
pub struct HeatConfig {
    /// Keystone authentication or none.
    pub auth: Auth,
    /// A fixed orchestration endpoint (`HEAT_URL`, e.g. `http://127.0.0.1:8004/v1/admin`);
    /// without it the endpoint comes from the token's catalog.
    pub heat_url: Option<String>,
    /// Catalog region (`OS_REGION_NAME`); any region when `None`.
    pub region: Option<String>,
    /// Catalog interface (`OS_INTERFACE`): `public` (default), `internal`, `admin`.
    pub interface: String,
    /// Who drives the device resources.
    pub device_resources: DeviceResources,
    /// Stack operations in flight at once against this endpoint.
    pub max_in_flight: usize,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Waiting for `*_IN_PROGRESS`.
    pub poll: PollPolicy,
    /// Retrying 409 and transport errors.
    pub retry: RetryPolicy,
}

impl HeatConfig {
    /// A noauth Heat at `heat_url`.
    pub fn noauth(heat_url: impl Into<String>) -> Self {
        Self::with_auth(Auth::None, Some(heat_url.into()))
    }

    /// Defaults around `auth` and an optional fixed endpoint.
    pub fn with_auth(auth: Auth, heat_url: Option<String>) -> Self {
        HeatConfig {
            auth,
            heat_url,
            region: None,
            interface: "public".into(),
            device_resources: DeviceResources::Heat,
            max_in_flight: 8,
            request_timeout: Duration::from_secs(60),
            poll: PollPolicy::default(),
            retry: RetryPolicy::default(),
        }
    }

    /// From the process environment, named as the OpenStack CLI and python-heatclient name
    /// them: `OS_AUTH_URL` (none: no Keystone, then `HEAT_URL` is required), `OS_USERNAME` /
    /// `OS_USER_ID`, `OS_PASSWORD`, `OS_PROJECT_NAME` / `OS_PROJECT_ID`,
    /// `OS_USER_DOMAIN_NAME` / `_ID`, `OS_PROJECT_DOMAIN_NAME` / `_ID` (default domain
    /// `Default`), `OS_APPLICATION_CREDENTIAL_ID` / `_SECRET` (preferred when set),
    /// `OS_REGION_NAME`, `OS_INTERFACE`, `HEAT_URL`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// Like [`Self::from_env`], reading each variable through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let heat_url = get("HEAT_URL");
        let auth = match get("OS_AUTH_URL") {
            None => {
                if heat_url.is_none() {
                    return Err(ConfigError::Missing {
                        field: "HEAT_URL".into(),
                        reason: "needed when OS_AUTH_URL is not set (noauth Heat)".into(),
                    });
                }
                Auth::None
            }
            Some(auth_url) => {
                if let Some(id) = get("OS_APPLICATION_CREDENTIAL_ID") {
                    let secret = get("OS_APPLICATION_CREDENTIAL_SECRET").ok_or_else(|| {
                        ConfigError::Missing {
                            field: "OS_APPLICATION_CREDENTIAL_SECRET".into(),
                            reason: "OS_APPLICATION_CREDENTIAL_ID is set".into(),
                        }
                    })?;
                    Auth::ApplicationCredential {
                        auth_url,
                        id,
                        secret: Secret::new(secret),
                    }
                } else {
                    let domain = |name: &str, id: &str| match (get(name), get(id)) {
                        (_, Some(id)) => Domain::Id(id),
                        (Some(n), None) => Domain::Name(n),
                        (None, None) => Domain::Name("Default".into()),
                    };
                    let named = |id: &str, name: &str, dn: &str, di: &str, what: &str| match (
                        get(id),
                        get(name),
                    ) {
                        (Some(id), _) => Ok(Named::Id(id)),
                        (None, Some(name)) => Ok(Named::Name {
                            name,
                            domain: domain(dn, di),
                        }),
                        (None, None) => Err(ConfigError::Missing {
                            field: name.to_string(),
                            reason: format!("the {what} (or {id}) is needed with OS_AUTH_URL"),
                        }),
                    };
                    let user = named(
                        "OS_USER_ID",
                        "OS_USERNAME",
                        "OS_USER_DOMAIN_NAME",
                        "OS_USER_DOMAIN_ID",
                        "user",
                    )?;
                    let project = named(
                        "OS_PROJECT_ID",
                        "OS_PROJECT_NAME",
                        "OS_PROJECT_DOMAIN_NAME",
                        "OS_PROJECT_DOMAIN_ID",
                        "project",
                    )?;
                    let password = get("OS_PASSWORD").ok_or_else(|| ConfigError::Missing {
                        field: "OS_PASSWORD".into(),
                        reason: "password authentication needs it".into(),
                    })?;
                    Auth::Password {
                        auth_url,
                        user,
                        password: Secret::new(password),
                        project,
                    }
                }
            }
        };
        let mut config = Self::with_auth(auth, heat_url);
        config.region = get("OS_REGION_NAME");
        if let Some(i) = get("OS_INTERFACE") {
            config.interface = i;
        }
        Ok(config)
    }

    /// Sets who drives the device resources.
    pub fn device_resources(mut self, mode: DeviceResources) -> Self {
        self.device_resources = mode;
        self
    }
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required setting is absent.
    #[error("heat configuration: {field} missing: {reason}")]
    Missing {
        /// The setting (environment variable name).
        field: String,
        /// Why it is needed.
        reason: String,
    },
    /// A setting has an unusable value.
    #[error("heat configuration: {field}: {reason}")]
    Invalid {
        /// The setting.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn noauth_needs_heat_url() {
        assert!(matches!(
            HeatConfig::from_vars(vars(&[])),
            Err(ConfigError::Missing { field, .. }) if field == "HEAT_URL"
        ));
        let c = HeatConfig::from_vars(vars(&[("HEAT_URL", "http://h:8004/v1/admin")])).unwrap();
        assert_eq!(c.auth, Auth::None);
        assert_eq!(c.heat_url.as_deref(), Some("http://h:8004/v1/admin"));
    }

    #[test]
    fn password_and_application_credential_from_the_cli_names() {
        let c = HeatConfig::from_vars(vars(&[
            ("OS_AUTH_URL", "http://k:5000/v3"),
            ("OS_USERNAME", "admin"),
            ("OS_PASSWORD", "hunter2"),
            ("OS_PROJECT_NAME", "admin"),
            ("OS_USER_DOMAIN_NAME", "Default"),
            ("OS_PROJECT_DOMAIN_ID", "default"),
            ("OS_REGION_NAME", "RegionOne"),
        ]))
        .unwrap();
        let Auth::Password { user, project, .. } = &c.auth else {
            panic!("not password: {:?}", c.auth)
        };
        assert_eq!(
            user,
            &Named::Name {
                name: "admin".into(),
                domain: Domain::Name("Default".into())
            }
        );
        assert_eq!(
            project,
            &Named::Name {
                name: "admin".into(),
                domain: Domain::Id("default".into())
            }
        );
        assert_eq!(c.region.as_deref(), Some("RegionOne"));
        assert!(!format!("{c:?}").contains("hunter2"));

        let c = HeatConfig::from_vars(vars(&[
            ("OS_AUTH_URL", "http://k:5000/v3"),
            ("OS_APPLICATION_CREDENTIAL_ID", "abc"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "s3cret"),
        ]))
        .unwrap();
        assert!(matches!(c.auth, Auth::ApplicationCredential { ref id, .. } if id == "abc"));
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(matches!(
            HeatConfig::from_vars(vars(&[
                ("OS_AUTH_URL", "http://k/v3"),
                ("OS_USERNAME", "u")
            ])),
            Err(ConfigError::Missing { .. })
        ));
    }

    #[test]
    fn device_resources_parse() {
        assert_eq!("esi".parse::<DeviceResources>(), Ok(DeviceResources::Esi));
        assert_eq!("heat".parse::<DeviceResources>(), Ok(DeviceResources::Heat));
        assert!("plugins".parse::<DeviceResources>().is_err());
    }
}
