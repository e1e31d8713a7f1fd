#!/usr/bin/env bash
# etcd 3.4 (Debian etcd-server) on loopback: one single node and one 3-member cluster.
#
#   bash 10-etcd.sh start            install if needed, start both, wait until healthy; prints
#                                    ETCD_ENDPOINTS=... (single) and ETCD_CLUSTER_ENDPOINTS=... (3 members)
#   bash 10-etcd.sh stop             stop what this script started (by PID file), wipe the data dirs
#   bash 10-etcd.sh stop-member N    SIGTERM cluster member N (1..3; SIGKILL with FORCE=1), keep its data
#   bash 10-etcd.sh start-member N   restart member N with its data; waits until healthy
#
# Knobs (not ETCD_*: etcd reads every ETCD_* variable as a flag and dies on a clash):
#   CI_ETCD_PORT / CI_ETCD_PEER_PORT (23790 / 23800), CI_ETCD_CLUSTER_BASE (2379: members get
#   client ports 23791..3 and peer ports 23801..3), CI_ETCD_DIR (/tmp/esi-ci-etcd).
# Also installs protobuf-compiler and libprotobuf-dev (etcd-client generates its gRPC code at build time),
# etcdctl (the cluster tests read etcd's history with it) and openssl (esi-cli/tests/etcd_access.rs).
set -euo pipefail

PORT="${CI_ETCD_PORT:-23790}"
PEER="${CI_ETCD_PEER_PORT:-23800}"
BASE="${CI_ETCD_CLUSTER_BASE:-2379}"
DIR="${CI_ETCD_DIR:-/tmp/esi-ci-etcd}"
SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"

cport() { echo "${BASE}$1"; }
pport() { echo "$((BASE + 1))$1"; }
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ "$st" != Z* ]]; }
healthy_url() { curl -fsS --max-time 2 "$1/health" 2>/dev/null | grep -q '"health":"true"'; }

# launch NAME ARGS...: etcd detached in its own session; NAME.pid holds etcd's own PID
# (setsid may fork, so the inner bash records its PID and execs etcd).
launch() {
  local name=$1; shift
  local pidfile="$DIR/$name.pid"
  rm -f "$pidfile"
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" \
    env $(env | grep -o '^ETCD_[A-Za-z0-9_]*' | sed 's/^/-u /') etcd "$@" \
    </dev/null >>"$DIR/$name.log" 2>&1 &
  for _ in $(seq 1 100); do [[ -s "$pidfile" ]] && return 0; sleep 0.05; done
  echo "could not launch etcd $name" >&2; return 1
}

stop_one() {
  local name=$1 sig=${2:-TERM}
  [[ -f "$DIR/$name.pid" ]] || return 0
  local pid; pid=$(cat "$DIR/$name.pid")
  kill -"$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.2; done
  rm -f "$DIR/$name.pid"
}

start_single() {
  local url="http://127.0.0.1:$PORT"
  healthy_url "$url" && return 0
  mkdir -p "$DIR/single"; chmod 700 "$DIR/single"
  launch single --name single --data-dir "$DIR/single" \
    --listen-client-urls "$url" --advertise-client-urls "$url" \
    --listen-peer-urls "http://127.0.0.1:$PEER" --initial-advertise-peer-urls "http://127.0.0.1:$PEER" \
    --initial-cluster "single=http://127.0.0.1:$PEER" --initial-cluster-state new \
    --logger zap --log-outputs stderr --log-level warn
}

initial_cluster() {
  local out="" i
  for i in 1 2 3; do out+="${out:+,}m$i=http://127.0.0.1:$(pport $i)"; done
  echo "$out"
}

start_member() {
  local i=$1
  healthy_url "http://127.0.0.1:$(cport "$i")" && return 0
  mkdir -p "$DIR/m$i"; chmod 700 "$DIR/m$i"
  # --initial-* flags are ignored once the data dir holds a member: the same command restarts it.
  launch "m$i" --name "m$i" --data-dir "$DIR/m$i" \
    --listen-client-urls "http://127.0.0.1:$(cport "$i")" --advertise-client-urls "http://127.0.0.1:$(cport "$i")" \
    --listen-peer-urls "http://127.0.0.1:$(pport "$i")" --initial-advertise-peer-urls "http://127.0.0.1:$(pport "$i")" \
    --initial-cluster "$(initial_cluster)" --initial-cluster-state new --initial-cluster-token "esi-ci-$BASE" \
    --logger zap --log-outputs stderr --log-level warn
}

wait_healthy() {
  local what=$1; shift
  for _ in $(seq 1 150); do
    local ok=1 u
    for u in "$@"; do healthy_url "$u" || ok=0; done
    ((ok)) && return 0
    sleep 0.2
  done
  echo "$what not healthy after 30 s; logs in $DIR" >&2
  tail -n 5 "$DIR"/*.log >&2 || true
  return 1
}

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 && return 0
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

case "${1:-start}" in
  stop)
    for n in single m1 m2 m3; do stop_one "$n"; done
    rm -rf "$DIR"
    exit 0 ;;
  stop-member)
    sig=TERM; [[ "${FORCE:-0}" == 1 ]] && sig=KILL
    stop_one "m$2" "$sig"; exit 0 ;;
  start-member)
    start_member "$2"
    wait_healthy "member $2" "http://127.0.0.1:$(cport "$2")"; exit 0 ;;
  start) ;;
  *) echo "usage: $0 start|stop|stop-member N|start-member N" >&2; exit 2 ;;
esac

need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v openssl >/dev/null || need+=(openssl)   # certificates of the etcd TLS test
command -v protoc >/dev/null || need+=(protobuf-compiler)
[[ -f /usr/include/google/protobuf/descriptor.proto ]] || need+=(libprotobuf-dev)
((${#need[@]} == 0)) || { echo "installing ${need[*]}" >&2; apt_install "${need[@]}"; }

mkdir -p "$DIR"
start_single
for i in 1 2 3; do start_member "$i"; done   # all three before any is healthy (quorum 2)
EPS=""
for i in 1 2 3; do EPS+="${EPS:+,}http://127.0.0.1:$(cport "$i")"; done
wait_healthy "etcd single node" "http://127.0.0.1:$PORT"
wait_healthy "etcd cluster" ${EPS//,/ }
echo "etcd up: single on $PORT, cluster on $(cport 1)-$(cport 3) (logs in $DIR)" >&2
echo "ETCD_ENDPOINTS=http://127.0.0.1:$PORT"
echo "ETCD_CLUSTER_ENDPOINTS=$EPS"
echo "ESI_ETCD_SERVICE=$SELF"
