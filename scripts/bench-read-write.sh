#!/usr/bin/env bash
# Read path against the raw baseline, POST referral, cold start (issue 8).
# Sourced by scripts/bench.sh once its server is up; uses its BIN, DATABASE_URL,
# OSTWERK_ADDR, OSTWERK_JWT_SECRET, CW, PID and WORK. Needs wrk (apt-get install wrk).
# Each part is one function so other parts of the benchmark merge next to them.
#
#   BASELINE=/path/to/shared/perf/baseline   the raw actix + tokio-postgres server
#                                            (PostgreSQL only; skipped without it)
#   WRK_SECONDS=10 WRK_CONNECTIONS=32        the load of each wrk run

WRK_SECONDS="${WRK_SECONDS:-10}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-32}"

# "rps p50 p99 non2xx" of one wrk output.
wrk_figures() {
  awk '/Requests\/sec/{rps=$2} $1=="50%"{p50=$2} $1=="99%"{p99=$2} /Non-2xx/{bad=$NF}
       END{printf "%s rps  p50 %s  p99 %s  non-2xx %s\n", rps, p50, p99, (bad==""?0:bad)}'
}

rss_of() { grep VmRSS "/proc/$1/status" | awk '{print $2/1024 " MiB"}'; }

# GET /api/v1/clients/{id} (auth + durable audit) next to the baseline's
# one-SELECT read of the same table, same wrk load, one after the other.
bench_read_vs_baseline() {
  echo "== read path: Ostwerk vs raw baseline (wrk -t2 -c$WRK_CONNECTIONS, ${WRK_SECONDS}s each)"
  if [[ "$DATABASE_URL" != postgres* ]]; then echo "   skipped: the baseline reads PostgreSQL"; return; fi
  if [[ -z "${BASELINE:-}" ]]; then echo "   skipped: set BASELINE=<dir of shared/perf/baseline>"; return; fi
  (cd "$BASELINE" && CARGO_TARGET_DIR="${BASELINE_TARGET:-/tmp/ostwerk-baseline-target}" cargo build --release -q) || return
  local base="${BASELINE_TARGET:-/tmp/ostwerk-baseline-target}/release/baseline"
  local pg; pg=$(python3 -c "import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(f'host={p.hostname} port={p.port or 5432} user={p.username} password={p.password} dbname={p.path[1:]}')" "$DATABASE_URL")
  PG="$pg" SQL='SELECT row_to_json(c)::text FROM clients c WHERE id = $1' ADDR=127.0.0.1:18472 POOL=8 \
    SECRET="$OSTWERK_JWT_SECRET" "$base" & local bpid=$!
  psql "$DATABASE_URL" -Atc "SELECT id FROM clients WHERE status <> 'erased' ORDER BY random() LIMIT 1000" > "$WORK/ids.txt"
  cat > "$WORK/ids.lua" <<LUA
local ids = {}
for line in io.lines("$WORK/ids.txt") do ids[#ids+1] = line end
local prefix = os.getenv("PREFIX")
request = function()
  return wrk.format("GET", prefix .. ids[math.random(#ids)], {["Authorization"] = "Bearer $CW"})
end
LUA
  sleep 1
  run_wrk() { PREFIX=$2 wrk -t2 -c"$WRK_CONNECTIONS" -d"${WRK_SECONDS}s" --latency -s "$WORK/ids.lua" "$1" 2>&1; }
  run_wrk "http://$OSTWERK_ADDR" /api/v1/clients/ >/dev/null   # warm-up
  local o b
  o=$(run_wrk "http://$OSTWERK_ADDR" /api/v1/clients/); b=$(run_wrk http://127.0.0.1:18472 /)
  kill "$bpid" 2>/dev/null; wait "$bpid" 2>/dev/null || true
  printf '   %-40s %s\n' "Ostwerk GET /api/v1/clients/{id}" "$(echo "$o" | wrk_figures)"
  printf '   %-40s %s\n' "baseline GET /{id}" "$(echo "$b" | wrk_figures)"
  python3 -c "import sys; o,b=float(sys.argv[1]),float(sys.argv[2]); print(f'   ratio {o/b:.3f}')" \
    "$(echo "$o" | awk '/Requests\/sec/{print $2}')" "$(echo "$b" | awk '/Requests\/sec/{print $2}')"
  echo "   server RSS: $(rss_of "$PID")"
}

# POST /api/v1/referrals with an Idempotency-Key per request: eligibility,
# insert, first event, webhook outbox, audit and the stored answer in one
# transaction. Each request refers another (client, measure) pair, so none
# is a duplicate; the measures are open to everyone.
bench_post_referral() {
  echo "== POST /api/v1/referrals with Idempotency-Key (wrk -t2 -c$WRK_CONNECTIONS, ${WRK_SECONDS}s)"
  local h=(-H "Authorization: Bearer $CW" -H "content-type: application/json")
  local provider measures=()
  provider=$(curl -fsS "${h[@]}" "http://$OSTWERK_ADDR/api/v1/providers" \
    -d '{"name":"Bench Bildung gGmbH","kind":"training_provider"}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["id"])') || return
  for i in $(seq 1 20); do
    measures+=("$(curl -fsS "${h[@]}" "http://$OSTWERK_ADDR/api/v1/measures" -d "{\"provider_id\":\"$provider\",
      \"title\":\"Bench $i\",\"kind\":\"application_training\",\"funding\":\"sgb3_45\",\"target_groups\":[],
      \"district\":\"21\",\"capacity\":1000,\"status\":\"open\"}" | python3 -c 'import sys,json;print(json.load(sys.stdin)["id"])')") || return
  done
  printf '%s\n' "${measures[@]}" > "$WORK/measures.txt"
  fetch_client_ids 20000 > "$WORK/clients.txt"
  cat > "$WORK/post.lua" <<LUA
local clients, measures = {}, {}
for line in io.lines("$WORK/clients.txt") do clients[#clients+1] = line end
for line in io.lines("$WORK/measures.txt") do measures[#measures+1] = line end
local counter = 0
local thread_no = 0
setup = function(thread) thread_no = thread_no + 1; thread:set("no", thread_no) end
init = function() counter = 0 end
request = function()
  counter = counter + 1
  local k = counter * 2 + no  -- threads take the even and odd pairs
  local c = clients[(k % #clients) + 1]
  local m = measures[(math.floor(k / #clients) % #measures) + 1]
  local body = '{"client_id":"' .. c .. '","measure_id":"' .. m .. '"}'
  return wrk.format("POST", "/api/v1/referrals", {["Authorization"] = "Bearer $CW",
    ["Content-Type"] = "application/json", ["Idempotency-Key"] = "bench-" .. no .. "-" .. counter .. "-$$"}, body)
end
LUA
  local out
  out=$(wrk -t2 -c"$WRK_CONNECTIONS" -d"${WRK_SECONDS}s" --latency -s "$WORK/post.lua" "http://$OSTWERK_ADDR" 2>&1)
  printf '   %-40s %s\n' "POST /api/v1/referrals" "$(echo "$out" | wrk_figures)"
  echo "   server RSS: $(rss_of "$PID")"
}

# Client ids through the API (visible to the caseworker), newest first.
fetch_client_ids() {
  python3 - "$1" "http://$OSTWERK_ADDR" "$CW" <<'PY'
import json, sys, urllib.request
want, base, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ids, cursor = [], None
while len(ids) < want:
    url = f"{base}/api/v1/clients?limit=200" + (f"&cursor={cursor}" if cursor else "")
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    page = json.load(urllib.request.urlopen(req))
    ids += [c["id"] for c in page["items"]]
    cursor = page.get("next_cursor")
    if not cursor:
        break
print("\n".join(ids[:want]))
PY
}

# From `serve` on an empty database (all migrations) to the first 200 of
# /readyz, polled every 10 ms; best of 3.
bench_cold_start() {
  echo "== cold start on an empty database (migrations included), best of 3"
  local best=""
  for i in 1 2 3; do
    local url db=""
    if [[ "$DATABASE_URL" == postgres* ]]; then
      db="ostwerk_cold_$$_$i"
      psql "${DATABASE_URL%/*}/postgres" -qc "CREATE DATABASE $db" >/dev/null || return
      url="${DATABASE_URL%/*}/$db"
    else
      url="sqlite://$WORK/cold-$i.db?mode=rwc"
    fi
    local started took
    started=$(date +%s.%N)
    DATABASE_URL=$url OSTWERK_ADDR=127.0.0.1:18473 "$BIN" serve >/dev/null 2>&1 & local cpid=$!
    until curl -fs http://127.0.0.1:18473/readyz >/dev/null 2>&1; do sleep 0.01; done
    took=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 3))" "$started" "$(date +%s.%N)")
    kill "$cpid"; wait "$cpid" 2>/dev/null || true
    [[ -n "$db" ]] && psql "${DATABASE_URL%/*}/postgres" -qc "DROP DATABASE $db" >/dev/null
    echo "   run $i: ${took} s"
    if [[ -z "$best" ]] || python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$took" "$best"; then best=$took; fi
  done
  echo "   cold start: ${best} s"
}
