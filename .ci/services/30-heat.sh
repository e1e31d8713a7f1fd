#!/usr/bin/env bash
# 30-heat.sh (from ../shared/recipes/heat.sh) — standalone OpenStack Heat (PyPI openstack-heat 27.0.1) on 127.0.0.1:8004 with NO Keystone:
# paste flavor "noauth", fake Keystone backend, in-process oslo.messaging fake:// transport (API + engine in
# ONE process, see heat/heat-all-ci.py), PostgreSQL (Debian postgresql-15, private cluster on 127.0.0.1:54329).
#
# Usage:  bash heat.sh            # install if needed, start (or reuse), wait until the API answers via the engine
#         bash heat.sh stop       # stop heat + postgres started by this script, wipe state (venv is kept)
#         bash heat.sh stop-heat  # stop only the Heat process (FORCE=1: SIGKILL), keep postgres + state; `start` restarts it
# Env:    CI_HEAT_PORT (default 8004)  CI_HEAT_PG_PORT (default 54329)
#         CI_HEAT_DIR (default /tmp/heat-ci)   CI_HEAT_VENV (default /tmp/heat-venv)
# Prints: HEAT_URL=http://127.0.0.1:8004/v1/admin     (project id "admin"; no token needed, any X-Auth-Token ignored)
#
# REST quick reference (JSON bodies; templates may be inline JSON objects or YAML strings):
#   POST   $HEAT_URL/stacks                       {"stack_name":..,"template":..,"parameters":..,"environment":..}
#   GET    $HEAT_URL/stacks/<name>                -> 302 to /stacks/<name>/<id>   (curl -L)
#   PUT    $HEAT_URL/stacks/<name>/<id>           full update;   PATCH = update with existing template/params
#   DELETE $HEAT_URL/stacks/<name>/<id>           then GET by id shows DELETE_COMPLETE (by name: 404)
#   GET    $HEAT_URL/stacks/<name>/<id>/outputs/<key>,  .../resources,  .../events;  POST $HEAT_URL/validate
# Custom types can be mapped in "environment": {"resource_registry": {"ESI::Monitoring::MonitoringTarget":
#   "OS::Heat::None", "OS::Contrail::*": "OS::Heat::None"}} (exact names and wildcards both verified).
#
# Measured on the 2-core CI machine: venv + pip install ~65-70 s (≈150 packages, wheels only, no compiler),
# postgres initdb+start ~1 s, heat start to ready ~3 s; a create(3 resources) ~0.2-1 s;
# create+update+delete lifecycle ~1.1 s sequential; 60 lifecycles at 4-way concurrency: 60/60 OK, 0 errors.
# GOTCHAS (all handled below):
#  * heat 27 ships no heat-api/heat-all any more (API is WSGI-only: heat-wsgi-api), and the fake:// transport only
#    works inside one process → our own launcher runs engine + API (wsgiref, threaded) in one process.
#  * oslo.service's launcher (threading backend) FORKS a worker even for workers=1 (cotyledon) → the engine would
#    sit in another process and every API call dies with MessagingTimeout after rpc_response_timeout.
#    The launcher therefore calls EngineService.start() directly.
#  * `heat.engine.template` must be imported before config.startup_sanity_check() (registers auth_encryption_key).
#  * The shipped api-paste.ini has no "heat-api-noauth" section, which load_paste_app() looks for when
#    [paste_deploy] flavor = noauth → we append a composite for it.
#  * keystone_backend must be ...fake_keystoneclient.FakeKeystoneClient (not KeystoneClient).
#  * SQLite is NOT reliable: "database is locked" → UPDATE_FAILED/DELETE_FAILED even for sequential
#    create/update/delete with the (default) convergence engine; hence PostgreSQL.
#  * initdb refuses to run as root → postgres cluster is created/started as the `postgres` user.
#  * PUT/PATCH/DELETE must use /stacks/<name>/<id>: through the /stacks/<name> redirect the body is lost (400).
#  * Right after *_COMPLETE an update can briefly get 409 Conflict (stack lock still held): retry.
set -euo pipefail

PORT="${CI_HEAT_PORT:-8004}"
PGPORT="${CI_HEAT_PG_PORT:-54329}"
DIR="${CI_HEAT_DIR:-/tmp/heat-ci}"
HEAT_ALL="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/heat/heat-all-ci.py"   # Heat API + engine in one process (shared with 31-keystone-heat.sh)
VENV="${CI_HEAT_VENV:-/tmp/esi-ci-openstack-venv}"   # shared with 31-keystone-heat.sh
URL="http://127.0.0.1:$PORT/v1/admin"

# apt_install PKG...: install quietly; if that fails (no or stale package lists), apt-get update once and retry
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
pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
ready() { [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/stacks")" == 200 ]]; }

