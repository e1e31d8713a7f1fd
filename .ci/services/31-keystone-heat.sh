#!/usr/bin/env bash
# 31-keystone-heat.sh (from ../shared/recipes/keystone-heat.sh) — real OpenStack Keystone (PyPI keystone 30.0.0, gunicorn) on 127.0.0.1:5001 and real
# OpenStack Heat (PyPI openstack-heat 27.0.1) on 127.0.0.1:8014 AUTHENTICATING AGAINST THAT KEYSTONE
# (paste flavor default = keystonemiddleware auth_token, trusts, heat stack-user domain), PostgreSQL 15 (private
# cluster on 127.0.0.1:54339, databases keystone + heat). Heat API + engine run in ONE process (oslo.messaging
# fake:// transport, same launcher as heat.sh).
#
# Usage:  bash keystone-heat.sh         # install if needed, start (or reuse), wait until Keystone issues tokens
#                                        # and Heat answers a token-authenticated request via its engine
#         bash keystone-heat.sh stop    # stop exactly what this script started (by PID), wipe the state dir
#                                        # (the venv is kept)
# Env:    CI_KS_DIR (state, default /tmp/ks-ci/state)   CI_KS_VENV (default /tmp/ks-ci/venv)
#         CI_KS_PORT (5001)  CI_KS_HEAT_PORT (8014)  CI_KS_PG_PORT (54339)
#         CI_KS_HEAT=0            Keystone only (no Heat process, no orchestration endpoint)
#         CI_KS_ADMIN_PASSWORD    (default ci-admin-pass)
#         CI_KS_TOKEN_EXPIRATION  token lifetime in seconds (default here 30, so esi's token renewal runs in CI;
#                                 the recipe's default is 3600)
#         CI_KS_TOKEN_CACHE_TIME  Heat's keystonemiddleware validation cache, seconds (default -1 = off, so a
#                                 revoked token is rejected by Heat at once; 300 = upstream default)
#         CI_KS_APPCRED_TRUSTS=1  let application-credential tokens create the trusts Heat needs (default 1;
#                                 0 = stock Keystone: stack create with an app-cred token -> 403, see below)
#         CI_KS_WORKERS (gunicorn sync workers for Keystone, default 2)
# Prints KEY=VALUE lines, prefixed KS_ (KS_OS_AUTH_URL, ..., KS_HEAT_URL) so they do not clash with 30-heat.sh.
# The recipe's names were:
#   OS_AUTH_URL=http://127.0.0.1:5001/v3 OS_IDENTITY_API_VERSION=3 OS_REGION_NAME=RegionOne OS_USERNAME=admin
#   OS_PASSWORD=.. OS_PROJECT_NAME=admin OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default
#   OS_PROJECT_ID=<id> OS_APPLICATION_CREDENTIAL_ID=<id> OS_APPLICATION_CREDENTIAL_SECRET=ci-appcred-secret
#   CI_DEMO_USERNAME=demo CI_DEMO_PASSWORD=.. CI_DEMO_PROJECT_NAME=demo  (member role only, in Default domain)
#   HEAT_URL=http://127.0.0.1:8014/v1/<admin project id>   (also in the token's catalog: type orchestration)
#
# Keystone catalog (RegionOne, interfaces public/internal/admin):
#   identity      http://127.0.0.1:5001/v3
#   orchestration http://127.0.0.1:8014/v1/%(tenant_id)s   (Keystone substitutes the token's project id)
# Heat REST: same as heat.sh, but every request needs X-Auth-Token (no token / bad token -> 401 with
#   "WWW-Authenticate: Keystone uri=http://127.0.0.1:5001/v3"), and the project in the URL must be the token's.
#
# GOTCHAS (all handled below)
#  * keystone 30 ships no keystone-wsgi-public script; the WSGI app is keystone.wsgi.api:application and it finds
#    its config through OS_KEYSTONE_CONFIG_DIR. Its oslo.config parses sys.argv, so under gunicorn it dies with
#    "gunicorn: error: unrecognized arguments: -b ..." (workers crash-loop) -> shim module keystone_ci_wsgi.py.
#  * gunicorn 27 opens a control socket in ~/.gunicorn/ by default (shared by every gunicorn on the machine):
#    --no-control-socket.
#  * bcrypt's default 12 rounds make every password auth ~0.3-0.8 s here: [identity] password_hash_rounds = 4
#    (must be set before bootstrap; it applies when a password is stored). max_password_length = 72 silences
#    "Truncating password to algorithm specific maximum length 72" (logged on every auth with the 4096 default).
#  * Heat with deferred_auth_method = trusts (the default) creates a trust from the caller to the `heat` service
#    user on every stack create. With an application-credential token Keystone 30 refuses:
#    "403 Delegated tokens cannot manage trusts" (Heat answers 403 to the POST). The (deprecated, insecure)
#    switch [security_compliance] allow_insecure_application_credential_trust_escalation = true allows it;
#    set CI_KS_APPCRED_TRUSTS=0 to keep stock behaviour. Password tokens work either way.
#  * Heat logs "deferred_auth_method is deprecated" if you set it explicitly, so it is left at its default.
#  * keystonemiddleware caches validated tokens for 300 s by default, so a revoked token keeps working against
#    Heat for up to 5 min -> token_cache_time = -1 by default (expiry is honoured either way).
#  * Heat settings that are NOT optional (verified by removing them): [keystone_authtoken] service credentials
#    (auth_type/username/password/project...) -> else every request 500 "MissingAuthPlugin"; [trustee] -> else
#    stack create 500 "AuthorizationFailure" (heat.log: "Please add the trustee credentials you need to the
#    trustee section of your heat.conf file"). Optional: stack_user_domain_* (without it stacks still work, heat
#    warns and puts stack users in the caller's project; with it each stack gets a project in domain `heat`,
#    removed again on delete). Heat's own REST needs no memcached (in-process cache warning only).
#  * keystoneclient: application_credentials.list/create(user=...) need the user ID string (a User object gives
#    404), and GET /v3/users/<id>/application_credentials?name=X answers 404 when there is none.
#
# Measured on the 2-core machine (other jobs running, load 2-4): fresh venv + pip (PIP_NO_CACHE_DIR=1) ~46 s;
# with the venv present: postgres 1 s, keystone-manage db_sync/fernet/credential/bootstrap ~8 s, keystone
# (2 gunicorn workers) ready ~4 s, Keystone objects ~3 s, heat db_sync + start ~4 s => ~21 s (fresh: ~67 s);
# reuse of a running instance 0.4 s; stop ~4.5 s. Password token ~0.1 s. Heat create(2 resources) ~2 s,
# create+PUT+PATCH+DELETE ~6.8 s (trust + stack-domain project per stack; ~0.1 s token validation per request);
# 12 lifecycles at 4-way concurrency 12/12 OK, 0 errors in heat.log/keystone.log.
set -euo pipefail

