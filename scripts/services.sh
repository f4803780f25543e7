#!/usr/bin/env bash
# Makes sure the local PostgreSQL and Redis that Engram uses by default are
# answering: starts them when they are installed but stopped, and installs
# them (Debian/Ubuntu, as root) when they are missing. Redis is optional:
# without it Engram uses its in-memory cache.
#
# The servers checked are those of ENGRAM_DATABASE_URL and ENGRAM_REDIS_URL
# (read from the environment, else from ./.env), with Engram's defaults
# (127.0.0.1:5432 and 127.0.0.1:6379). Only a server on this machine is
# started or installed; a remote one is only checked. An empty
# ENGRAM_REDIS_URL means no Redis: it is not checked.
#
#   scripts/services.sh            # PostgreSQL required, Redis best effort
#   scripts/services.sh --require-redis
set -uo pipefail

require_redis=0
[ "${1:-}" = "--require-redis" ] && require_redis=1

say() { echo "services: $*" >&2; }

# env_value NAME: the variable from the environment, else from ./.env; the
# status is 1 when it is set in neither.
env_value() {
  if [ -n "${!1+set}" ]; then printf '%s' "${!1}"; return 0; fi
  [ -f .env ] || return 1
  local line
  line=$(grep -E "^[[:space:]]*(export[[:space:]]+)?$1=" .env | tail -n 1) || return 1
  line=${line#*=}
  line=${line%\"}; line=${line#\"}; line=${line%\'}; line=${line#\'}
  printf '%s' "$line"
}

# url_host_port URL DEFAULT_PORT: "host port" of a postgres:// or redis://
# URL (user, password, path and query dropped; [v6] brackets removed).
url_host_port() {
  local rest=${1#*://} host port
  rest=${rest%%/*}; rest=${rest%%\?*}; rest=${rest##*@}
  if [[ $rest == \[* ]]; then
    host=${rest%%]*}; host=${host#[}; port=${rest##*]}; port=${port#:}
  else
    host=${rest%%:*}; port=${rest#"$host"}; port=${port#:}
  fi
  printf '%s %s' "${host:-127.0.0.1}" "${port:-$2}"
}

is_local() { case "$1" in 127.*|localhost|::1) return 0;; *) return 1;; esac; }

db_url=$(env_value ENGRAM_DATABASE_URL) || db_url="postgres://127.0.0.1:5432/engram"
[ -n "$db_url" ] || db_url="postgres://127.0.0.1:5432/engram"
read -r pg_host pg_port <<<"$(url_host_port "$db_url" 5432)"
redis_url=$(env_value ENGRAM_REDIS_URL) || redis_url="redis://127.0.0.1:6379/0"
redis_host="" redis_port=""
[ -n "$redis_url" ] && read -r redis_host redis_port <<<"$(url_host_port "$redis_url" 6379)"

pg_up() { pg_isready -h "$pg_host" -p "$pg_port" -q 2>/dev/null; }
redis_up() { redis-cli -h "$redis_host" -p "$redis_port" ping 2>/dev/null | grep -q PONG; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

apt_install() {
  command -v apt-get >/dev/null || return 1
  say "installing $* (apt-get)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 ||
    { as_root apt-get update -q >/dev/null 2>&1 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1; }
}

wait_for() { # name check seconds
  local i
  for i in $(seq 1 "$3"); do "$2" && return 0; sleep 1; done
  return 1
}

if ! pg_up && ! is_local "$pg_host"; then
  say "PostgreSQL is not answering on $pg_host:$pg_port (ENGRAM_DATABASE_URL); start it there"
  exit 1
fi
if ! pg_up; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql postgresql-contrib || say "could not install PostgreSQL"
  fi
  if ls /etc/postgresql/*/main >/dev/null 2>&1; then
    say "starting PostgreSQL"
    ver=$(ls /etc/postgresql | sort -V | tail -n 1)
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start >/dev/null 2>&1 || true
  fi
  if ! wait_for postgres pg_up 30; then
    say "PostgreSQL is not answering on $pg_host:$pg_port; start it or set ENGRAM_DATABASE_URL"
    exit 1
  fi
  # A fresh cluster only trusts the postgres user: let the current OS user in.
  me=$(id -un)
  if ! psql -h "$pg_host" -p "$pg_port" -d postgres -c 'select 1' >/dev/null 2>&1; then
    as_root su postgres -c "psql -q -c \"DO \\\$\\\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$me') THEN CREATE ROLE \\\"$me\\\" LOGIN SUPERUSER; END IF; END\\\$\\\$;\"" >/dev/null 2>&1 || true
  fi
fi
say "PostgreSQL is answering on $pg_host:$pg_port"

if [ -z "$redis_url" ]; then
  say "ENGRAM_REDIS_URL is empty: no Redis; Engram will use its in-memory cache"
  exit 0
fi
if ! redis_up && is_local "$redis_host"; then
  command -v redis-server >/dev/null || apt_install redis-server || say "could not install Redis"
  if command -v redis-server >/dev/null; then
    say "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no >/dev/null 2>&1 || true
    wait_for redis redis_up 10 || true
  fi
fi
if redis_up; then
  say "Redis is answering on $redis_host:$redis_port"
elif [ "$require_redis" -eq 1 ]; then
  say "Redis is not answering on $redis_host:$redis_port"
  exit 1
else
  say "Redis is not answering on $redis_host:$redis_port; Engram will use its in-memory cache"
fi
