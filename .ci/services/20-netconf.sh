#!/usr/bin/env bash
# 20-netconf.sh — real NETCONF for esi-netconf's ignored tests:
#  * yuma123 netconfd 2.13 behind OpenSSH on 127.0.0.1:$CI_NETCONF_PORT (default 8830), loading
#    ietf-interfaces and our own YANG module (netconf/esi-test.yang), target candidate;
#  * a Python venv with Juniper's PyEZ (junos-eznc) and ncclient, the third-party clients that
#    drive `esi netsim` in the PyEZ/ncclient checks.
# Adapted from ../shared/recipes/netconf-server.sh (see its gotchas: netconf-subsystem socket
# syntax, --port, the get-interface-ipv4 stub, sshd's /run/sshd).
#
# Usage: bash 20-netconf.sh [start]   → prints NETCONF_ENDPOINT=… NETCONF_USER=… NETCONF_PASS=…, ESI_PYTHON=…,
#                                        NETCONF_KEY=… (client key) and NETCONF_KNOWN_HOSTS=…
#        bash 20-netconf.sh stop      → stops sshd + netconfd started here (by PID), wipes $CI_NETCONF_DIR
# Env:   CI_NETCONF_PORT (8830) CI_NETCONF_USER (netconf) CI_NETCONF_PASS (netconf)
#        CI_NETCONF_DIR (/tmp/esi-netconf-ci) CI_NETCONF_VENV (/tmp/esi-netconf-venv, kept between runs: an install)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
PORT="${CI_NETCONF_PORT:-8830}"
NCUSER="${CI_NETCONF_USER:-netconf}"
NCPASS="${CI_NETCONF_PASS:-netconf}"
DIR="${CI_NETCONF_DIR:-/tmp/esi-netconf-ci}"
VENV="${CI_NETCONF_VENV:-/tmp/esi-netconf-venv}"
SOCK="$DIR/ncxserver.sock"
MODULES="ietf-interfaces $HERE/netconf/esi-test.yang"

launch() {
  local pidfile=$1 log=$2; shift 2; rm -f "$pidfile"
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$log" 2>&1 &
  for _ in $(seq 1 100); do [[ -s "$pidfile" ]] && return 0; sleep 0.05; done
  echo "could not launch $*" >&2; return 1
}
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 && return 0
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ "$st" != Z* ]]; }
stop_pidfile() {
  [[ -f "$1" ]] || return 0
  local pid; pid=$(cat "$1"); kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
  rm -f "$1"
}

if [[ "${1:-start}" == stop ]]; then
  stop_pidfile "$DIR/sshd.pid"; stop_pidfile "$DIR/netconfd.pid"; rm -rf "$DIR"; exit 0
fi

probe() {
  "$PY" - "$PORT" "$NCUSER" "$NCPASS" <<'PY'
import sys
from ncclient import manager
port, user, pw = sys.argv[1:4]
try:
    m = manager.connect(host="127.0.0.1", port=int(port), username=user, password=pw, hostkey_verify=False,
                        allow_agent=False, look_for_keys=False, timeout=10)
    ok = any("candidate" in c for c in m.server_capabilities)
    m.close_session()
except Exception as e:
    print("probe:", e, file=sys.stderr); sys.exit(1)
sys.exit(0 if ok else 1)
PY
}
print_ep() {
  echo "NETCONF_ENDPOINT=127.0.0.1:$PORT"
  echo "NETCONF_USER=$NCUSER"
  echo "NETCONF_PASS=$NCPASS"
  echo "ESI_PYTHON=$VENV/bin/python"
  echo "NETCONF_KEY=$DIR/client_ed25519"
  echo "NETCONF_KNOWN_HOSTS=$DIR/known_hosts"
}

