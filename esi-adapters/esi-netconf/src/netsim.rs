//! `esi netsim`: simulated routers ([`SimRouter`]) served as Junos-dialect NETCONF servers
//! over SSH (russh's server side), one loopback port per router.
//!
//! The dialect follows the recordings (devices.md §4): the server hello announces base 1.0
//! only (end-of-message framing), `candidate`, `confirmed-commit`, `validate`, `url` and
//! `http://xml.juniper.net/netconf/junos/1.0`. Supported RPCs: `lock`/`unlock` (candidate) and
//! `lock-configuration`/`unlock-configuration`, `discard-changes`, `load-configuration`
//! (`format="text"` with `action="merge"`/`replace`/`override`, `action="set"` with
//! `configuration-set`, `rollback="N"`), `commit` (RFC 6241, `<confirmed/>` with
//! `<confirm-timeout>` in seconds), `commit-configuration` (`<check/>`, `<confirmed/>` with
//! `<confirm-timeout>` in minutes), `cancel-commit`, `get-configuration` (`format="text"` or
//! XML, `rollback="N"`, `compare="rollback"`), `get-vrrp-information`,
//! `get-interface-information`, `get-bgp-neighbor-information`, `close-session`. Errors are
//! `<rpc-error>`s shaped like Junos's (load errors inside `<load-configuration-results>`).
//!
//! The candidate is shared (Junos `configure`), the lock is exclusive per session and is
//! released (with the session's uncommitted changes discarded) when the session ends. A
//! confirmed commit rolls back when its timer expires unless a later commit confirms it.
//! The running configuration lives in the [`SimRouter`], so its operational state (VRRP,
//! interfaces, BGP) and faults (`hold_lock`, `fail_next_commits`, `set_unreachable`) apply.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use esi_core::device::{
    BgpState, ConfigChange, Device, DeviceError, JunosConfig, OperStatus, SimRouter, VrrpState,
};
use esi_core::secret::Secret;
use russh::keys::{HashAlg, PrivateKey, PublicKey};
use russh::server::{Auth, Msg, Server as _, Session};
use russh::{Channel, ChannelId, ChannelMsg};
use tokio::sync::Mutex;

use crate::framing::{encode, Decoder, Framing};
use crate::xml::{self, escape};

/// The Junos capabilities the server hello announces (devices.md §4).
pub const SERVER_CAPABILITIES: [&str; 6] = [
    "urn:ietf:params:netconf:base:1.0",
    "urn:ietf:params:netconf:capability:candidate:1.0",
    "urn:ietf:params:netconf:capability:confirmed-commit:1.0",
    "urn:ietf:params:netconf:capability:validate:1.0",
    "urn:ietf:params:netconf:capability:url:1.0?scheme=http,ftp,file",
    "http://xml.juniper.net/netconf/junos/1.0",
];

/// The top-level statements of a Junos configuration; a load naming any other is a syntax
/// error, as on a real router (which knows its schema; the rest of the hierarchy is not
/// checked here).
pub const TOP_LEVEL: [&str; 30] = [
    "version",
    "groups",
    "apply-groups",
    "system",
    "chassis",
    "services",
    "security",
    "interfaces",
    "snmp",
    "forwarding-options",
    "event-options",
    "routing-options",
    "protocols",
    "policy-options",
    "class-of-service",
    "firewall",
    "routing-instances",
    "vlans",
    "bridge-domains",
    "access",
    "access-profile",
    "applications",
    "multi-chassis",
    "switch-options",
    "poe",
    "virtual-chassis",
    "logical-systems",
    "dynamic-profiles",
    "schedulers",
    "smtp",
];

const JUNOS_NS: &str = "http://xml.juniper.net/junos/16.1R3/junos";

/// Who may log in.
#[derive(Debug, Clone)]
pub struct NetsimOptions {
    /// Login user.
    pub username: String,
    /// Login password.
    pub password: Secret<String>,
    /// Public keys accepted for the user (besides the password).
    pub authorized_keys: Vec<PublicKey>,
    /// Length of a Junos "minute" (confirm-timeout of `commit-configuration`); 60 s unless a
    /// test shortens it.
    pub minute: Duration,
    /// Per-router logins (router name → user, password) replacing `username`/`password`
    /// for that router (e.g. each router of a world with its own credentials).
    pub logins: HashMap<String, (String, Secret<String>)>,
    /// Keep each router's host key (`NAME.key`) and running configuration (`NAME.conf`,
    /// written after every commit) in this directory, and start from them when present.
    pub state_dir: Option<PathBuf>,
}

