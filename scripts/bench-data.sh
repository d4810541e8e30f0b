#!/usr/bin/env bash
# Statistics, matching, seeding and memory figures (issue 8; not part of CI).
# Sourced by scripts/bench.sh (after its read/POST runs), or run alone:
#
#   scripts/bench-data.sh                                   # SQLite
#   DATA_DB_PREFIX=postgres://ostwerk:ostwerk@127.0.0.1:5432/ scripts/bench-data.sh
#   DATA_SIZES="100000:1000000" scripts/bench-data.sh       # one size only
#
# Own functions and an own server per data size, apart from the read/POST
# figures of scripts/bench.sh. For each size in DATA_SIZES (clients:referrals) it
# seeds a fresh database with the bulk seeder (time + peak RSS), serves it
# with the statistics cache off (every request computes), and prints
# rps/p50/p99 for demand and outcome statistics and matching, then the
# server's RSS. Skip with DATA_BENCH=0; DATA_DB_PREFIX=postgres://u:p@host/
# runs it on PostgreSQL (one database per size, created with `createdb`-like
# SQL through psql, dropped afterwards).
DATA_SIZES="${DATA_SIZES:-10000:100000 100000:1000000}"
DATA_SECONDS="${DATA_SECONDS:-10}"

data_url() { # $1 = name; a fresh database URL
  if [ -n "${DATA_DB_PREFIX:-}" ]; then
    psql "${DATA_DB_PREFIX}postgres" -qc "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
    echo "${DATA_DB_PREFIX}$1"
  else
    echo "sqlite://$WORK/$1.db?mode=rwc"
  fi
}

data_rss() { awk '/VmRSS|VmHWM/ {printf "%s %s MB  ", $1, int($2/1024)}' "/proc/$1/status"; echo; }

data_serve() { # starts a server on $DATABASE_URL with the statistics cache off; sets DPID
  OSTWERK_STATS_CACHE_SECS=0 OSTWERK_ADDR="127.0.0.1:$DATA_PORT" "$BIN" serve & DPID=$!
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$DATA_PORT/readyz" >/dev/null 2>&1 && return; sleep 0.2; done
  echo "server did not come up" >&2; return 1
}

data_run() { # label concurrency paths...
  local label=$1 conc=$2; shift 2
  printf '%-58s ' "$label"
  "$LOADGEN" "http://127.0.0.1:$DATA_PORT" "$DTOKEN" "$conc" "$DATA_SECONDS" "$@"
}

bench_data_size() { # clients referrals
  local clients=$1 referrals=$2 name="ostwerk_bench_${1}_${2}"
  local url; url=$(data_url "$name")
  echo "== $clients clients, $referrals referrals ($([ -n "${DATA_DB_PREFIX:-}" ] && echo PostgreSQL || echo SQLite))"
  DATABASE_URL="$url" /usr/bin/time -f "seed --clients $clients --referrals $referrals: %e s, peak RSS %M KiB" \
    "$BIN" seed --clients "$clients" --referrals "$referrals"
  # Fresh planner statistics after a bulk load (autovacuum lags behind it).
  if [ -n "${DATA_DB_PREFIX:-}" ]; then psql "$url" -qc ANALYZE; fi
  DATABASE_URL="$url" data_serve
  DTOKEN=$(DATABASE_URL="$url" "$BIN" token --role analyst --sub bench-analyst --ttl 3600)
  local cw; cw=$(DATABASE_URL="$url" "$BIN" token --role caseworker --sub bench --ttl 3600)
  local client; client=$(curl -fsS "http://127.0.0.1:$DATA_PORT/api/v1/clients?limit=1&status=active" -H "Authorization: Bearer $cw" \
    | python3 -c 'import sys,json;print(json.load(sys.stdin)["items"][0]["id"])')
  printf '%-58s ' "server RSS after start"; data_rss "$DPID"
  # The heavy-request limit allows 2 statistics requests per principal at a time.
  data_run "GET statistics/demand?group_by=district,target_group" 1 "/api/v1/statistics/demand?group_by=district,target_group"
  data_run "  the same, 2 concurrent" 2 "/api/v1/statistics/demand?group_by=district,target_group"
  data_run "GET statistics/demand?group_by=measure_kind,occupation_field" 1 "/api/v1/statistics/demand?group_by=measure_kind,occupation_field"
  data_run "GET statistics/outcomes?group_by=measure_kind" 1 "/api/v1/statistics/outcomes?group_by=measure_kind"
  printf '%-58s ' "server RSS after the statistics calls"; data_rss "$DPID"
  DTOKEN=$cw data_run "GET clients/{id}/matches (audited)" "$CONCURRENCY" "/api/v1/clients/$client/matches"
  printf '%-58s ' "server RSS at the end"; data_rss "$DPID"
  kill "$DPID"; wait "$DPID" 2>/dev/null || true
  if [ -n "${DATA_DB_PREFIX:-}" ]; then psql "${DATA_DB_PREFIX}postgres" -qc "DROP DATABASE IF EXISTS $name" >/dev/null; fi
}

bench_data() {
  DATA_PORT=$((PORT + 1))
  trap 'kill "${PID:-0}" "${DPID:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
  for size in $DATA_SIZES; do bench_data_size "${size%%:*}" "${size##*:}"; done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  cd "$(dirname "$0")/.."
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ostwerk-target}"
  PORT="${PORT:-18080}"
  CONCURRENCY="${CONCURRENCY:-32}"
  WORK="$(mktemp -d)"
  trap 'kill "${DPID:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
  cargo build --release --bin ostwerk --example loadgen
  BIN="$CARGO_TARGET_DIR/release/ostwerk"
  LOADGEN="$CARGO_TARGET_DIR/release/examples/loadgen"
  export OSTWERK_JWT_SECRET="${OSTWERK_JWT_SECRET:-bench-secret-bench-secret-bench-secret-42}"
  export OSTWERK_RATE_LIMIT=0
  export OSTWERK_LOG=warn
  bench_data
fi
