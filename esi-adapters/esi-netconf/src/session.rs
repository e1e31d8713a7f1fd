//! One NETCONF session over SSH (russh): connect with a timeout, check the host key,
//! authenticate, open the `netconf` subsystem, exchange hellos, then RPCs with message-id
//! matching and a timeout each.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use esi_core::secret::Secret;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{client, ChannelMsg};

use crate::error::NetconfError;
use crate::framing::{encode, Decoder, Framing};
use crate::xml::{self, Incoming, Reply};

/// Base 1.0 capability.
pub const BASE_10: &str = "urn:ietf:params:netconf:base:1.0";
/// Base 1.1 capability.
pub const BASE_11: &str = "urn:ietf:params:netconf:base:1.1";
/// The Junos capability that selects the Junos payload profile.
pub const JUNOS_CAPABILITY: &str = "http://xml.juniper.net/netconf/junos/1.0";

/// How the server's SSH host key is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// An OpenSSH `known_hosts` file (`[host]:port` entries for ports other than 22).
    KnownHosts(PathBuf),
    /// Accepted SHA-256 fingerprints (`SHA256:…`, as `ssh-keygen -lf` prints them).
    Fingerprints(Vec<String>),
    /// Accept any key (labs only; logged as a warning on every connect).
    Insecure,
}

/// How the client authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// Password.
    Password(Secret<String>),
    /// A private key file (OpenSSH format), with its passphrase if encrypted.
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// Passphrase.
        passphrase: Option<Secret<String>>,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Password(_) => f.write_str("Password(******)"),
            Auth::KeyFile { path, .. } => f.debug_struct("KeyFile").field("path", path).finish(),
        }
    }
}

/// Where a session goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// Host.
    pub host: String,
    /// Port (830).
    pub port: u16,
    /// User.
    pub username: String,
}

impl Target {
    /// `host:port`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Session settings.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Host key check.
    pub host_keys: HostKeyPolicy,
    /// Budget of TCP connect + SSH handshake + auth + hello.
    pub connect_timeout: Duration,
    /// Budget of each RPC.
    pub rpc_timeout: Duration,
    /// Offer base 1.1 (chunked framing) in the client hello.
    pub base11: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            host_keys: HostKeyPolicy::Insecure,
            connect_timeout: Duration::from_secs(15),
            rpc_timeout: Duration::from_secs(60),
            base11: true,
        }
    }
}

struct ClientHandler {
    host: String,
    port: u16,
    policy: HostKeyPolicy,
    rejected: Arc<Mutex<Option<String>>>,
}

impl ClientHandler {
    fn verdict(&self, key: &russh::keys::PublicKey) -> Result<(), String> {
        let fp = key.fingerprint(HashAlg::Sha256).to_string();
        match &self.policy {
            HostKeyPolicy::Insecure => {
                tracing::warn!(device = %format!("{}:{}", self.host, self.port), fingerprint = %fp, "host key NOT checked (insecure mode)");
                Ok(())
            }
            HostKeyPolicy::Fingerprints(list) => {
                if list.iter().any(|f| f.trim() == fp) {
                    Ok(())
                } else {
                    Err(format!(
                        "fingerprint {fp} is not one of the pinned fingerprints"
                    ))
                }
            }
            HostKeyPolicy::KnownHosts(path) => {
                match russh::keys::check_known_hosts_path(&self.host, self.port, key, path) {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(format!(
                        "host key {fp} not in {} (unknown host)",
                        path.display()
                    )),
                    Err(russh::keys::Error::KeyChanged { line }) => Err(format!(
                        "host key {fp} does not match {} line {line} (possible man-in-the-middle)",
                        path.display()
                    )),
                    Err(e) => Err(format!("cannot read {}: {e}", path.display())),
                }
            }
        }
    }
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let verdict = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self.verdict(key),
            PublicKeyOrCertificate::Certificate(_) => {
                Err("host certificates are not supported".to_string())
            }
        };
        match verdict {
            Ok(()) => Ok(true),
            Err(reason) => {
                if let Ok(mut r) = self.rejected.lock() {
                    *r = Some(reason);
                }
                Ok(false)
            }
        }
    }
}

/// An open NETCONF session.
pub struct Session {
    handle: client::Handle<ClientHandler>,
    channel: russh::Channel<client::Msg>,
    decoder: Decoder,
    framing: Framing,
    next_id: u64,
    capabilities: Vec<String>,
    session_id: Option<u64>,
    device: String,
    rpc_timeout: Duration,
    /// When the session was last used.
    pub last_used: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("device", &self.device)
            .field("session_id", &self.session_id)
            .field("framing", &self.framing)
            .finish_non_exhaustive()
    }
}