case "${1:-start}" in start|stop|stop-heat) ;; *) echo "usage: $0 [start|stop|stop-heat]" >&2; exit 2;; esac
if [[ "${1:-}" == stop-heat ]]; then
  # stop only the Heat process (API + engine), keep PostgreSQL and the state: `start` brings
  # Heat back on the same database (for tests of a Heat outage). FORCE=1: SIGKILL (a crash).
  [[ -f "$DIR/heat.pid" ]] || { echo "no $DIR/heat.pid: heat was not started here" >&2; exit 1; }
  pid=$(cat "$DIR/heat.pid")
  if [[ "${FORCE:-0}" == 1 ]]; then kill -9 "$pid" 2>/dev/null || true; else kill "$pid" 2>/dev/null || true; fi
  for _ in $(seq 1 40); do alive "$pid" || break; sleep 0.25; done
  alive "$pid" && kill -9 "$pid" 2>/dev/null || true
  echo "heat (pid $pid) stopped; database kept" >&2
  exit 0
fi
if [[ "${1:-}" == stop ]]; then
  if [[ -f "$DIR/heat.pid" ]]; then
    pid=$(cat "$DIR/heat.pid"); kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do alive "$pid" || break; sleep 0.5; done
    alive "$pid" && kill -9 "$pid" 2>/dev/null || true
  fi
  if [[ -f "$DIR/pg/data/postmaster.pid" ]]; then
    runuser -u postgres -- "$(pgbin)/pg_ctl" -D "$DIR/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$DIR"; exit 0
fi

# 1. system packages: PostgreSQL server, python3-venv (venv from Debian's /usr/bin/python3)
need=()
[[ -n "$(pgbin)" ]] || need+=(postgresql)
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then
  apt_install "${need[@]}"
fi
# 2. Heat itself (~65-70 s on a fresh machine)
if [[ ! -x "$VENV/bin/heat-manage" ]] || ! "$VENV/bin/python" -c 'import psycopg2' 2>/dev/null; then
  /usr/bin/python3 -m venv "$VENV"
  # the same set as 31-keystone-heat.sh, so one install (~70 s) serves both services
  "$VENV/bin/pip" install -q --disable-pip-version-check 'keystone==30.0.0' 'openstack-heat==27.0.1' psycopg2-binary gunicorn
fi

if ready; then echo "heat already up at $URL" >&2; echo "HEAT_URL=$URL"; exit 0; fi

mkdir -p "$DIR"; chmod 755 "$DIR"
# 3. private PostgreSQL cluster (trust auth, loopback only, no fsync: test data only)
if ! runuser -u postgres -- "$(pgbin)/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" 2>/dev/null; then
  rm -rf "$DIR/pg"; mkdir -p "$DIR/pg"; chown postgres:postgres "$DIR/pg"
  runuser -u postgres -- "$(pgbin)/initdb" -D "$DIR/pg/data" -A trust -U postgres >"$DIR/pg/initdb.log" 2>&1
  runuser -u postgres -- "$(pgbin)/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/pg.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $DIR/pg -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null
fi
psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qtc "select 1 from pg_database where datname='heat'" | grep -q 1 \
  || psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qc 'create database heat'

# 4. config
cp "$VENV/etc/heat/api-paste.ini" "$DIR/api-paste.ini"
cat >>"$DIR/api-paste.ini" <<'INI'

# CI: with [paste_deploy] flavor=noauth, load_paste_app('heat-api') looks for "heat-api-noauth"
[composite:heat-api-noauth]
use = egg:Paste#urlmap
/: api
/healthcheck: healthcheck
INI
cat >"$DIR/heat.conf" <<CONF
[DEFAULT]
transport_url = fake:/
host = heat-ci
num_engine_workers = 1
deferred_auth_method = password
keystone_backend = heat.engine.clients.os.keystone.fake_keystoneclient.FakeKeystoneClient
auth_encryption_key = 0123456789abcdef0123456789abcdef
rpc_response_timeout = 120
log_file = $DIR/heat.log
debug = false
[paste_deploy]
flavor = noauth
api_paste_config = $DIR/api-paste.ini
[database]
connection = postgresql+psycopg2://postgres@127.0.0.1:$PGPORT/heat
[oslo_messaging_notifications]
driver = noop
[oslo_policy]
enforce_scope = false
enforce_new_defaults = false
CONF
"$VENV/bin/heat-manage" --config-file "$DIR/heat.conf" db_sync >"$DIR/db_sync.log" 2>&1

# 5. start and wait until a request has gone API -> engine -> DB and back
: >"$DIR/heat.out"
launch "$DIR/heat.pid" "$DIR/heat.out" env HEAT_CI_BIND="127.0.0.1:$PORT" PYTHONWARNINGS=ignore \
  "$VENV/bin/python" "$HEAT_ALL" --config-file "$DIR/heat.conf"
for _ in $(seq 1 120); do
  if ready; then echo "heat up at $URL (log $DIR/heat.log)" >&2; echo "HEAT_URL=$URL"; exit 0; fi
  alive "$(cat "$DIR/heat.pid")" || { echo "heat died:" >&2; tail -30 "$DIR/heat.out" "$DIR/heat.log" >&2; exit 1; }
  sleep 0.5
done
echo "heat not ready at $URL" >&2; tail -30 "$DIR/heat.log" >&2; exit 1
