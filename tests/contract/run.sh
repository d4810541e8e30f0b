#!/usr/bin/env bash
# The contract step of CI (.ci/run): the committed OpenAPI document lints clean,
# generated clients work against a served instance, and schemathesis finds
# nothing on SQLite and on PostgreSQL. Needs the debug binary
# ($CARGO_TARGET_DIR/debug/ostwerk; builds it if missing), node/npm, python3,
# and for the PostgreSQL run a server where the role ostwerk/ostwerk may
# CREATE DATABASE (PG_URL). Tools come pinned from package-lock.json and
# requirements.txt, cached under ~/.cache.
#
#   tests/contract/run.sh                 # everything
#   tests/contract/run.sh lint ts python  # only some parts (lint owasp ts python generator fuzz-sqlite fuzz-postgres)
#   tests/contract/run.sh fuzz-sqlite fuzz-postgres
#   ST_MAX_TIME=600 tests/contract/run.sh fuzz-sqlite   # a longer fuzz run
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ostwerk-target}"
# CONTRACT_SPEC: check another document (e.g. a branch's draft) with the same tools.
SPEC="${CONTRACT_SPEC:-$ROOT/openapi/openapi.json}"
BIN="$CARGO_TARGET_DIR/debug/ostwerk"
VENV="${CONTRACT_VENV:-$HOME/.cache/ostwerk-contract-venv}"
NODE_CACHE="${CONTRACT_NODE_CACHE:-$HOME/.cache/ostwerk-contract-node}"
PG_URL="${PG_URL:-postgres://ostwerk:ostwerk@127.0.0.1:5432/postgres}"
SEED="${ST_SEED:-1}"
# Budget per database: ~2.5 min on a 2-core machine keeps the whole step
# under 8 minutes. Raise both for a deeper run on demand.
ST_MAX_TIME="${ST_MAX_TIME:-150}"
ST_MAX_EXAMPLES="${ST_MAX_EXAMPLES:-25}"
SECRET="contract-secret-contract-secret-contract"
PARTS=("$@")
[ ${#PARTS[@]} -gt 0 ] || PARTS=(lint owasp ts python generator fuzz-sqlite fuzz-postgres)

WORK="$(mktemp -d)"
PID=""
stop_server() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; fi
}
trap 'stop_server; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

say() { printf '\n--> %s\n' "$*"; }

# ---- tools -----------------------------------------------------------------
node_tools() {
    # node_modules lives in a cache keyed by the lock file; tests/contract only
    # gets a symlink, so the clone stays clean and a reused machine skips npm.
    local key dir
    key="$(sha256sum "$HERE/package-lock.json" | cut -c1-16)"
    dir="$NODE_CACHE/$key"
    if [ ! -d "$dir/node_modules" ]; then
        mkdir -p "$dir"
        cp "$HERE/package.json" "$HERE/package-lock.json" "$dir/"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
    # A node_modules of a local `npm install` is replaced by the pinned one.
    [ -L "$HERE/node_modules" ] || rm -rf "$HERE/node_modules"
    ln -sfn "$dir/node_modules" "$HERE/node_modules"
}
python_tools() {
    local stamp="$VENV/.requirements.sha256" want
    want="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
    if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
        echo "$want" >"$stamp"
    fi
}
binary() {
    [ -x "$BIN" ] || cargo build --bin ostwerk
}

# ---- a served instance -----------------------------------------------------
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# serve DATABASE_URL: starts the binary on a free loopback port with the
# limits off (schemathesis sends thousands of requests from one principal).
serve() {
    stop_server
    export DATABASE_URL="$1"
    export OSTWERK_JWT_SECRET="$SECRET"
    export OSTWERK_ADDR="127.0.0.1:$(free_port)"
    export OSTWERK_RATE_LIMIT=0 OSTWERK_RATE_LIMIT_ANON=0 OSTWERK_HEAVY_CONCURRENCY=0 OSTWERK_STATS_CACHE_SECS=0
    export OSTWERK_LOG="${OSTWERK_LOG:-warn}"
    BASE="http://$OSTWERK_ADDR"
    "$BIN" serve >"$WORK/server.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 150); do
        curl -fsS "$BASE/readyz" >/dev/null 2>&1 && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.2
    done
    cat "$WORK/server.log"
    echo "the service did not become ready on $BASE" >&2
    return 1
}
token() { "$BIN" token --ttl 3600 "$@"; }
fresh_pg_db() {
    local name="ostwerk_contract_$1_$$"
    psql "$PG_URL" -v ON_ERROR_STOP=1 -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >/dev/null
    echo "${PG_URL%/*}/$name"
}
drop_pg_db() {
    psql "$PG_URL" -qc "DROP DATABASE IF EXISTS ostwerk_contract_$1_$$ WITH (FORCE)" >/dev/null || true
}
server_errors() {
    # A 500 that schemathesis did not classify still fails the run.
    if grep -q 'request failed.*internal' "$WORK/server.log"; then
        echo "server errors logged:" >&2
        grep 'request failed.*internal' "$WORK/server.log" | tail -20 >&2
        return 1
    fi
}

# ---- parts -----------------------------------------------------------------
part_lint() {
    node_tools
    local status=0
    # Both linters run even when the first one fails: one CI log shows all findings.
    say "redocly lint (recommended; warnings fail too)"
    (cd "$HERE" && npx --no-install redocly lint --config redocly.yaml "$SPEC" 2>&1) \
        | tee "$WORK/redocly.log" | grep -vE '║|╔|╚' || status=1
    # Redocly exits 0 on warnings ("You have 2 warnings."); the contract has none.
    if grep -qE 'You have [0-9]+ warning' "$WORK/redocly.log"; then status=1; fi
    say "spectral lint (spectral:oas; warnings fail too)"
    (cd "$HERE" && npx --no-install spectral lint --fail-severity=warn --ruleset .spectral.yaml "$SPEC") || status=1
    return "$status"
}

part_owasp() {
    node_tools
    say "spectral with the OWASP ruleset (any finding fails; rules that do not apply are off in .spectral-owasp.yaml, each with its reason)"
    (cd "$HERE" && npx --no-install spectral lint --fail-severity=warn --ruleset .spectral-owasp.yaml "$SPEC")
}

part_ts() {
    node_tools
    binary
    say "openapi-typescript (must not warn) + tsc --noEmit"
    rm -rf "$HERE/generated"
    mkdir -p "$HERE/generated"
    (cd "$HERE" && npx --no-install openapi-typescript "$SPEC" --redocly redocly.yaml \
        -o generated/ostwerk.d.ts 2>&1) | tee "$WORK/ots.log"
    # Its lint findings (the Redocly ones, per redocly.yaml) are marked ⚠ / ✘.
    if grep -qE '⚠|✘' "$WORK/ots.log" || [ ! -s "$HERE/generated/ostwerk.d.ts" ]; then
        echo "openapi-typescript reported problems (see above)" >&2
        return 1
    fi
    (cd "$HERE" && npx --no-install tsc --noEmit -p tsconfig.json)
    # No `any` and no suppressed errors: the program must type-check as written.
    if grep -nE '\bany\b|@ts-(expect-error|ignore|nocheck)' "$HERE/closed_loop.ts"; then
        echo "closed_loop.ts uses any or suppresses a type error" >&2
        return 1
    fi
    say "closed loop with the TypeScript client (openapi-fetch)"
    (cd "$HERE" && npx --no-install tsc -p tsconfig.json --noEmit false)
    serve "sqlite://$WORK/ts.db?mode=rwc"
    CONTRACT_URL="$BASE" CONTRACT_BIN="$BIN" node "$HERE/generated/js/closed_loop.js"
    server_errors
    stop_server
}

part_python() {
    python_tools
    binary
    say "openapi-python-client generate"
    rm -rf "$WORK/pyclient"
    (cd "$WORK" && "$VENV/bin/openapi-python-client" generate --path "$SPEC" --meta none \
        --config "$HERE/openapi-python-client.yaml" --output-path "$WORK/pyclient/ostwerk_client" 2>&1) \
        | tee "$WORK/opc.log"
    # Anything besides the "Generating <path>" line is a warning or an error.
    if grep -v '^Generating ' "$WORK/opc.log" | grep -q '[^[:space:]]'; then echo "openapi-python-client warned" >&2; return 1; fi
    serve "sqlite://$WORK/py.db?mode=rwc"
    say "closed loop with the generated Python client"
    PYTHONPATH="$WORK/pyclient" CONTRACT_URL="$BASE" CONTRACT_BIN="$BIN" \
        "$VENV/bin/python" "$HERE/closed_loop.py"
    server_errors
    stop_server
}

part_generator() {
    python_tools
    binary
    command -v java >/dev/null || { echo "openapi-generator needs Java 17 (java not found)" >&2; return 1; }
    say "openapi-generator (python, defaults) generate"
    rm -rf "$WORK/ogen"
    "$VENV/bin/openapi-generator-cli" generate -i "$SPEC" -g python -o "$WORK/ogen" \
        --package-name ostwerk_gen >"$WORK/ogen.log" 2>&1 || { cat "$WORK/ogen.log"; return 1; }
    serve "sqlite://$WORK/gen.db?mode=rwc"
    say "employers listed and referrals polled with openapi-generator's Python client"
    PYTHONPATH="$WORK/ogen" CONTRACT_URL="$BASE" CONTRACT_BIN="$BIN" \
        "$VENV/bin/python" "$HERE/generator_loop.py"
    server_errors
    stop_server
}

# Known unavoidable false positives, excluded by check name:
# - positive_data_acceptance: schema-valid data the server rightly refuses by
#   rules no schema can state (district codes from the database, dates relative
#   to today, ids that must exist, "exactly one of measure_id and vacancy_id").
# Per-operation expected statuses (412 as a rejection) live in schemathesis.toml,
# each with its reason.
EXCLUDED_CHECKS="positive_data_acceptance"
fuzz() {
    local db_url="$1" label="$2" tok status=0
    python_tools
    binary
    serve "$db_url"
    tok="$(token --role admin --sub "contract-fuzz-$label")"
    say "schemathesis on $label (seed $SEED, ≤ ${ST_MAX_TIME}s, ≤ $ST_MAX_EXAMPLES examples per operation)"
    # From the temp dir: schemathesis keeps its example cache in the working directory.
    # --request-timeout 40: `GET /api/v1/events?wait=N` may hold a request for
    # up to 30 s by contract (a long poll with no new events); schemathesis'
    # default of 10 s would call that a network error.
    (cd "$WORK" && "$VENV/bin/schemathesis" --config-file "$HERE/schemathesis.toml" run "$BASE/api-docs/openapi.json" \
        -H "Authorization: Bearer $tok" \
        --checks all --exclude-checks "$EXCLUDED_CHECKS" \
        --seed "$SEED" --max-examples "$ST_MAX_EXAMPLES" --max-time "$ST_MAX_TIME" \
        --workers 1 --no-color --generation-database none \
        --request-timeout 40) || status=$?
    server_errors || status=1
    stop_server
    return "$status"
}
part_fuzz-sqlite() { fuzz "sqlite://$WORK/fuzz.db?mode=rwc" sqlite; }
part_fuzz-postgres() {
    local url status=0
    url="$(fresh_pg_db fuzz)"
    fuzz "$url" postgres || status=$?
    drop_pg_db fuzz
    return "$status"
}

if [ "${1:-}" = "--one" ]; then
    # One part in its own process: `set -e` holds inside it (it would not in
    # a function called as `part || ...`).
    "part_$2"
    exit 0
fi
failed=()
for part in "${PARTS[@]}"; do
    say "contract: $part"
    "$HERE/$(basename "$0")" --one "$part" || failed+=("$part")
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "contract parts failed: ${failed[*]}" >&2
    exit 1
fi
echo "contract: all parts passed"