impl Default for NetsimOptions {
    fn default() -> Self {
        NetsimOptions {
            username: "esi".into(),
            password: Secret::new("esi".into()),
            authorized_keys: Vec::new(),
            minute: Duration::from_secs(60),
            logins: HashMap::new(),
            state_dir: None,
        }
    }
}

struct Pending {
    generation: u64,
    session: u64,
    previous: JunosConfig,
}

struct NcState {
    /// `None`: no uncommitted changes (the candidate equals the running configuration).
    candidate: Option<JunosConfig>,
    lock: Option<u64>,
    /// Committed configurations, oldest first; the last is the running one.
    history: Vec<JunosConfig>,
    pending: Option<Pending>,
    generation: u64,
}

/// One served router: NETCONF state on top of a [`SimRouter`].
pub struct NetsimRouter {
    sim: Arc<SimRouter>,
    host_key: PrivateKey,
    addr: SocketAddr,
    state: Mutex<NcState>,
    stall: AtomicBool,
    sessions: AtomicU64,
    minute: Duration,
    state_file: Option<PathBuf>,
}

impl std::fmt::Debug for NetsimRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetsimRouter")
            .field("name", &self.sim.router_name())
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn reply(attrs: &str, body: &str) -> String {
    format!(
        "<rpc-reply xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\" xmlns:junos=\"{JUNOS_NS}\"{attrs}>{body}</rpc-reply>"
    )
}

fn rpc_error(error_type: &str, tag: &str, message: &str, bad: Option<&str>) -> String {
    let info = bad
        .map(|b| {
            format!(
                "<error-info><bad-element>{}</bad-element></error-info>",
                escape(b)
            )
        })
        .unwrap_or_default();
    format!(
        "<rpc-error><error-type>{error_type}</error-type><error-tag>{tag}</error-tag><error-severity>error</error-severity><error-message>{}</error-message>{info}</rpc-error>",
        escape(message)
    )
}

fn diff(old: &JunosConfig, new: &JunosConfig) -> String {
    let a: Vec<Vec<String>> = old.paths();
    let b: Vec<Vec<String>> = new.paths();
    let sa: BTreeSet<&Vec<String>> = a.iter().collect();
    let sb: BTreeSet<&Vec<String>> = b.iter().collect();
    let mut out = String::from("\n");
    for p in a.iter().filter(|p| !sb.contains(p)) {
        out.push_str(&format!("[edit]\n-  {};\n", p.join(" ")));
    }
    for p in b.iter().filter(|p| !sa.contains(p)) {
        out.push_str(&format!("[edit]\n+  {};\n", p.join(" ")));
    }
    out
}

fn xml_name(token: &str) -> String {
    let ok = token
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        token.to_string()
    } else {
        "name".to_string()
    }
}

/// The configuration as Junos-like XML (keyword → element, a name after it → `<name>`).
fn config_xml(cfg: &JunosConfig) -> String {
    let mut out = String::from("<configuration>");
    for p in cfg.paths() {
        let mut close = Vec::new();
        let mut i = 0;
        while i < p.len() {
            let kw = xml_name(&p[i]);
            if kw == "name" {
                out.push_str(&format!("<name>{}</name>", escape(&p[i])));
                i += 1;
                continue;
            }
            if i + 1 == p.len() {
                out.push_str(&format!("<{kw}/>"));
            } else if i + 2 == p.len() {
                out.push_str(&format!("<{kw}>{}</{kw}>", escape(&p[i + 1])));
                i += 1;
            } else {
                out.push_str(&format!("<{kw}>"));
                close.push(kw);
            }
            i += 1;
        }
        while let Some(kw) = close.pop() {
            out.push_str(&format!("</{kw}>"));
        }
    }
    out.push_str("</configuration>");
    out
}

