#!/usr/bin/env bash
# Makes sure the local PostgreSQL and Redis that Engram uses by default are
# answering: starts them when they are installed but stopped, and installs
# them (Debian/Ubuntu, as root) when they are missing. Redis is optional:
# without it Engram uses its in-memory cache.
#
#   scripts/services.sh            # PostgreSQL required, Redis best effort
#   scripts/services.sh --require-redis
set -uo pipefail

require_redis=0
[ "${1:-}" = "--require-redis" ] && require_redis=1

say() { echo "services: $*" >&2; }

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

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
    say "PostgreSQL is not answering on 127.0.0.1:5432; start it or set ENGRAM_DATABASE_URL"
    exit 1
  fi
  # A fresh cluster only trusts the postgres user: let the current OS user in.
  me=$(id -un)
  if ! psql -h 127.0.0.1 -d postgres -c 'select 1' >/dev/null 2>&1; then
    as_root su postgres -c "psql -q -c \"DO \\\$\\\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$me') THEN CREATE ROLE \\\"$me\\\" LOGIN SUPERUSER; END IF; END\\\$\\\$;\"" >/dev/null 2>&1 || true
  fi
fi
say "PostgreSQL is answering on 127.0.0.1:5432"

if ! redis_up; then
  command -v redis-server >/dev/null || apt_install redis-server || say "could not install Redis"
  if command -v redis-server >/dev/null; then
    say "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null 2>&1 || true
    wait_for redis redis_up 10 || true
  fi
fi
if redis_up; then
  say "Redis is answering on 127.0.0.1:6379"
elif [ "$require_redis" -eq 1 ]; then
  say "Redis is not answering on 127.0.0.1:6379"
  exit 1
else
  say "Redis is not answering; Engram will use its in-memory cache"
fi