DIR="${CI_KS_DIR:-/tmp/esi-ci-ks/state}"
HEAT_ALL="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/heat/heat-all-ci.py"   # Heat API + engine in one process (shared with 30-heat.sh)
VENV="${CI_KS_VENV:-/tmp/esi-ci-openstack-venv}"   # shared with 30-heat.sh (same package set)
KPORT="${CI_KS_PORT:-5001}"
HPORT="${CI_KS_HEAT_PORT:-8014}"
PGPORT="${CI_KS_PG_PORT:-54339}"
WITH_HEAT="${CI_KS_HEAT:-1}"
ADMIN_PW="${CI_KS_ADMIN_PASSWORD:-ci-admin-pass}"
SERVICE_PW=ci-heat-service-pass
DEMO_PW=ci-demo-pass
APPCRED_SECRET=ci-appcred-secret
TOKEN_EXP="${CI_KS_TOKEN_EXPIRATION:-30}"   # esi CI: short tokens, so renewal is exercised by every run
TOKEN_CACHE="${CI_KS_TOKEN_CACHE_TIME:--1}"
APPCRED_TRUSTS="${CI_KS_APPCRED_TRUSTS:-1}"
WORKERS="${CI_KS_WORKERS:-2}"
KS="http://127.0.0.1:$KPORT/v3"
HEAT_BASE="http://127.0.0.1:$HPORT/v1"

