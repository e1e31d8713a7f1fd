//! One SNMP agent: a UDP socket (one `snmp2::AsyncSession`) reused for every request, with
//! a timeout and retries per request (the crate has none), v2c or v3 USM.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use esi_core::secret::Secret;
use snmp2::{v3, AsyncSession};
use tokio::sync::Mutex;

use crate::oid::Oid;

/// An owned SNMP value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnmpValue {
    /// INTEGER / Integer32.
    Integer(i64),
    /// OCTET STRING.
    OctetString(Vec<u8>),
    /// OBJECT IDENTIFIER.
    ObjectIdentifier(Oid),
    /// IpAddress.
    IpAddress([u8; 4]),
    /// Counter32.
    Counter32(u32),
    /// Gauge32 / Unsigned32.
    Unsigned32(u32),
    /// TimeTicks (hundredths of a second).
    Timeticks(u32),
    /// Counter64.
    Counter64(u64),
    /// NULL.
    Null,
    /// `noSuchObject` exception.
    NoSuchObject,
    /// `noSuchInstance` exception.
    NoSuchInstance,
    /// `endOfMibView` exception (a walk past the agent's last object).
    EndOfMibView,
    /// Anything else (Opaque, constructed …), kept as a description.
    Other(String),
}

impl SnmpValue {
    fn from_snmp2(v: &snmp2::Value<'_>) -> SnmpValue {
        use snmp2::Value as V;
        match v {
            V::Integer(i) => SnmpValue::Integer(*i),
            V::OctetString(s) => SnmpValue::OctetString(s.to_vec()),
            V::ObjectIdentifier(o) => match Oid::from_snmp2(o) {
                Some(o) => SnmpValue::ObjectIdentifier(o),
                None => SnmpValue::Other("OBJECT IDENTIFIER (arc too large)".into()),
            },
            V::IpAddress(a) => SnmpValue::IpAddress(*a),
            V::Counter32(c) => SnmpValue::Counter32(*c),
            V::Unsigned32(c) => SnmpValue::Unsigned32(*c),
            V::Timeticks(t) => SnmpValue::Timeticks(*t),
            V::Counter64(c) => SnmpValue::Counter64(*c),
            V::Null => SnmpValue::Null,
            V::NoSuchObject => SnmpValue::NoSuchObject,
            V::NoSuchInstance => SnmpValue::NoSuchInstance,
            V::EndOfMibView => SnmpValue::EndOfMibView,
            other => SnmpValue::Other(format!("{other:?}")),
        }
    }

    /// Whether this is one of the exceptions (`noSuchObject`, `noSuchInstance`, `endOfMibView`).
    pub fn is_exception(&self) -> bool {
        matches!(
            self,
            SnmpValue::NoSuchObject | SnmpValue::NoSuchInstance | SnmpValue::EndOfMibView
        )
    }

    /// The value as an integer (INTEGER, counters, gauges, time ticks).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            SnmpValue::Integer(i) => Some(*i),
            SnmpValue::Counter32(c) | SnmpValue::Unsigned32(c) | SnmpValue::Timeticks(c) => {
                Some(i64::from(*c))
            }
            SnmpValue::Counter64(c) => i64::try_from(*c).ok(),
            _ => None,
        }
    }

    /// The value as a 64-bit counter: Counter64 as is, 32-bit counters and gauges widened.
    pub fn as_counter64(&self) -> Option<u64> {
        match self {
            SnmpValue::Counter64(c) => Some(*c),
            SnmpValue::Counter32(c) | SnmpValue::Unsigned32(c) | SnmpValue::Timeticks(c) => {
                Some(u64::from(*c))
            }
            SnmpValue::Integer(i) => u64::try_from(*i).ok(),
            _ => None,
        }
    }

    /// The value as text (OCTET STRING, lossy UTF-8).
    pub fn as_text(&self) -> Option<String> {
        match self {
            SnmpValue::OctetString(s) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }
}