# 1. packages
need=()
command -v netconfd >/dev/null || need+=(netconfd)
[[ -e /usr/lib/x86_64-linux-gnu/yuma/libietf-interfaces.so ]] || need+=(netconfd-module-ietf-interfaces)
[[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
[[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then echo "apt: ${need[*]}" >&2; apt_install "${need[@]}"; fi

# 2. the Python clients (Debian's python3: the machine's default python may be private to root)
if ! "$VENV/bin/python" -c 'import jnpr.junos, ncclient' 2>/dev/null; then
  echo "venv $VENV: pip install junos-eznc ncclient" >&2
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check junos-eznc ncclient >&2
fi
PY="$VENV/bin/python"

# 3. already up?
if [[ -S "$SOCK" ]] && probe 2>/dev/null; then echo "netconfd already up on 127.0.0.1:$PORT" >&2; print_ep; exit 0; fi
stop_pidfile "$DIR/sshd.pid"; stop_pidfile "$DIR/netconfd.pid"

id "$NCUSER" >/dev/null 2>&1 || useradd -m -s /bin/sh "$NCUSER"
echo "$NCUSER:$NCPASS" | chpasswd
mkdir -p "$DIR/bin" /run/sshd
chmod 755 "$DIR"
printf '#!/bin/sh\nexit 0\n' >"$DIR/bin/get-interface-ipv4"; chmod +x "$DIR/bin/get-interface-ipv4"
printf '<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>\n' >"$DIR/startup-cfg.xml"

# 4. netconfd on a UNIX socket
modargs=(); for m in $MODULES; do modargs+=("--module=$m"); done
rm -f "$SOCK"; : >"$DIR/netconfd.out"
( cd "$DIR" && launch "$DIR/netconfd.pid" "$DIR/netconfd.out" env PATH="$DIR/bin:$PATH" netconfd "${modargs[@]}" \
    --superuser="$NCUSER" --target=candidate --startup="$DIR/startup-cfg.xml" \
    --ncxserver-sockname="$SOCK" --port="$PORT" --access-control=permissive \
    --log="$DIR/netconfd.log" --log-level=info )
for _ in $(seq 1 100); do [[ -S "$SOCK" ]] && break; alive "$(cat "$DIR/netconfd.pid")" || break; sleep 0.1; done
[[ -S "$SOCK" ]] || { echo "netconfd did not start:" >&2; tail -20 "$DIR/netconfd.out" "$DIR/netconfd.log" >&2 2>/dev/null; exit 1; }

# 5. sshd, own config and host key, loopback only
ssh-keygen -q -t ed25519 -N '' -f "$DIR/ssh_host_ed25519_key"
# a client key for key authentication, and a known_hosts line for the host key
ssh-keygen -q -t ed25519 -N '' -C esi-netconf-ci -f "$DIR/client_ed25519"
cp "$DIR/client_ed25519.pub" "$DIR/authorized_keys"; chmod 644 "$DIR/authorized_keys"
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$DIR/ssh_host_ed25519_key.pub")" >"$DIR/known_hosts"
cat >"$DIR/sshd_config" <<CFG
Port $PORT
ListenAddress 127.0.0.1
HostKey $DIR/ssh_host_ed25519_key
PidFile $DIR/sshd.pid
UsePAM no
PasswordAuthentication yes
PubkeyAuthentication yes
AuthorizedKeysFile $DIR/authorized_keys
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $NCUSER
StrictModes no
PrintMotd no
LogLevel INFO
Subsystem netconf /usr/sbin/netconf-subsystem --ncxserver-sockname=$PORT@$SOCK
CFG
/usr/sbin/sshd -t -f "$DIR/sshd_config"
/usr/sbin/sshd -f "$DIR/sshd_config" -E "$DIR/sshd.log"

# 6. wait for a real NETCONF session
for _ in $(seq 1 50); do
  if probe 2>/dev/null; then echo "netconfd up on 127.0.0.1:$PORT (logs in $DIR)" >&2; print_ep; exit 0; fi
  sleep 0.2
done
echo "no NETCONF session on 127.0.0.1:$PORT; see $DIR/*.log" >&2; tail -20 "$DIR/sshd.log" "$DIR/netconfd.log" >&2 2>/dev/null; exit 1
