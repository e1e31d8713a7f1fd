//! How to reach etcd: endpoints, timeouts, TLS, authentication, key namespace.

use esi_core::secret::Secret;
use esi_core::store::StoreError;
use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use std::time::Duration;

/// TLS material, as PEM text (the caller reads the files).
#[derive(Clone, Default)]
pub struct TlsConfig {
    /// The CA that signed the servers' certificates (the system roots are not used).
    pub ca_pem: Option<String>,
    /// A client certificate and its key, for servers that require client authentication.
    pub client: Option<(String, Secret<String>)>,
    /// The name to check in the server certificate, when it differs from the endpoint host.
    pub domain: Option<String>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field("client", &self.client.as_ref().map(|_| "<cert and key>"))
            .field("domain", &self.domain)
            .finish()
    }
}

/// Settings of an [`crate::EtcdStore`].
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// Client URLs (`http://127.0.0.1:2379`, `https://…` with TLS); requests are balanced
    /// over them and go on when one member is down.
    pub endpoints: Vec<String>,
    /// Prefix of every key this store reads and writes (`""`: none).
    pub namespace: String,
    /// Bound of the first connection.
    pub connect_timeout: Duration,
    /// Bound of every request (a watch is not a request: it lives until dropped).
    pub request_timeout: Duration,
    /// TLS, when the endpoints are `https`.
    pub tls: Option<TlsConfig>,
    /// User and password for etcd's authentication.
    pub user: Option<(String, Secret<String>)>,
}

impl EtcdConfig {
    /// Endpoints with the default timeouts (connect 5 s, requests 5 s), no TLS, no auth.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> Self {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            namespace: String::new(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            tls: None,
            user: None,
        }
    }

    /// Endpoints from a comma-separated list (`ESI_ETCD_ENDPOINTS`, `--etcd`).
    pub fn from_list(list: &str) -> Self {
        Self::new(
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        )
    }

    /// Sets the key namespace.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets user and password.
    pub fn with_user(mut self, user: impl Into<String>, password: Secret<String>) -> Self {
        self.user = Some((user.into(), password));
        self
    }

    /// Sets the TLS material.
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub(crate) fn connect_options(&self) -> Result<ConnectOptions, StoreError> {
        let mut o = ConnectOptions::new()
            .with_connect_timeout(self.connect_timeout)
            // HTTP/2 pings find a dead member quickly, so requests and watches move on.
            .with_keep_alive(Duration::from_secs(2), self.request_timeout)
            .with_keep_alive_while_idle(true);
        if let Some((user, password)) = &self.user {
            o = o.with_user(user.clone(), password.expose().clone());
        }
        if let Some(tls) = &self.tls {
            let mut t = TlsOptions::new();
            if let Some(ca) = &tls.ca_pem {
                t = t.ca_certificate(Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &tls.client {
                t = t.identity(Identity::from_pem(cert, key.expose()));
            }
            if let Some(domain) = &tls.domain {
                t = t.domain_name(domain.clone());
            }
            o = o.with_tls(t);
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug() {
        let cfg = EtcdConfig::from_list("http://a:1, http://b:2,")
            .with_user("root", Secret::new("pw-7781".to_string()))
            .with_tls(TlsConfig {
                ca_pem: Some("-----BEGIN CERTIFICATE-----".into()),
                client: Some(("cert".into(), Secret::new("key-9912".to_string()))),
                domain: None,
            });
        assert_eq!(cfg.endpoints, vec!["http://a:1", "http://b:2"]);
        let text = format!("{cfg:?}");
        assert!(
            !text.contains("pw-7781") && !text.contains("key-9912"),
            "{text}"
        );
        assert!(text.contains("root"));
    }
}