/// A varbind: OID and value.
pub type Varbind = (Oid, SnmpValue);

/// v3 authentication protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthProtocol {
    /// HMAC-MD5-96.
    Md5,
    /// HMAC-SHA-96.
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

/// v3 privacy protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivProtocol {
    /// DES-CBC.
    Des,
    /// AES-128-CFB.
    Aes128,
    /// AES-256-CFB.
    Aes256,
}

/// SNMPv3 USM credentials. Passwords are [`Secret`]s: never printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Credentials {
    /// USM user name.
    pub user: String,
    /// Authentication protocol.
    pub auth_protocol: AuthProtocol,
    /// Authentication password.
    pub auth_password: Secret<String>,
    /// Privacy protocol and password (`None`: authNoPriv).
    pub privacy: Option<(PrivProtocol, Secret<String>)>,
    /// Context name (snmpsim: the data file name, e.g. `public`).
    pub context: String,
}

impl V3Credentials {
    /// authPriv with SHA-1 and AES-128 (what the CI agents are configured with).
    pub fn sha_aes(
        user: impl Into<String>,
        auth_password: impl Into<String>,
        priv_password: impl Into<String>,
    ) -> Self {
        V3Credentials {
            user: user.into(),
            auth_protocol: AuthProtocol::Sha1,
            auth_password: Secret::new(auth_password.into()),
            privacy: Some((PrivProtocol::Aes128, Secret::new(priv_password.into()))),
            context: String::new(),
        }
    }

    /// The same with a context name.
    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = context.into();
        self
    }

    fn security(&self) -> v3::Security {
        let auth_protocol = match self.auth_protocol {
            AuthProtocol::Md5 => v3::AuthProtocol::Md5,
            AuthProtocol::Sha1 => v3::AuthProtocol::Sha1,
            AuthProtocol::Sha256 => v3::AuthProtocol::Sha256,
            AuthProtocol::Sha512 => v3::AuthProtocol::Sha512,
        };
        let auth = match &self.privacy {
            None => v3::Auth::AuthNoPriv,
            Some((p, pw)) => v3::Auth::AuthPriv {
                cipher: match p {
                    PrivProtocol::Des => v3::Cipher::Des,
                    PrivProtocol::Aes128 => v3::Cipher::Aes128,
                    PrivProtocol::Aes256 => v3::Cipher::Aes256,
                },
                privacy_password: pw.expose().as_bytes().to_vec(),
            },
        };
        let mut s = v3::Security::new(self.user.as_bytes(), self.auth_password.expose().as_bytes())
            .with_auth_protocol(auth_protocol)
            .with_auth(auth);
        if !self.context.is_empty() {
            s = s.with_context_name(&self.context);
        }
        s
    }
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnmpAuth {
    /// SNMPv2c with a community.
    V2c(Secret<String>),
    /// SNMPv3 USM.
    V3(V3Credentials),
}

impl SnmpAuth {
    /// v2c with `community`.
    pub fn community(community: impl Into<String>) -> Self {
        SnmpAuth::V2c(Secret::new(community.into()))
    }

    /// Who authenticates, for errors: `community` or the v3 user.
    pub fn principal(&self) -> String {
        match self {
            SnmpAuth::V2c(_) => "community".into(),
            SnmpAuth::V3(c) => c.user.clone(),
        }
    }
}

/// Per-request behaviour (defaults: the recorded agent configuration, with a shorter timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnmpConfig {
    /// How long to wait for one answer.
    pub timeout: Duration,
    /// Resends after a timeout (total attempts = retries + 1).
    pub retries: u32,
    /// GETBULK non-repeaters of a walk (recorded: 0).
    pub non_repeaters: u32,
    /// GETBULK max-repetitions of a walk (recorded: 10).
    pub max_repetitions: u32,
}