T0=$SECONDS
phase() { echo "[$((SECONDS - T0))s] $*" >&2; }
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
stop_pid() {  # stop_pid <pidfile>: TERM, wait up to 20 s, then KILL
  local pid; [[ -f "$1" ]] || return 0; pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 80); do alive "$pid" || return 0; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
}
pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" || true; }
# token [user] [password]: project-scoped (project = user's name) password token on stdout, or nothing
token() {
  local u=${1:-admin} p=${2:-$ADMIN_PW}
  curl -s -D - -o /dev/null --max-time 20 -H 'Content-Type: application/json' -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],
    \"password\":{\"user\":{\"name\":\"$u\",\"domain\":{\"name\":\"Default\"},\"password\":\"$p\"}}},
    \"scope\":{\"project\":{\"name\":\"$u\",\"domain\":{\"name\":\"Default\"}}}}}" "$KS/auth/tokens" 2>/dev/null \
    | awk 'tolower($1)=="x-subject-token:"{print $2}' | tr -d '\r'
}
ks_ready() { [[ "$(code "$KS")" == 200 ]] && [[ -n "$(token)" ]]; }
heat_ready() {  # a token-authenticated request that goes API -> keystonemiddleware -> engine -> DB
  local t; t=$(token) && [[ -n "$t" ]] && [[ -s "$DIR/admin_project_id" ]] \
    && [[ "$(code -H "X-Auth-Token: $t" "$HEAT_BASE/$(cat "$DIR/admin_project_id")/stacks")" == 200 ]]
}
print_env() {  # one KEY=VALUE per line (what .ci/run exports); KS_ prefix so nothing clashes with 30-heat.sh
  local pid; pid=$(cat "$DIR/admin_project_id")
  phase "ready: keystone $KS $([[ $WITH_HEAT == 1 ]] && echo "heat $HEAT_BASE/$pid ")(logs in $DIR)"
  printf '%s\n' "KS_OS_AUTH_URL=$KS" "KS_OS_REGION_NAME=RegionOne" "KS_OS_USERNAME=admin" "KS_OS_PASSWORD=$ADMIN_PW" \
    "KS_OS_PROJECT_NAME=admin" "KS_OS_USER_DOMAIN_NAME=Default" "KS_OS_PROJECT_DOMAIN_NAME=Default" \
    "KS_OS_PROJECT_ID=$pid" "KS_OS_APPLICATION_CREDENTIAL_ID=$(cat "$DIR/appcred_id")" \
    "KS_OS_APPLICATION_CREDENTIAL_SECRET=$APPCRED_SECRET" \
    "KS_DEMO_USERNAME=demo" "KS_DEMO_PASSWORD=$DEMO_PW" "KS_DEMO_PROJECT_NAME=demo"
  echo "KS_TOKEN_EXPIRATION=$TOKEN_EXP"
  if [[ $WITH_HEAT == 1 ]]; then echo "KS_HEAT_URL=$HEAT_BASE/$pid"; fi
}

stop_all() {  # stop what a previous run of this script started (by PID / its own data dir), wipe the state
  stop_pid "$DIR/heat.pid"
  stop_pid "$DIR/keystone.pid"   # gunicorn master; TERM makes it stop its workers
  if [[ -f "$DIR/pg/data/postmaster.pid" ]]; then
    runuser -u postgres -- "$(pgbin)/pg_ctl" -D "$DIR/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$DIR"
}
case "${1:-start}" in start|stop) ;; *) echo "usage: $0 [start|stop]" >&2; exit 2;; esac
if [[ "${1:-}" == stop ]]; then stop_all; exit 0; fi

# reuse a running instance of ours
if [[ -s "$DIR/keystone.pid" ]] && alive "$(cat "$DIR/keystone.pid")" && ks_ready \
   && { [[ $WITH_HEAT != 1 ]] || heat_ready; }; then
  echo "already up" >&2; print_env; exit 0
fi

# 1. system packages: PostgreSQL server, python3-venv
need=()
[[ -n "$(pgbin)" ]] || need+=(postgresql)
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then apt_install "${need[@]}"; fi
# 2. one venv for both (same OpenStack release, pip check clean): ~60 s on a fresh machine
if ! "$VENV/bin/python" -c 'import keystone, heat, psycopg2, gunicorn' 2>/dev/null; then
  phase "installing keystone + heat into $VENV"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check 'keystone==30.0.0' 'openstack-heat==27.0.1' \
    psycopg2-binary gunicorn
fi