impl NetsimRouter {
    /// The simulated router behind.
    pub fn sim(&self) -> &Arc<SimRouter> {
        &self.sim
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `SHA256:…` of the host key.
    pub fn fingerprint(&self) -> String {
        self.host_key
            .public_key()
            .fingerprint(HashAlg::Sha256)
            .to_string()
    }

    /// The host's public key (for a known_hosts line).
    pub fn public_key(&self) -> PublicKey {
        self.host_key.public_key().clone()
    }

    /// Fault: accept RPCs but never answer them while `stall`.
    pub fn set_stall(&self, stall: bool) {
        self.stall.store(stall, Ordering::SeqCst);
    }

    /// The session holding the candidate lock, if any.
    pub async fn lock_holder(&self) -> Option<u64> {
        self.state.lock().await.lock
    }

    /// Whether a confirmed commit waits for confirmation.
    pub async fn commit_pending(&self) -> bool {
        self.state.lock().await.pending.is_some()
    }

    /// Number of commits so far (rollbacks by timer included).
    pub async fn commits(&self) -> usize {
        self.state.lock().await.history.len().saturating_sub(1)
    }

    /// The running configuration as text (secrets masked).
    pub fn running_text(&self) -> String {
        self.sim.config_text()
    }

    async fn apply_running(&self, st: &mut NcState, new: JunosConfig) -> Result<(), String> {
        let change = ConfigChange {
            resource: "netsim".into(),
            delete: self.sim.running().paths(),
            merge_text: new.to_text(false),
            additional_commands: Vec::new(),
        };
        self.sim.load_config(&change).await.map_err(|e| match e {
            DeviceError::CommitFailed { message, .. } | DeviceError::LoadFailed { message, .. } => {
                message
            }
            other => other.to_string(),
        })?;
        if let Some(path) = &self.state_file {
            if let Err(e) = write_private(path, new.to_text(false).as_bytes()) {
                tracing::warn!(router = %self.sim.router_name(), path = %path.display(), error = %e, "cannot save the running configuration");
            }
        }
        st.history.push(new);
        if st.history.len() > 50 {
            st.history.remove(0);
        }
        Ok(())
    }

    fn running(st: &NcState) -> JunosConfig {
        st.history.last().cloned().unwrap_or_default()
    }

    fn rollback(st: &NcState, n: usize) -> Option<JunosConfig> {
        st.history
            .len()
            .checked_sub(n + 1)
            .map(|i| st.history[i].clone())
    }

    async fn end_session(&self, session: u64) {
        let mut st = self.state.lock().await;
        if st.lock == Some(session) {
            st.lock = None;
            st.candidate = None;
            tracing::debug!(router = %self.sim.router_name(), session, "session ended: lock released, changes discarded");
        }
    }

    fn start_timer(self: &Arc<Self>, generation: u64, after: Duration) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let mut st = me.state.lock().await;
            if st.pending.as_ref().map(|p| p.generation) != Some(generation) {
                return;
            }
            if let Some(p) = st.pending.take() {
                tracing::info!(router = %me.sim.router_name(), "confirmed commit not confirmed in time: rolling back");
                if let Err(e) = me.apply_running(&mut st, p.previous).await {
                    tracing::warn!(router = %me.sim.router_name(), error = %e, "rollback failed");
                }
            }
        });
    }

    /// Handles one `<rpc>`; returns the reply and whether the session ends.
    async fn handle(self: &Arc<Self>, session: u64, msg: &str) -> (String, bool) {
        let Some(doc) = xml::parse(msg) else {
            return (
                reply(
                    "",
                    &rpc_error(
                        "rpc",
                        "malformed-message",
                        "syntax error: malformed XML",
                        None,
                    ),
                ),
                false,
            );
        };
        let root = doc.root_element();
        let mut attrs = String::new();
        for a in root.attributes() {
            if a.namespace().is_none() && a.name() != "xmlns" {
                attrs.push_str(&format!(" {}=\"{}\"", a.name(), escape(a.value())));
            }
        }
        if root.tag_name().name() != "rpc" {
            return (
                reply(
                    &attrs,
                    &rpc_error(
                        "rpc",
                        "unknown-element",
                        "syntax error, expecting <rpc>",
                        Some(root.tag_name().name()),
                    ),
                ),
                false,
            );
        }
        let Some(op) = xml::children(root).next() else {
            return (
                reply(
                    &attrs,
                    &rpc_error("rpc", "missing-element", "empty rpc", None),
                ),
                false,
            );
        };
        let name = op.tag_name().name().to_string();
        let (body, close) = self.operation(session, &name, op).await;
        (reply(&attrs, &body), close)
    }

    async fn operation(
        self: &Arc<Self>,
        session: u64,
        name: &str,
        op: roxmltree::Node<'_, '_>,
    ) -> (String, bool) {
        const OK: &str = "<ok/>";
        let router = self.sim.router_name().to_string();
        let locked_elsewhere = |st: &NcState| st.lock.is_some_and(|s| s != session);
        let locked_msg = |st: &NcState| {
            rpc_error(
                "protocol",
                "lock-denied",
                &format!(
                    "configuration database locked by: esi terminal p{} (pid {}) on {router}",
                    st.lock.unwrap_or(0),
                    st.lock.unwrap_or(0) + 1000
                ),
                None,
            )
        };
        let has = |n: &str| xml::find(op, n).is_some();
        match name {
            "close-session" => (OK.into(), true),
            "lock" | "lock-configuration" => {
                if name == "lock" && !has("candidate") {
                    return (
                        rpc_error(
                            "protocol",
                            "operation-not-supported",
                            "only the candidate can be locked",
                            Some("target"),
                        ),
                        false,
                    );
                }
                let mut st = self.state.lock().await;
                if locked_elsewhere(&st) {
                    return (locked_msg(&st), false);
                }
                st.lock = Some(session);
                (OK.into(), false)
            }
            "unlock" | "unlock-configuration" => {
                let mut st = self.state.lock().await;
                if st.lock == Some(session) {
                    st.lock = None;
                    (OK.into(), false)
                } else {
                    (
                        rpc_error(
                            "protocol",
                            "operation-failed",
                            "configuration database not locked by this session",
                            None,
                        ),
                        false,
                    )
                }
            }
            "discard-changes" => {
                let mut st = self.state.lock().await;
                if locked_elsewhere(&st) {
                    return (locked_msg(&st), false);
                }
                st.candidate = None;
                (OK.into(), false)
            }
            "load-configuration" => {
                let mut st = self.state.lock().await;
                if locked_elsewhere(&st) {
                    return (format!("<load-configuration-results>{}<load-error-count>1</load-error-count></load-configuration-results>", locked_msg(&st)), false);
                }
                let mut cand = st.candidate.clone().unwrap_or_else(|| Self::running(&st));
                let action = op.attribute("action").unwrap_or("merge");
                let result: Result<(), String> = if let Some(n) = op.attribute("rollback") {
                    match n.parse::<usize>().ok().and_then(|n| Self::rollback(&st, n)) {
                        Some(c) => {
                            cand = c;
                            Ok(())
                        }
                        None => Err(format!("rollback {n}: no such configuration")),
                    }
                } else if action == "set" {
                    let text = xml::text_of(op, "configuration-set").unwrap_or_default();
                    text.lines()
                        .filter(|l| !l.trim().is_empty())
                        .try_for_each(|l| cand.command(l).map_err(|e| e.to_string()))
                } else if let Some(text) = xml::text_of(op, "configuration-text") {
                    if action == "override" || action == "replace" && text.trim().is_empty() {
                        cand = JunosConfig::new();
                    }
                    cand.merge_text(&text).map_err(|e| e.to_string())
                } else if xml::find(op, "configuration").is_some() {
                    Err(
                        "XML configuration is not supported by this simulator; use format=\"text\""
                            .into(),
                    )
                } else {
                    Err("missing configuration-text".into())
                };
                let result = result.and_then(|()| {
                    match cand
                        .paths()
                        .iter()
                        .filter_map(|p| p.first())
                        .find(|t| !TOP_LEVEL.contains(&t.as_str()))
                    {
                        Some(t) => Err(format!(
                            "syntax error: {t} is not a configuration statement"
                        )),
                        None => Ok(()),
                    }
                });
                match result {
                    Ok(()) => {
                        st.candidate = Some(cand);
                        (
                            "<load-configuration-results><ok/></load-configuration-results>".into(),
                            false,
                        )
                    }
                    Err(message) => {
                        let msg = if message.starts_with("syntax error") {
                            message
                        } else {
                            format!("syntax error: {message}")
                        };
                        (format!("<load-configuration-results>{}<load-error-count>1</load-error-count></load-configuration-results>", rpc_error("protocol", "operation-failed", &msg, None)), false)
                    }
                }
            }
            "commit" | "commit-configuration" => {
                let mut st = self.state.lock().await;
                if locked_elsewhere(&st) {
                    return (locked_msg(&st), false);
                }
                let success = |check: bool| {
                    format!(
                        "<commit-results><routing-engine junos:style=\"normal\"><name>re0</name>{}</routing-engine></commit-results>",
                        if check { "<commit-check-success/>" } else { "<commit-success/>" }
                    )
                };
                if name == "commit-configuration" && has("check") {
                    return (success(true), false);
                }
                let confirmed = has("confirmed");
                let timeout =
                    xml::text_of(op, "confirm-timeout").and_then(|t| t.parse::<u64>().ok());
                let after = if name == "commit" {
                    Duration::from_secs(timeout.unwrap_or(600))
                } else {
                    self.minute * timeout.unwrap_or(10).max(1) as u32
                };
                let running = Self::running(&st);
                let cand = st.candidate.take().unwrap_or_else(|| running.clone());
                if cand == running && !confirmed {
                    // nothing to change: a plain commit confirms a pending one
                    st.pending = None;
                    return (
                        if name == "commit" {
                            OK.into()
                        } else {
                            success(false)
                        },
                        false,
                    );
                }
                if let Err(message) = self.apply_running(&mut st, cand.clone()).await {
                    st.candidate = Some(cand);
                    return (
                        rpc_error("application", "operation-failed", &message, None),
                        false,
                    );
                }
                if confirmed {
                    st.generation += 1;
                    let generation = st.generation;
                    let previous = st.pending.take().map(|p| p.previous).unwrap_or(running);
                    st.pending = Some(Pending {
                        generation,
                        session,
                        previous,
                    });
                    self.start_timer(generation, after);
                } else {
                    st.pending = None;
                }
                (
                    if name == "commit" {
                        OK.into()
                    } else {
                        success(false)
                    },
                    false,
                )
            }
            "cancel-commit" => {
                let mut st = self.state.lock().await;
                match st.pending.take() {
                    Some(p) => {
                        let _ = p.session;
                        match self.apply_running(&mut st, p.previous).await {
                            Ok(()) => (OK.into(), false),
                            Err(m) => (
                                rpc_error("application", "operation-failed", &m, None),
                                false,
                            ),
                        }
                    }
                    None => (
                        rpc_error(
                            "protocol",
                            "operation-failed",
                            "no confirmed commit pending",
                            None,
                        ),
                        false,
                    ),
                }
            }
            "get-configuration" => {
                let st = self.state.lock().await;
                let rollback = op
                    .attribute("rollback")
                    .and_then(|n| n.parse::<usize>().ok());
                if op.attribute("compare") == Some("rollback") {
                    let base = Self::rollback(&st, rollback.unwrap_or(0)).unwrap_or_default();
                    let cand = st.candidate.clone().unwrap_or_else(|| Self::running(&st));
                    let d = diff(&base, &cand);
                    return (format!("<configuration-information><configuration-output>{}</configuration-output></configuration-information>", escape(&d)), false);
                }
                let cfg = match rollback {
                    Some(n) => match Self::rollback(&st, n) {
                        Some(c) => c,
                        None => {
                            return (
                                rpc_error(
                                    "application",
                                    "operation-failed",
                                    &format!("rollback {n}: no such configuration"),
                                    None,
                                ),
                                false,
                            )
                        }
                    },
                    None if op.attribute("database") == Some("committed") => Self::running(&st),
                    None => st.candidate.clone().unwrap_or_else(|| Self::running(&st)),
                };
                if op.attribute("format") == Some("text") {
                    (
                        format!(
                            "<configuration-text>{}</configuration-text>",
                            escape(&cfg.to_text(true))
                        ),
                        false,
                    )
                } else {
                    (config_xml(&cfg), false)
                }
            }
            "get-vrrp-information" => {
                let only = xml::text_of(op, "interface");
                let mut out = String::from("<vrrp-information>");
                for (iface, id, address) in self.sim.vrrp_interfaces() {
                    if only.as_ref().is_some_and(|o| o != &iface) {
                        continue;
                    }
                    let state = match self.sim.vrrp_status(&iface, id).await {
                        Ok(VrrpState::Master) => "master",
                        Ok(VrrpState::Backup) => "backup",
                        Ok(VrrpState::Init) | Err(_) => "init",
                    };
                    let up = matches!(self.sim.interface_status(&iface).await, Ok(OperStatus::Up));
                    out.push_str(&format!(
                        "<vrrp-interface><interface>{}</interface><interface-state>{}</interface-state><group>{id}</group><vrrp-state>{state}</vrrp-state><local-interface-address>{}</local-interface-address></vrrp-interface>",
                        escape(&iface), if up { "up" } else { "down" }, escape(address.split('/').next().unwrap_or(""))
                    ));
                }
                out.push_str("</vrrp-information>");
                (out, false)
            }
            "get-interface-information" => {
                let Some(ifname) = xml::text_of(op, "interface-name") else {
                    return (
                        rpc_error(
                            "protocol",
                            "missing-element",
                            "interface-name required by this simulator",
                            Some("interface-name"),
                        ),
                        false,
                    );
                };
                match self.sim.interface_status(&ifname).await {
                    Ok(s) => {
                        let st = if s == OperStatus::Up { "up" } else { "down" };
                        let kind = if ifname.contains('.') {
                            "logical-interface"
                        } else {
                            "physical-interface"
                        };
                        (format!("<interface-information><{kind}><name>{}</name><admin-status>up</admin-status><oper-status>{st}</oper-status></{kind}></interface-information>", escape(&ifname)), false)
                    }
                    Err(_) => (
                        rpc_error(
                            "protocol",
                            "operation-failed",
                            &format!("device {ifname} not found"),
                            None,
                        ),
                        false,
                    ),
                }
            }
            "get-bgp-neighbor-information" => {
                let peer = xml::text_of(op, "neighbor-address").unwrap_or_default();
                let instance = xml::text_of(op, "instance").unwrap_or_default();
                match self.sim.bgp_peer_status(&instance, &peer).await {
                    Ok(s) => {
                        let state = match s {
                            BgpState::Established => "Established",
                            BgpState::Active => "Active",
                            BgpState::Idle => "Idle",
                        };
                        (format!("<bgp-information><bgp-peer><peer-address>{}</peer-address><peer-state>{state}</peer-state></bgp-peer></bgp-information>", escape(&peer)), false)
                    }
                    Err(_) => (
                        rpc_error(
                            "protocol",
                            "operation-failed",
                            &format!("peer {peer} not found"),
                            None,
                        ),
                        false,
                    ),
                }
            }
            other => (
                rpc_error(
                    "protocol",
                    "operation-not-supported",
                    &format!("syntax error, RPC <{other}> is not supported by {router}"),
                    Some(other),
                ),
                false,
            ),
        }
    }
}