impl Default for SnmpConfig {
    fn default() -> Self {
        SnmpConfig {
            timeout: Duration::from_secs(10),
            retries: 1,
            non_repeaters: 0,
            max_repetitions: 10,
        }
    }
}

/// A failed SNMP request. Names the agent (`host:port`), never a community or password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnmpError {
    /// The agent address cannot be used (resolution or socket error).
    #[error("snmp agent {agent}: cannot open a session: {reason}")]
    Socket {
        /// `host:port`.
        agent: String,
        /// What went wrong.
        reason: String,
    },
    /// No answer within the timeout, after every retry.
    #[error(
        "snmp agent {agent}: {request}: no answer after {attempts} attempts of {timeout_ms} ms"
    )]
    Timeout {
        /// `host:port`.
        agent: String,
        /// `GET 1.3.6…`.
        request: String,
        /// Attempts made.
        attempts: u32,
        /// Timeout of one attempt.
        timeout_ms: u128,
    },
    /// v3 authentication or privacy failed (wrong user, password, engine).
    #[error("snmp agent {agent}: authentication failed for {principal}: {reason}")]
    Authentication {
        /// `host:port`.
        agent: String,
        /// The v3 user (or `community`).
        principal: String,
        /// The USM error.
        reason: String,
    },
    /// The agent answered with a non-zero error-status.
    #[error("snmp agent {agent}: {request}: error-status {status} at index {index}")]
    ErrorStatus {
        /// `host:port`.
        agent: String,
        /// The request.
        request: String,
        /// error-status (2 noSuchName, 5 genErr, …).
        status: u32,
        /// error-index.
        index: u32,
    },
    /// A malformed or unexpected answer, or a bad OID.
    #[error("snmp agent {agent}: {request}: {reason}")]
    Protocol {
        /// `host:port`.
        agent: String,
        /// The request.
        request: String,
        /// What is wrong.
        reason: String,
    },
}

impl SnmpError {
    /// Timeouts and socket errors (the agent does not answer).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, SnmpError::Timeout { .. } | SnmpError::Socket { .. })
    }
}

