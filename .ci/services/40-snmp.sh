#!/usr/bin/env bash
# 40-snmp.sh — SNMP agents for the esi-snmp tests (adapted from shared/recipes snmp-agent.sh + snmpsim.sh):
#   * Net-SNMP snmpd on udp 127.0.0.1:$CI_SNMP_PORT (16100): v2c public (ro) / private (rw), v3 user ciuser SHA/AES
#   * snmpsim 1.2.2 on udp 127.0.0.1:$CI_SNMPSIM_PORT (16101) serving .ci/snmpsim/*.snmprec (a Junos-style
#     ifTable/ifXTable: xe-0/0/3.1025 … with writable ifOperStatus and HC counters); v2c community and
#     v3 context name = file name (public), v3 user ciuser SHA/AES.
# Usage: bash .ci/services/40-snmp.sh start|stop   (start prints KEY=VALUE lines on stdout, progress on stderr)
set -euo pipefail
HERE="$(cd "$(dirname "$0")/../.." && pwd)"
SNMP_PORT="${CI_SNMP_PORT:-16100}"
SIM_PORT="${CI_SNMPSIM_PORT:-16101}"
DIR="${CI_SNMP_STATE:-/tmp/esi-snmp-ci}"
VENV="${CI_SNMPSIM_VENV:-/tmp/snmpsim-venv}"
V3U=ciuser; V3A=authpass123; V3P=privpass123

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 && return 0
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ "$st" != Z* ]]; }
launch() {
  local pidfile=$1 log=$2; shift 2; rm -f "$pidfile"
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$log" 2>&1 &
  for _ in $(seq 1 100); do [[ -s "$pidfile" ]] && return 0; sleep 0.05; done
  echo "could not launch $*" >&2; return 1
}
ready() { snmpget -v2c -c public -r 0 -t 1 -On "127.0.0.1:$1" 1.3.6.1.2.1.1.3.0 2>/dev/null | grep -q Timeticks; }
stop_pid() {
  [[ -f "$1" ]] || return 0
  local pid; pid=$(cat "$1"); kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
}

if [[ "${1:-start}" == stop ]]; then
  stop_pid "$DIR/snmpd.pid"; stop_pid "$DIR/snmpsim.pid"
  rm -rf "$DIR"; exit 0
fi

need=()
command -v snmpd >/dev/null || need+=(snmpd)
command -v snmpget >/dev/null || need+=(snmp)
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then echo "installing ${need[*]}" >&2; apt_install "${need[@]}"; fi
if [[ ! -x "$VENV/bin/snmpsim-command-responder" ]]; then
  echo "installing snmpsim into $VENV" >&2
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check 'snmpsim==1.2.2' 'pysnmp==7.1.30' 'pysmi==2.0.0' cryptography >&2
fi
mkdir -p "$DIR/persist" "$DIR/cache" "$DIR/data"
chown nobody:nogroup "$DIR/cache"
# snmpsim drops to nobody: serve a world-readable copy of the repo's data
cp "$HERE"/.ci/snmpsim/*.snmprec "$DIR/data/"; chmod -R a+rX "$DIR/data"; chmod a+x "$DIR"

# 1. snmpd
if ! ready "$SNMP_PORT"; then
  cat >"$DIR/snmpd.conf" <<CFG
agentAddress udp:127.0.0.1:$SNMP_PORT
rocommunity public 127.0.0.1
rwcommunity private 127.0.0.1
createUser $V3U SHA "$V3A" AES "$V3P"
rouser $V3U priv
sysName esi-ci-snmpd
CFG
  : >"$DIR/snmpd.log"
  launch "$DIR/snmpd.pid" "$DIR/snmpd.log" env SNMP_PERSISTENT_DIR="$DIR/persist" MIBS= \
    snmpd -f -C -c "$DIR/snmpd.conf" -Lo -I -smux
fi
# 2. snmpsim
if ! ready "$SIM_PORT"; then
  : >"$DIR/snmpsim.log"
  launch "$DIR/snmpsim.pid" "$DIR/snmpsim.log" "$VENV/bin/snmpsim-command-responder" \
    --data-dir="$DIR/data" --cache-dir="$DIR/cache" --agent-udpv4-endpoint="127.0.0.1:$SIM_PORT" \
    --v3-user="$V3U" --v3-auth-key="$V3A" --v3-auth-proto=SHA --v3-priv-key="$V3P" --v3-priv-proto=AES \
    --process-user=nobody --process-group=nogroup --logging-method=stdout --log-level=error
fi
for name in snmpd:$SNMP_PORT snmpsim:$SIM_PORT; do
  port=${name#*:}; ok=
  for _ in $(seq 1 100); do
    if ready "$port"; then ok=1; break; fi
    if [[ -f "$DIR/${name%%:*}.pid" ]] && ! alive "$(cat "$DIR/${name%%:*}.pid")"; then break; fi
    sleep 0.2
  done
  if [[ -z "$ok" ]]; then echo "${name%%:*} not answering on $port" >&2; tail -20 "$DIR/${name%%:*}.log" >&2 || true; exit 1; fi
  echo "${name%%:*} up on 127.0.0.1:$port" >&2
done
echo "SNMPD_ENDPOINT=127.0.0.1:$SNMP_PORT"
echo "SNMPSIM_ENDPOINT=127.0.0.1:$SIM_PORT"
echo "SNMP_COMMUNITY=public"
echo "SNMP_RW_COMMUNITY=private"
echo "SNMP_V3_USER=$V3U"
echo "SNMP_V3_AUTH=$V3A"
echo "SNMP_V3_PRIV=$V3P"
echo "SNMPSIM_V3_CONTEXT=public"