struct Conn {
    router: Arc<NetsimRouter>,
    options: Arc<NetsimOptions>,
    channels: Vec<Channel<Msg>>,
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let (expected_user, expected_password) =
            match self.options.logins.get(self.router.sim.router_name()) {
                Some((u, p)) => (u.as_str(), p),
                None => (self.options.username.as_str(), &self.options.password),
            };
        if user == expected_user && password == expected_password.expose() {
            Ok(Auth::Accept)
        } else {
            tracing::debug!(router = %self.router.sim.router_name(), user, "password rejected");
            Ok(Auth::reject())
        }
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let known = self
            .options
            .authorized_keys
            .iter()
            .any(|k| k.key_data() == key.public_key.key_data());
        let expected_user = match self.options.logins.get(self.router.sim.router_name()) {
            Some((u, _)) => u.as_str(),
            None => self.options.username.as_str(),
        };
        if user == expected_user && known {
            Ok(Auth::Accept)
        } else {
            Ok(Auth::reject())
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        self.channels.push(channel);
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let pos = self.channels.iter().position(|c| c.id() == channel);
        match pos {
            Some(i) if name == "netconf" => {
                session.channel_success(channel)?;
                let ch = self.channels.swap_remove(i);
                let router = Arc::clone(&self.router);
                tokio::spawn(serve_channel(router, ch));
            }
            _ => {
                session.channel_failure(channel)?;
            }
        }
        Ok(())
    }
}