stop_all   # leftovers of an earlier, broken run
for p in "$KPORT" "$PGPORT" $([[ $WITH_HEAT == 1 ]] && echo "$HPORT"); do
  if [[ "$(code "http://127.0.0.1:$p/")" != 000 ]] || (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "port $p on 127.0.0.1 is already in use by something this script did not start" >&2; exit 1
  fi
done

mkdir -p "$DIR/pg"; chmod 755 "$DIR" "$(dirname "$DIR")"; chown postgres:postgres "$DIR/pg"
phase "starting postgres on 127.0.0.1:$PGPORT"
# 3. private PostgreSQL cluster (trust auth, loopback only, no fsync: test data only)
runuser -u postgres -- "$(pgbin)/initdb" -D "$DIR/pg/data" -A trust -U postgres >"$DIR/pg/initdb.log" 2>&1
runuser -u postgres -- "$(pgbin)/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/pg.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $DIR/pg -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null
psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qc 'create database keystone' -c 'create database heat'

# 4. Keystone
phase "keystone: db_sync, fernet keys, bootstrap"
cat >"$DIR/keystone.conf" <<CONF
[DEFAULT]
log_file = $DIR/keystone.log
[database]
connection = postgresql+psycopg2://postgres@127.0.0.1:$PGPORT/keystone
[token]
provider = fernet
expiration = $TOKEN_EXP
[fernet_tokens]
key_repository = $DIR/fernet-keys
[fernet_receipts]
key_repository = $DIR/fernet-keys
[credential]
key_repository = $DIR/credential-keys
[identity]
password_hash_rounds = 4
max_password_length = 72
[security_compliance]
allow_insecure_application_credential_trust_escalation = $([[ $APPCRED_TRUSTS == 1 ]] && echo true || echo false)
[oslo_policy]
enforce_scope = false
enforce_new_defaults = false
CONF
cat >"$DIR/keystone_ci_wsgi.py" <<'PY'
# keystone's oslo.config parses sys.argv: hide gunicorn's command line from it
import sys
sys.argv = sys.argv[:1]
from keystone.wsgi.api import application  # noqa: E402,F401
PY
km() { PYTHONWARNINGS=ignore "$VENV/bin/keystone-manage" --config-file "$DIR/keystone.conf" "$@" >>"$DIR/keystone-manage.log" 2>&1; }
km db_sync
km fernet_setup --keystone-user root --keystone-group root
km credential_setup --keystone-user root --keystone-group root
km bootstrap --bootstrap-username admin --bootstrap-password "$ADMIN_PW" --bootstrap-project-name admin \
  --bootstrap-role-name admin --bootstrap-service-name keystone --bootstrap-region-id RegionOne \
  --bootstrap-admin-url "$KS" --bootstrap-internal-url "$KS" --bootstrap-public-url "$KS"
: >"$DIR/keystone.out"
phase "starting keystone on 127.0.0.1:$KPORT"
launch "$DIR/keystone.pid" "$DIR/keystone.out" env OS_KEYSTONE_CONFIG_DIR="$DIR" PYTHONWARNINGS=ignore \
  "$VENV/bin/gunicorn" --no-control-socket --chdir "$DIR" -b "127.0.0.1:$KPORT" -w "$WORKERS" --timeout 120 \
  keystone_ci_wsgi:application
for i in $(seq 1 240); do
  ks_ready && break
  alive "$(cat "$DIR/keystone.pid")" || { echo "keystone died:" >&2; tail -30 "$DIR/keystone.out" >&2; exit 1; }
  ((i < 240)) || { echo "keystone not ready" >&2; tail -30 "$DIR/keystone.out" "$DIR/keystone.log" >&2; exit 1; }
  sleep 0.25
done

# 5. Keystone objects for Heat and tests (idempotent)
phase "keystone ready; creating demo user, app credential$([[ $WITH_HEAT == 1 ]] && echo ", heat service user + domain + catalog entries")"
cat >"$DIR/ks-setup.py" <<'PY'
import os
from keystoneauth1 import session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client

E = os.environ
auth = v3.Password(auth_url=E['KS'], username='admin', password=E['ADMIN_PW'], user_domain_id='default',
                   project_name='admin', project_domain_id='default')
ks = client.Client(session=session.Session(auth=auth))
default = ks.domains.get('default')

def find(manager, name, **kw):
    found = manager.list(name=name, **kw)
    return found[0] if found else None

def role(name):
    return find(ks.roles, name) or ks.roles.create(name=name)

def project(name, domain, desc):
    return find(ks.projects, name, domain=domain) or ks.projects.create(name, domain, description=desc)

def user(name, domain, pw, **kw):
    u = find(ks.users, name, domain=domain) or ks.users.create(name, domain=domain, password=pw, **kw)
    return u

admin_role, member_role, reader_role = role('admin'), role('member'), role('reader')
service_role = role('service')
role('heat_stack_user')                         # given by Heat to the users it creates for stacks
admin_project = find(ks.projects, 'admin', domain=default)
admin = find(ks.users, 'admin', domain=default)
# demo: an ordinary project member
demo_p = project('demo', default, 'CI demo project')
demo = user('demo', default, E['DEMO_PW'], default_project=demo_p)
for r in (member_role, reader_role):
    ks.roles.grant(r, user=demo, project=demo_p)
# application credential for admin@admin (secret cannot be read back -> recreate)
# (GET ...?name=X answers 404 when there is none -> list all and filter here)
for old in ks.application_credentials.list(user=admin.id):
    if old.name == 'ci-appcred':
        ks.application_credentials.delete(old, user=admin.id)
ac = ks.application_credentials.create('ci-appcred', user=admin.id, secret=E['APPCRED_SECRET'],
                                       description='CI application credential')
if E['WITH_HEAT'] == '1':
    service_p = project('service', default, 'services')
    heat = user('heat', default, E['SERVICE_PW'])
    for r in (admin_role, service_role):
        ks.roles.grant(r, user=heat, project=service_p)
    hdom = find(ks.domains, 'heat') or ks.domains.create('heat', description='Users and projects created by heat')
    hadm = user('heat_domain_admin', hdom, E['SERVICE_PW'])
    ks.roles.grant(admin_role, user=hadm, domain=hdom)
    svc = find(ks.services, 'heat') or ks.services.create('heat', type='orchestration', description='Orchestration')
    have = {e.interface: e for e in ks.endpoints.list(service=svc)}
    for iface in ('public', 'internal', 'admin'):
        if iface not in have:
            ks.endpoints.create(svc, E['HEAT_PUBLIC'], interface=iface, region='RegionOne')
        elif have[iface].url != E['HEAT_PUBLIC']:
            ks.endpoints.update(have[iface], url=E['HEAT_PUBLIC'])
with open(os.path.join(E['DIR'], 'admin_project_id'), 'w') as f:
    f.write(admin_project.id)
with open(os.path.join(E['DIR'], 'appcred_id'), 'w') as f:
    f.write(ac.id)
PY
env KS="$KS" ADMIN_PW="$ADMIN_PW" SERVICE_PW="$SERVICE_PW" DEMO_PW="$DEMO_PW" APPCRED_SECRET="$APPCRED_SECRET" \
  WITH_HEAT="$WITH_HEAT" HEAT_PUBLIC="$HEAT_BASE/%(tenant_id)s" DIR="$DIR" PYTHONWARNINGS=ignore \
  "$VENV/bin/python" "$DIR/ks-setup.py" >"$DIR/ks-setup.log" 2>&1 || { cat "$DIR/ks-setup.log" >&2; exit 1; }

if [[ $WITH_HEAT != 1 ]]; then print_env; exit 0; fi

# 6. Heat
phase "heat: db_sync + start on 127.0.0.1:$HPORT"
cat >"$DIR/heat.conf" <<CONF
[DEFAULT]
transport_url = fake:/
host = ks-ci
num_engine_workers = 1
auth_encryption_key = 0123456789abcdef0123456789abcdef
rpc_response_timeout = 120
log_file = $DIR/heat.log
region_name_for_services = RegionOne
stack_user_domain_name = heat
stack_domain_admin = heat_domain_admin
stack_domain_admin_password = $SERVICE_PW
[paste_deploy]
api_paste_config = $VENV/etc/heat/api-paste.ini
[database]
connection = postgresql+psycopg2://postgres@127.0.0.1:$PGPORT/heat
[keystone_authtoken]
www_authenticate_uri = $KS
auth_url = http://127.0.0.1:$KPORT
auth_type = password
username = heat
password = $SERVICE_PW
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = RegionOne
service_token_roles_required = true
token_cache_time = $TOKEN_CACHE
[trustee]
auth_type = password
auth_url = http://127.0.0.1:$KPORT
username = heat
password = $SERVICE_PW
user_domain_name = Default
[clients_keystone]
auth_uri = http://127.0.0.1:$KPORT
[ec2authtoken]
auth_uri = $KS
[oslo_messaging_notifications]
driver = noop
[oslo_policy]
enforce_scope = false
enforce_new_defaults = false
CONF
PYTHONWARNINGS=ignore "$VENV/bin/heat-manage" --config-file "$DIR/heat.conf" db_sync >"$DIR/db_sync.log" 2>&1
: >"$DIR/heat.out"
launch "$DIR/heat.pid" "$DIR/heat.out" env HEAT_CI_BIND="127.0.0.1:$HPORT" PYTHONWARNINGS=ignore \
  "$VENV/bin/python" "$HEAT_ALL" --config-file "$DIR/heat.conf"
for _ in $(seq 1 120); do
  if [[ "$(code "$HEAT_BASE/x/stacks")" == 401 ]] && heat_ready; then print_env; exit 0; fi
  alive "$(cat "$DIR/heat.pid")" || { echo "heat died:" >&2; tail -30 "$DIR/heat.out" "$DIR/heat.log" >&2; exit 1; }
  sleep 0.5
done
echo "heat not ready" >&2; tail -30 "$DIR/heat.log" >&2; exit 1