/// The name of the RPC in a body (`<lock>…` → `lock`).
pub fn rpc_name(body: &str) -> String {
    let b = body.trim_start();
    let b = b.strip_prefix('<').unwrap_or(b);
    b.split(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .next()
        .unwrap_or("")
        .to_string()
}

impl Session {
    /// Opens a session: TCP, SSH (host key checked), authentication, subsystem `netconf`,
    /// hellos. The whole sequence runs within `options.connect_timeout`.
    pub async fn connect(
        target: &Target,
        auth: &Auth,
        options: &SessionOptions,
    ) -> Result<Session, NetconfError> {
        let device = target.label();
        match tokio::time::timeout(options.connect_timeout, Self::open(target, auth, options)).await
        {
            Ok(r) => r,
            Err(_) => Err(NetconfError::Timeout {
                device,
                operation: "connect".into(),
                after: options.connect_timeout,
            }),
        }
    }

    async fn open(
        target: &Target,
        auth: &Auth,
        options: &SessionOptions,
    ) -> Result<Session, NetconfError> {
        let device = target.label();
        let ssh = |message: String| NetconfError::Ssh {
            device: device.clone(),
            message,
        };
        let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| NetconfError::Connect {
                device: device.clone(),
                message: e.to_string(),
            })?;
        let _ = tcp.set_nodelay(true);
        let rejected = Arc::new(Mutex::new(None));
        let handler = ClientHandler {
            host: target.host.clone(),
            port: target.port,
            policy: options.host_keys.clone(),
            rejected: Arc::clone(&rejected),
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: None,
            nodelay: true,
            ..Default::default()
        });
        let mut handle = match client::connect_stream(config, tcp, handler).await {
            Ok(h) => h,
            Err(e) => {
                let reason = rejected.lock().ok().and_then(|mut r| r.take());
                return Err(match reason {
                    Some(reason) => NetconfError::HostKey {
                        device: device.clone(),
                        reason,
                    },
                    None => ssh(format!("handshake: {e}")),
                });
            }
        };
        let ok = match auth {
            Auth::Password(p) => handle
                .authenticate_password(&target.username, p.expose())
                .await
                .map_err(|e| ssh(format!("auth: {e}")))?
                .success(),
            Auth::KeyFile { path, passphrase } => {
                let key = russh::keys::load_secret_key(
                    path,
                    passphrase.as_ref().map(|p| p.expose().as_str()),
                )
                .map_err(|e| ssh(format!("cannot load key {}: {e}", path.display())))?;
                let hash = handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(|e| ssh(format!("auth: {e}")))?
                    .flatten();
                handle
                    .authenticate_publickey(
                        &target.username,
                        PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                    )
                    .await
                    .map_err(|e| ssh(format!("auth: {e}")))?
                    .success()
            }
        };
        if !ok {
            return Err(NetconfError::Auth {
                device,
                username: target.username.clone(),
            });
        }
        let channel = handle
            .channel_open_session()
            .await
            .map_err(|e| ssh(format!("channel: {e}")))?;
        channel
            .request_subsystem(true, "netconf")
            .await
            .map_err(|e| ssh(format!("subsystem netconf: {e}")))?;
        let mut s = Session {
            handle,
            channel,
            decoder: Decoder::default(),
            framing: Framing::EndOfMessage,
            next_id: 0,
            capabilities: Vec::new(),
            session_id: None,
            device,
            rpc_timeout: options.rpc_timeout,
            last_used: Instant::now(),
        };
        let hello = s.read_message().await?;
        let hello = xml::read_hello(&hello).map_err(|message| NetconfError::Protocol {
            device: s.device.clone(),
            message,
        })?;
        let v11 = options.base11 && hello.capabilities.iter().any(|c| c == BASE_11);
        let mut ours = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities><capability>{BASE_10}</capability>"
        );
        if options.base11 {
            ours.push_str(&format!("<capability>{BASE_11}</capability>"));
        }
        ours.push_str("<capability>urn:ietf:params:netconf:capability:candidate:1.0</capability><capability>urn:ietf:params:netconf:capability:confirmed-commit:1.0</capability></capabilities></hello>");
        s.write(&encode(Framing::EndOfMessage, &ours)).await?;
        // yuma123 netconfd drops an <rpc> that arrives in the same read as the client's hello
        tokio::time::sleep(Duration::from_millis(50)).await;
        if v11 {
            s.framing = Framing::Chunked;
            s.decoder.framing = Framing::Chunked;
        }
        s.capabilities = hello.capabilities;
        s.session_id = hello.session_id;
        tracing::debug!(device = %s.device, session_id = ?s.session_id, framing = ?s.framing, "NETCONF session open");
        Ok(s)
    }

    /// The server's capabilities.
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    /// Whether the server announced a capability (prefix match, ignoring `?` parameters).
    pub fn has_capability(&self, uri: &str) -> bool {
        self.capabilities.iter().any(|c| c.starts_with(uri))
    }

    /// The framing in use after the hellos.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The server's session id.
    pub fn session_id(&self) -> Option<u64> {
        self.session_id
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), NetconfError> {
        self.channel
            .data_bytes(bytes.to_vec())
            .await
            .map_err(|_| NetconfError::Closed {
                device: self.device.clone(),
            })
    }

    async fn read_message(&mut self) -> Result<String, NetconfError> {
        loop {
            if let Some(m) = self
                .decoder
                .next_message()
                .map_err(|e| NetconfError::framing(&self.device, e))?
            {
                return Ok(m);
            }
            match self.channel.wait().await {
                Some(ChannelMsg::Data { data }) => self.decoder.push(&data),
                Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => {
                    return Err(NetconfError::Closed {
                        device: self.device.clone(),
                    })
                }
                Some(_) => {}
            }
        }
    }

    /// Sends `<rpc>` with `body` and waits (within the RPC timeout) for the reply with the
    /// same message-id. An `<rpc-error>` of severity `error` becomes [`NetconfError::Rpc`]
    /// (`lock-denied` → [`NetconfError::LockDenied`], unknown operations →
    /// [`NetconfError::Unsupported`]).
    pub async fn rpc(&mut self, body: &str) -> Result<Reply, NetconfError> {
        let timeout = self.rpc_timeout;
        self.rpc_with_timeout(body, timeout).await
    }

    /// [`Session::rpc`] with its own timeout.
    pub async fn rpc_with_timeout(
        &mut self,
        body: &str,
        timeout: Duration,
    ) -> Result<Reply, NetconfError> {
        let name = rpc_name(body);
        match tokio::time::timeout(timeout, self.exchange(body, &name)).await {
            Ok(r) => r,
            Err(_) => Err(NetconfError::Timeout {
                device: self.device.clone(),
                operation: name,
                after: timeout,
            }),
        }
    }

    async fn exchange(&mut self, body: &str, name: &str) -> Result<Reply, NetconfError> {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let msg = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rpc message-id=\"{id}\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">{body}</rpc>"
        );
        let framed = encode(self.framing, &msg);
        self.write(&framed).await?;
        self.last_used = Instant::now();
        loop {
            let raw = self.read_message().await?;
            let incoming = xml::read_incoming(&raw).map_err(|message| NetconfError::Protocol {
                device: self.device.clone(),
                message,
            })?;
            match incoming {
                Incoming::Reply(r) if r.message_id.as_deref() == Some(id.as_str()) => {
                    self.last_used = Instant::now();
                    return self.check(r, name);
                }
                Incoming::Reply(r) => {
                    tracing::debug!(device = %self.device, expected = %id, got = ?r.message_id, "ignoring reply with another message-id");
                }
                Incoming::Other(tag) => {
                    tracing::debug!(device = %self.device, element = %tag, "ignoring unsolicited message");
                }
            }
        }
    }

    fn check(&self, reply: Reply, name: &str) -> Result<Reply, NetconfError> {
        let Some(e) = reply.errors.first() else {
            for w in &reply.warnings {
                tracing::debug!(device = %self.device, rpc = name, warning = %w, "rpc warning");
            }
            return Ok(reply);
        };
        let unknown_op = matches!(
            e.tag.as_str(),
            "operation-not-supported" | "unknown-element" | "unknown-namespace"
        ) && e.error_type != "application"
            && e.bad_element
                .as_deref()
                .is_none_or(|b| b.rsplit(':').next() == Some(name));
        if unknown_op || (e.tag == "operation-not-supported") {
            return Err(NetconfError::Unsupported {
                device: self.device.clone(),
                rpc: name.to_string(),
            });
        }
        // lock-denied on <lock>; in-use when another session's lock blocks discard or edit
        if e.tag == "lock-denied" || e.tag == "in-use" {
            return Err(NetconfError::LockDenied {
                device: self.device.clone(),
                message: e.message.clone(),
            });
        }
        Err(NetconfError::Rpc {
            device: self.device.clone(),
            rpc: name.to_string(),
            error: Box::new(e.clone()),
        })
    }

    /// Sends `<close-session/>` (waiting at most 2 s) and closes the SSH connection.
    pub async fn close(mut self) {
        let _ = self
            .rpc_with_timeout("<close-session/>", Duration::from_secs(2))
            .await;
        let _ = self.channel.close().await;
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }

    /// Drops the connection without `<close-session/>` (after a transport error; the server
    /// then releases the session's locks).
    pub async fn abort(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}
