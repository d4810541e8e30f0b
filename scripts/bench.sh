#!/usr/bin/env bash
# On-demand benchmark (not part of CI): builds release, seeds a database with
# the demo plus N synthetic clients, serves it, and drives read-heavy load with
# examples/loadgen.rs. Reports throughput, latency percentiles and peak RSS.
#
#   scripts/bench.sh                 # SQLite, 100 000 clients
#   CLIENTS=20000 DB=postgres://ostwerk:ostwerk@127.0.0.1/ostwerk_bench scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ostwerk-target}"
CLIENTS="${CLIENTS:-100000}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-15}"
CONCURRENCY="${CONCURRENCY:-32}"
PORT="${PORT:-18080}"
WORK="$(mktemp -d)"
trap 'kill "${PID:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --bin ostwerk --example loadgen
BIN="$CARGO_TARGET_DIR/release/ostwerk"
LOADGEN="$CARGO_TARGET_DIR/release/examples/loadgen"

export DATABASE_URL="${DB:-sqlite://$WORK/bench.db?mode=rwc}"
export OSTWERK_JWT_SECRET="bench-secret-bench-secret-bench-secret-42"
export OSTWERK_ADDR="127.0.0.1:$PORT"
export OSTWERK_RATE_LIMIT=0
export OSTWERK_LOG=warn

echo "== seeding ($DATABASE_URL)"
/usr/bin/time -f "seed: %e s, peak RSS %M KiB" "$BIN" seed --demo --clients "$CLIENTS" --referrals 2000

"$BIN" serve & PID=$!
for _ in $(seq 1 50); do curl -fsS "http://$OSTWERK_ADDR/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
CW=$("$BIN" token --role caseworker --sub bench --ttl 3600)
PROVIDER=$(curl -fsS "http://$OSTWERK_ADDR/api/v1/providers?limit=1" -H "Authorization: Bearer $CW" | python3 -c 'import sys,json;print(json.load(sys.stdin)["items"][0]["id"])')
CLIENT=$(curl -fsS "http://$OSTWERK_ADDR/api/v1/clients?limit=1" -H "Authorization: Bearer $CW" | python3 -c 'import sys,json;print(json.load(sys.stdin)["items"][0]["id"])')

run() { printf '%-46s ' "$1"; shift; "$LOADGEN" "http://$OSTWERK_ADDR" "$CW" "$CONCURRENCY" "$SECONDS_PER_RUN" "$@"; }
echo "== load: $CONCURRENCY concurrent clients, $SECONDS_PER_RUN s each"
run "GET /livez (no auth, no db)" /livez
run "GET /api/v1/providers/{id}" "/api/v1/providers/$PROVIDER"
run "GET /api/v1/measures?has_free_seats=true" "/api/v1/measures?has_free_seats=true&limit=50"
run "GET /api/v1/clients/{id} (audited)" "/api/v1/clients/$CLIENT"
run "GET /api/v1/clients?q=an (audited list)" "/api/v1/clients?q=an&limit=50"
run "GET /api/v1/referrals?sort=updated_at" "/api/v1/referrals?sort=updated_at&limit=100"
run "GET /api/v1/clients/{id}/matches" "/api/v1/clients/$CLIENT/matches"
SECONDS_PER_RUN=5 CONCURRENCY=4 run "GET /api/v1/statistics/demand (10^5 clients)" "/api/v1/statistics/demand?group_by=district,target_group"
echo "== server peak RSS: $(grep VmHWM /proc/$PID/status | awk '{print $2, $3}')"

# ---- read path vs raw baseline, POST referral, cold start (needs wrk) ----
if command -v wrk >/dev/null; then
  # shellcheck source=scripts/bench-read-write.sh
  source scripts/bench-read-write.sh
  bench_read_vs_baseline
  bench_post_referral
  bench_cold_start
else
  echo "== read vs baseline, POST referral, cold start: skipped (install wrk)"
fi

# --- Statistics, matching, seeding, memory (issue 8): scripts/bench-data.sh ---
if [ "${DATA_BENCH:-1}" = 1 ]; then
  # shellcheck source=scripts/bench-data.sh
  source scripts/bench-data.sh
  bench_data
fi
