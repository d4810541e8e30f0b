#!/usr/bin/env bash
# POST /api/v1/referrals with an Idempotency-Key (bench_post_referral of
# scripts/bench-read-write.sh, 20 000 clients, 20 measures) plus what each
# request costs (issue 8): CPU per request of the server and of all
# `postgres` processes (utime+stime from /proc, 10 ms ticks) and PostgreSQL
# commits per request. Does not build: BIN=<release ostwerk> (default
# target/release/ostwerk). WRK_CONNECTIONS (32) and WRK_SECONDS (10) as in
# bench-read-write.sh; HOOK='<SQL>' runs on the seeded database before
# serving; PERF=1 records a system-wide `perf` profile of the run
# (/tmp/post-perf.data). Benchmarks only: CI does not run this.
set -u
cd "$(dirname "$0")/.."
export PGUSER=${PGUSER:-ostwerk} PGPASSWORD=${PGPASSWORD:-ostwerk}
bin=${BIN:-target/release/ostwerk}
db="ostwerk_post_$$"
psql -h 127.0.0.1 -d postgres -qc "CREATE DATABASE $db" >/dev/null || { echo "post bench: no postgres"; exit 1; }
export DATABASE_URL="postgres://$PGUSER:$PGPASSWORD@127.0.0.1:5432/$db"
export OSTWERK_JWT_SECRET="bench-secret-bench-secret-bench-secret-42" OSTWERK_ADDR=127.0.0.1:18475
export OSTWERK_RATE_LIMIT=0 OSTWERK_LOG=warn
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null; wait 2>/dev/null; psql -h 127.0.0.1 -d postgres -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1; rm -rf "$WORK"' EXIT
"$bin" seed --clients 20000 >/dev/null 2>&1 || { echo "post bench: seed failed"; exit 1; }
[ -n "${HOOK:-}" ] && psql -h 127.0.0.1 -d "$db" -qc "$HOOK"
"$bin" serve >"$WORK/serve.log" 2>&1 & PID=$!
for _ in $(seq 60); do curl -fs "http://$OSTWERK_ADDR/readyz" >/dev/null && break; sleep 0.5; done
CW=$("$bin" token --role caseworker --sub bench --ttl 3600)
BIN=$bin
# shellcheck source=scripts/bench-read-write.sh
source scripts/bench-read-write.sh
ticks() { local t=0; for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo $t; }
xacts() { psql -h 127.0.0.1 -d postgres -Atc "select sum(xact_commit) from pg_stat_database"; }
realwrk=$(command -v wrk)
# bench_post_referral's wrk, measured around (its output goes to a capture).
wrk() {
  local s0 p0 x0 s1 p1 n
  s0=$(ticks $PID); p0=$(ticks $(pgrep -x postgres)); x0=$(xacts)
  [ -n "${PERF:-}" ] && { perf record -a -g -F 999 -o /tmp/post-perf.data -- sleep 7 >/dev/null 2>&1 & }
  "$realwrk" "$@" >"$WORK/wrk.out"; cat "$WORK/wrk.out"
  s1=$(ticks $PID); p1=$(ticks $(pgrep -x postgres)); n=$(awk '/requests in/{print $1}' "$WORK/wrk.out")
  echo "   CPU per request: server $(( (s1-s0)*10000000/n/1000 )) us, postgres $(( (p1-p0)*10000000/n/1000 )) us;" \
    "commits per request $(python3 -c "print(round(($(xacts)-$x0)/$n,2))") ($n requests)" >>"$WORK/cpu.txt"
}
bench_post_referral
cat "$WORK/cpu.txt"
