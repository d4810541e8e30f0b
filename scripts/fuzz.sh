#!/usr/bin/env bash
# On-demand contract fuzzing for long runs (CI runs a bounded one in
# tests/contract/run.sh on empty databases): builds the service, serves it on
# a fresh, demo-seeded database, and runs schemathesis against its own OpenAPI
# document with every check. Installs schemathesis into a venv under ~/.cache
# on first use. Extra arguments go to `schemathesis run`.
#
#   scripts/fuzz.sh                                # SQLite, admin, 50 examples per operation
#   ROLE=caseworker MAX_EXAMPLES=200 scripts/fuzz.sh
#   DB=postgres://ostwerk:ostwerk@127.0.0.1:5432/ostwerk_fuzz scripts/fuzz.sh   # an empty database you created
#   scripts/fuzz.sh --phases fuzzing --include-path-regex referrals
#   scripts/fuzz.sh --report junit --report-dir "$PWD/fuzz-report"   # absolute: it runs in a temp dir
#
# Known noise (see the failure list it prints): a random `cursor` (400
# invalid-cursor), a random `If-Match` (412), an erased client (410), an
# Idempotency-Key replayed with another body (422), `27.0` for an integer
# (400), rules no schema can state (district codes from the database, dates
# relative to today, "exactly one of measure_id and vacancy_id").
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ostwerk-target}"
ROLE="${ROLE:-admin}"
MAX_EXAMPLES="${MAX_EXAMPLES:-50}"
SEED="${SEED:-1}"
PORT="${PORT:-18600}"
# One worker: with two, schemathesis 4.32 on CPython 3.11 now and then dies
# in its coverage phase ("AST constructor recursion depth mismatch", a
# thread-safety bug in hypothesis' lambda introspection), not in the service.
WORKERS="${WORKERS:-1}"
VENV="${ST_VENV:-$HOME/.cache/st-venv}"
# The version CI pins (tests/contract/requirements.txt), so both runs agree.
ST_VERSION="${ST_VERSION:-$(sed -n 's/^schemathesis==//p' tests/contract/requirements.txt)}"
WORK="$(mktemp -d)"
trap 'kill "${PID:-0}" 2>/dev/null || true; wait "${PID:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

if [ ! -x "$VENV/bin/schemathesis" ]; then
    echo "== installing schemathesis $ST_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "schemathesis==$ST_VERSION"
fi
"$VENV/bin/schemathesis" --version

cargo build --bin ostwerk
BIN="$CARGO_TARGET_DIR/debug/ostwerk"

export DATABASE_URL="${DB:-sqlite://$WORK/fuzz.db?mode=rwc}"
export OSTWERK_JWT_SECRET="fuzz-secret-fuzz-secret-fuzz-secret-fuzz"
export OSTWERK_ADDR="127.0.0.1:$PORT"
export OSTWERK_RATE_LIMIT=0
export OSTWERK_LOG="${OSTWERK_LOG:-warn}"

echo "== seeding ($DATABASE_URL)"
"$BIN" seed --demo >/dev/null
"$BIN" serve >"$WORK/server.log" 2>&1 & PID=$!
for _ in $(seq 1 100); do curl -fsS "http://$OSTWERK_ADDR/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "http://$OSTWERK_ADDR/readyz" >/dev/null

ORG=()
case "$ROLE" in
    provider | employer)
        ADMIN=$("$BIN" token --role admin --sub fuzz-setup)
        things=$([ "$ROLE" = provider ] && echo providers || echo employers)
        id=$(curl -fsS "http://$OSTWERK_ADDR/api/v1/$things?limit=1" -H "Authorization: Bearer $ADMIN" \
            | python3 -c 'import sys, json; print(json.load(sys.stdin)["items"][0]["id"])')
        ORG=(--org "$id") ;;
    jobcenter) ORG=(--org jc-leipzig) ;;
esac
TOKEN=$("$BIN" token --role "$ROLE" --sub "fuzz-$ROLE" --ttl 7200 "${ORG[@]}")

echo "== schemathesis as $ROLE, $MAX_EXAMPLES examples per operation, seed $SEED"
status=0
# From the temp dir: schemathesis keeps its example cache (.schemathesis/) in
# the working directory, and it does not belong in the repository.
(cd "$WORK" && "$VENV/bin/schemathesis" run "http://$OSTWERK_ADDR/api-docs/openapi.json" \
    -H "Authorization: Bearer $TOKEN" \
    --checks all --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers "$WORKERS" --no-color \
    "$@") || status=$?

if grep -q 'request failed.*internal' "$WORK/server.log"; then
    echo "== server errors logged:"
    grep 'request failed.*internal' "$WORK/server.log" | tail -20
fi
exit "$status"