async fn serve_channel(router: Arc<NetsimRouter>, mut ch: Channel<Msg>) {
    let session = router.sessions.fetch_add(1, Ordering::SeqCst) + 1;
    let mut hello =
        String::from("<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities>");
    for c in SERVER_CAPABILITIES {
        hello.push_str(&format!("<capability>{c}</capability>"));
    }
    hello.push_str(&format!(
        "</capabilities><session-id>{session}</session-id></hello>"
    ));
    if ch
        .data_bytes(encode(Framing::EndOfMessage, &hello))
        .await
        .is_err()
    {
        return;
    }
    let mut decoder = Decoder::default();
    let mut got_hello = false;
    'outer: loop {
        match ch.wait().await {
            Some(ChannelMsg::Data { data }) => {
                decoder.push(&data);
                loop {
                    let msg = match decoder.next_message() {
                        Ok(Some(m)) => m,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!(router = %router.sim.router_name(), error = %e, "bad framing; closing");
                            break 'outer;
                        }
                    };
                    if !got_hello {
                        got_hello = true;
                        if xml::read_hello(&msg).is_err() {
                            tracing::debug!(router = %router.sim.router_name(), "expected client <hello>; closing");
                            break 'outer;
                        }
                        continue;
                    }
                    if router.stall.load(Ordering::SeqCst) {
                        continue;
                    }
                    let (reply, close) = router.handle(session, &msg).await;
                    if ch
                        .data_bytes(encode(Framing::EndOfMessage, &reply))
                        .await
                        .is_err()
                    {
                        break 'outer;
                    }
                    if close {
                        break 'outer;
                    }
                }
            }
            Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    router.end_session(session).await;
    let _ = ch.eof().await;
    let _ = ch.close().await;
}