#[derive(Clone, Copy)]
enum Op<'a> {
    Get(&'a [Oid]),
    GetNext(&'a Oid),
    GetBulk(&'a [Oid], u32, u32),
}

impl fmt::Display for Op<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |oids: &[Oid]| {
            oids.iter()
                .map(Oid::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            Op::Get(o) => write!(f, "GET {}", list(o)),
            Op::GetNext(o) => write!(f, "GETNEXT {o}"),
            Op::GetBulk(o, nr, mr) => write!(f, "GETBULK({nr},{mr}) {}", list(o)),
        }
    }
}

/// Stale answers (to requests that timed out) skipped per request before giving up.
const MAX_STALE: u32 = 16;

/// A client for one agent: one UDP socket reused for all requests (serialised), v3 engine
/// discovery on first use and again after the agent's engine changes.
pub struct SnmpClient {
    agent: String,
    addr: SocketAddr,
    auth: SnmpAuth,
    config: SnmpConfig,
    session: Mutex<Option<AsyncSession>>,
}

impl fmt::Debug for SnmpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnmpClient")
            .field("agent", &self.agent)
            .field("auth", &self.auth)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

enum Attempt {
    Done(Vec<Varbind>),
    Retry(snmp2::Error),
}

impl SnmpClient {
    /// A client for the agent at `addr` (no I/O until the first request).
    pub fn new(addr: SocketAddr, auth: SnmpAuth, config: SnmpConfig) -> Self {
        SnmpClient {
            agent: addr.to_string(),
            addr,
            auth,
            config,
            session: Mutex::new(None),
        }
    }

    /// `host:port` of the agent.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// The request settings.
    pub fn config(&self) -> &SnmpConfig {
        &self.config
    }

    /// The credentials' principal (`community` or the v3 user).
    pub fn principal(&self) -> String {
        self.auth.principal()
    }

    /// GET of one or more OIDs (one PDU).
    pub async fn get(&self, oids: &[Oid]) -> Result<Vec<Varbind>, SnmpError> {
        self.request(Op::Get(oids)).await
    }

    /// GETNEXT of one OID.
    pub async fn get_next(&self, oid: &Oid) -> Result<Varbind, SnmpError> {
        let mut v = self.request(Op::GetNext(oid)).await?;
        if v.is_empty() {
            return Err(self.protocol(Op::GetNext(oid), "empty answer"));
        }
        Ok(v.swap_remove(0))
    }

    /// GETBULK with explicit non-repeaters and max-repetitions.
    pub async fn get_bulk(
        &self,
        oids: &[Oid],
        non_repeaters: u32,
        max_repetitions: u32,
    ) -> Result<Vec<Varbind>, SnmpError> {
        self.request(Op::GetBulk(oids, non_repeaters, max_repetitions))
            .await
    }

    /// Every object under `root`, by GETBULK with the configured non-repeaters and
    /// max-repetitions; stops at the end of the subtree or on `endOfMibView`.
    pub async fn walk(&self, root: &Oid) -> Result<Vec<Varbind>, SnmpError> {
        let mut out = Vec::new();
        let mut cursor = root.clone();
        loop {
            let batch = self
                .get_bulk(
                    std::slice::from_ref(&cursor),
                    self.config.non_repeaters,
                    self.config.max_repetitions.max(1),
                )
                .await?;
            if batch.is_empty() {
                return Ok(out);
            }
            for (oid, value) in batch {
                if value == SnmpValue::EndOfMibView || !oid.starts_with(root) || oid == *root {
                    return Ok(out);
                }
                if oid <= cursor {
                    return Err(self.protocol(
                        Op::GetBulk(std::slice::from_ref(&cursor), 0, 0),
                        &format!("OID not increasing ({oid} after {cursor})"),
                    ));
                }
                cursor = oid.clone();
                out.push((oid, value));
            }
        }
    }

    fn protocol(&self, op: Op<'_>, reason: &str) -> SnmpError {
        SnmpError::Protocol {
            agent: self.agent.clone(),
            request: op.to_string(),
            reason: reason.into(),
        }
    }

    fn auth_error(&self, e: &snmp2::Error) -> SnmpError {
        SnmpError::Authentication {
            agent: self.agent.clone(),
            principal: self.auth.principal(),
            reason: e.to_string(),
        }
    }

    fn timeout_error(&self, op: Op<'_>, attempts: u32) -> SnmpError {
        SnmpError::Timeout {
            agent: self.agent.clone(),
            request: op.to_string(),
            attempts,
            timeout_ms: self.config.timeout.as_millis(),
        }
    }

    async fn open(&self) -> Result<AsyncSession, SnmpError> {
        let socket_err = |e: std::io::Error| SnmpError::Socket {
            agent: self.agent.clone(),
            reason: e.to_string(),
        };
        let start_id = i32::try_from(std::process::id() % 1_000_000).unwrap_or(1);
        match &self.auth {
            SnmpAuth::V2c(community) => {
                AsyncSession::new_v2c(self.addr, community.expose().as_bytes(), start_id)
                    .await
                    .map_err(socket_err)
            }
            SnmpAuth::V3(creds) => {
                let mut s = AsyncSession::new_v3(self.addr, start_id, creds.security())
                    .await
                    .map_err(socket_err)?;
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    match tokio::time::timeout(self.config.timeout, s.init()).await {
                        Ok(Ok(())) => return Ok(s),
                        Ok(Err(snmp2::Error::RequestIdMismatch)) if attempts <= MAX_STALE => {}
                        Ok(Err(e)) => return Err(self.auth_error(&e)),
                        Err(_) if attempts <= self.config.retries => {}
                        Err(_) => {
                            return Err(SnmpError::Timeout {
                                agent: self.agent.clone(),
                                request: "v3 engine discovery".into(),
                                attempts,
                                timeout_ms: self.config.timeout.as_millis(),
                            })
                        }
                    }
                }
            }
        }
    }

    async fn attempt(
        &self,
        session: &mut AsyncSession,
        op: Op<'_>,
        oids: &[snmp2::Oid<'static>],
    ) -> Result<Attempt, SnmpError> {
        let refs: Vec<&snmp2::Oid<'static>> = oids.iter().collect();
        let pdu = match op {
            Op::Get(_) => session.get_many(&refs).await,
            Op::GetNext(_) => match refs.first() {
                Some(o) => session.getnext(o).await,
                None => return Err(self.protocol(op, "no OID")),
            },
            Op::GetBulk(_, nr, mr) => session.getbulk(&refs, nr, mr).await,
        };
        let pdu = match pdu {
            Ok(p) => p,
            Err(e) => return Ok(Attempt::Retry(e)),
        };
        if pdu.error_status != 0 {
            return Err(SnmpError::ErrorStatus {
                agent: self.agent.clone(),
                request: op.to_string(),
                status: pdu.error_status,
                index: pdu.error_index,
            });
        }
        let mut out = Vec::new();
        for (oid, value) in pdu.varbinds {
            let oid =
                Oid::from_snmp2(&oid).ok_or_else(|| self.protocol(op, "OID arc too large"))?;
            out.push((oid, SnmpValue::from_snmp2(&value)));
        }
        Ok(Attempt::Done(out))
    }

    async fn request(&self, op: Op<'_>) -> Result<Vec<Varbind>, SnmpError> {
        let list: Vec<Oid> = match op {
            Op::Get(o) | Op::GetBulk(o, _, _) => o.to_vec(),
            Op::GetNext(o) => vec![o.clone()],
        };
        let oids = list
            .iter()
            .map(Oid::to_snmp2)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.protocol(op, &e.to_string()))?;
        let mut guard = self.session.lock().await;
        let (mut attempts, mut stale, mut reinit) = (0u32, 0u32, false);
        loop {
            let session = match guard.as_mut() {
                Some(s) => s,
                None => guard.insert(self.open().await?),
            };
            attempts += 1;
            match tokio::time::timeout(self.config.timeout, self.attempt(session, op, &oids)).await
            {
                Ok(Ok(Attempt::Done(v))) => return Ok(v),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(Attempt::Retry(snmp2::Error::RequestIdMismatch))) if stale < MAX_STALE => {
                    // the answer to a request that timed out: resend
                    stale += 1;
                    attempts -= 1;
                }
                Ok(Ok(Attempt::Retry(
                    e @ (snmp2::Error::AuthUpdated | snmp2::Error::AuthFailure(_)),
                ))) if !reinit => {
                    // the engine changed (reboot, time window): rediscover once
                    tracing::debug!(agent = %self.agent, error = %e, "snmp v3 session re-initialised");
                    reinit = true;
                    attempts -= 1;
                    *guard = None;
                }
                Ok(Ok(Attempt::Retry(e @ snmp2::Error::AuthFailure(_)))) => {
                    return Err(self.auth_error(&e))
                }
                Ok(Ok(Attempt::Retry(e @ (snmp2::Error::Send | snmp2::Error::Receive)))) => {
                    if attempts > self.config.retries {
                        return Err(SnmpError::Socket {
                            agent: self.agent.clone(),
                            reason: e.to_string(),
                        });
                    }
                    *guard = None;
                }
                Ok(Ok(Attempt::Retry(e))) => return Err(self.protocol(op, &e.to_string())),
                Err(_elapsed) => {
                    tracing::trace!(agent = %self.agent, request = %op, attempts, "snmp timeout");
                    if attempts > self.config.retries {
                        return Err(self.timeout_error(op, attempts));
                    }
                }
            }
        }
    }
}