#[derive(Clone)]
struct Factory {
    router: Arc<NetsimRouter>,
    options: Arc<NetsimOptions>,
}

impl russh::server::Server for Factory {
    type Handler = Conn;
    fn new_client(&mut self, _peer: Option<SocketAddr>) -> Conn {
        Conn {
            router: Arc::clone(&self.router),
            options: Arc::clone(&self.options),
            channels: Vec::new(),
        }
    }
}

/// Routers being served; dropping it stops accepting connections.
pub struct Netsim {
    routers: Vec<Arc<NetsimRouter>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Netsim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netsim")
            .field("routers", &self.routers)
            .finish()
    }
}

impl Drop for Netsim {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Errors starting the servers.
#[derive(Debug, thiserror::Error)]
pub enum NetsimError {
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// Host key generation failed.
    #[error("cannot generate a host key: {0}")]
    HostKey(String),
    /// The state directory could not be read or written.
    #[error("netsim state {path}: {message}")]
    State {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// Writes a file readable by its owner only (it may hold secrets of the configuration).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp)?;
        std::io::Write::write_all(&mut f, bytes)?;
    }
    std::fs::rename(&tmp, path)
}

/// A file name for a router name (`192.0.2.11`, `r1`; anything but `[A-Za-z0-9._-]` → `_`).
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The router's saved host key, or a new one (saved when there is a state directory).
fn host_key_for(dir: Option<&Path>, name: &str) -> Result<PrivateKey, NetsimError> {
    let fresh = || {
        PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519)
            .map_err(|e| NetsimError::HostKey(e.to_string()))
    };
    let Some(dir) = dir else {
        return fresh();
    };
    let path = dir.join(format!("{}.key", file_stem(name)));
    let state = |message: String| NetsimError::State {
        path: path.clone(),
        message,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => russh::keys::decode_secret_key(&text, None).map_err(|e| state(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = fresh()?;
            let text = key
                .to_openssh(russh::keys::ssh_key::LineEnding::LF)
                .map_err(|e| state(e.to_string()))?;
            std::fs::create_dir_all(dir).map_err(|e| state(e.to_string()))?;
            write_private(&path, text.as_bytes()).map_err(|e| state(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(state(e.to_string())),
    }
}

/// Puts the saved running configuration (if any) on the router.
async fn restore_config(sim: &SimRouter, path: &Path) -> Result<(), NetsimError> {
    let state = |message: String| NetsimError::State {
        path: path.to_path_buf(),
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(state(e.to_string())),
    };
    let cfg = JunosConfig::parse(&text).map_err(|e| state(e.to_string()))?;
    let change = ConfigChange {
        resource: "netsim".into(),
        delete: sim.running().paths(),
        merge_text: cfg.to_text(false),
        additional_commands: Vec::new(),
    };
    sim.load_config(&change)
        .await
        .map(|_| ())
        .map_err(|e| state(e.to_string()))
}

impl Netsim {
    /// Serves `routers` on consecutive ports from `listen` (port 0: any free ports), each with
    /// a fresh ed25519 host key. Returns once all listen.
    pub async fn start(
        routers: Vec<Arc<SimRouter>>,
        listen: SocketAddr,
        options: NetsimOptions,
    ) -> Result<Netsim, NetsimError> {
        let options = Arc::new(options);
        let mut served = Vec::new();
        let mut tasks = Vec::new();
        for (i, sim) in routers.into_iter().enumerate() {
            let addr = if listen.port() == 0 {
                listen
            } else {
                SocketAddr::new(listen.ip(), listen.port() + i as u16)
            };
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| NetsimError::Bind { addr, source })?;
            let addr = listener
                .local_addr()
                .map_err(|source| NetsimError::Bind { addr, source })?;
            let dir = options.state_dir.as_deref();
            let host_key = host_key_for(dir, sim.router_name())?;
            let state_file = dir.map(|d| d.join(format!("{}.conf", file_stem(sim.router_name()))));
            if let Some(path) = &state_file {
                restore_config(&sim, path).await?;
            }
            let initial = sim.running();
            let router = Arc::new(NetsimRouter {
                sim,
                host_key: host_key.clone(),
                addr,
                state: Mutex::new(NcState {
                    candidate: None,
                    lock: None,
                    history: vec![initial],
                    pending: None,
                    generation: 0,
                }),
                stall: AtomicBool::new(false),
                sessions: AtomicU64::new(0),
                minute: options.minute,
                state_file,
            });
            let config = Arc::new(russh::server::Config {
                keys: vec![host_key],
                auth_rejection_time: Duration::from_millis(200),
                auth_rejection_time_initial: Some(Duration::ZERO),
                inactivity_timeout: Some(Duration::from_secs(3600)),
                nodelay: true,
                ..Default::default()
            });
            let mut factory = Factory {
                router: Arc::clone(&router),
                options: Arc::clone(&options),
            };
            tasks.push(tokio::spawn(async move {
                if let Err(e) = factory.run_on_socket(config, &listener).await {
                    tracing::warn!(%addr, error = %e, "netsim server stopped");
                }
            }));
            served.push(router);
        }
        Ok(Netsim {
            routers: served,
            tasks,
        })
    }

    /// The served routers, in order.
    pub fn routers(&self) -> &[Arc<NetsimRouter>] {
        &self.routers
    }

    /// The router named `name`.
    pub fn router(&self, name: &str) -> Option<&Arc<NetsimRouter>> {
        self.routers.iter().find(|r| r.sim.router_name() == name)
    }

    /// One line per router: `NAME HOST:PORT SHA256:FINGERPRINT`.
    pub fn listing(&self) -> String {
        self.routers
            .iter()
            .map(|r| format!("{} {} {}\n", r.sim.router_name(), r.addr, r.fingerprint()))
            .collect()
    }

    /// A known_hosts file content for all routers (`[host]:port ssh-ed25519 …`).
    pub fn known_hosts(&self) -> String {
        self.routers
            .iter()
            .filter_map(|r| {
                r.public_key()
                    .to_openssh()
                    .ok()
                    .map(|k| format!("[{}]:{} {}\n", r.addr.ip(), r.addr.port(), k))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_and_xml() {
        let a = JunosConfig::parse("interfaces { ae0 { unit 5 { vlan-id 5; } } }").unwrap();
        let b = JunosConfig::parse("interfaces { ae0 { unit 5 { vlan-id 6; } } }").unwrap();
        let d = diff(&a, &b);
        assert!(d.contains("-  interfaces ae0 unit 5 vlan-id 5;"));
        assert!(d.contains("+  interfaces ae0 unit 5 vlan-id 6;"));
        assert_eq!(diff(&a, &a), "\n");
        let x = config_xml(&b);
        assert!(xml::parse(&x).is_some(), "{x}");
        assert!(
            x.contains(
                "<interfaces><name>ae0</name><unit><vlan-id>6</vlan-id></unit></interfaces>"
            ) || x.contains("<vlan-id>6</vlan-id>")
        );
    }
}
