#!/usr/bin/env bash
# The read ratio of shared/perf/read-ratio.sh, plus what each request costs
# (issue 8): CPU per request of the server and of all `postgres` processes
# (utime+stime from /proc, 10 ms ticks), and PostgreSQL commits during each
# run (read-only statements count too: commits - requests = audit batches).
# Does not build: BIN=<release ostwerk> (default target/release/ostwerk),
# BASELINE_TARGET=<target dir of the built shared/perf/baseline>.
# HOOK='<SQL>' runs on the seeded database before serving (e.g. to try an
# index); PERF=1 records `perf` profiles of both servers (/tmp/perf.data,
# /tmp/perfb.data). Benchmarks only: CI does not run this.
set -u
export PGUSER=${PGUSER:-ostwerk} PGPASSWORD=${PGPASSWORD:-ostwerk}
bin=${BIN:-target/release/ostwerk}; base=${BASELINE_TARGET:-/tmp/ostwerk-baseline-target}/release/baseline
secret="read-ratio-secret-read-ratio-secret-0123456789"
db="ostwerk_ratio_$$"
psql -h 127.0.0.1 -d postgres -qc "CREATE DATABASE $db" >/dev/null || { echo "read ratio: no postgres"; exit 1; }
url="postgres://$PGUSER:$PGPASSWORD@127.0.0.1:5432/$db"
trap 'kill $opid $bpid 2>/dev/null; wait 2>/dev/null; psql -h 127.0.0.1 -d postgres -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1' EXIT
DATABASE_URL=$url OSTWERK_JWT_SECRET=$secret "$bin" seed --clients 100000 >/dev/null 2>&1 || { echo "read ratio: seed failed"; exit 1; }
[ -n "${HOOK:-}" ] && psql -h 127.0.0.1 -d $db -qc "$HOOK"
DATABASE_URL=$url OSTWERK_ADDR=127.0.0.1:18471 OSTWERK_JWT_SECRET=$secret OSTWERK_RATE_LIMIT=0 OSTWERK_LOG=warn "$bin" serve >/tmp/ratio-ostwerk.log 2>&1 & opid=$!
PG="host=127.0.0.1 user=$PGUSER password=$PGPASSWORD dbname=$db" SQL='SELECT row_to_json(c)::text FROM clients c WHERE id = $1' \
  ADDR=127.0.0.1:18472 POOL=8 SECRET=$secret "$base" & bpid=$!
for _ in $(seq 60); do curl -fs http://127.0.0.1:18471/readyz >/dev/null && break; sleep 0.5; done
psql -h 127.0.0.1 -d $db -Atc "SELECT id FROM clients ORDER BY random() LIMIT 1000" > /tmp/ratio-ids.txt
tok=$(OSTWERK_JWT_SECRET=$secret "$bin" token --role caseworker --sub ratio)
cat > /tmp/ratio-ids.lua <<LUA
local ids = {}
for line in io.lines("/tmp/ratio-ids.txt") do ids[#ids+1] = line end
local prefix = os.getenv("PREFIX")
request = function()
  return wrk.format("GET", prefix .. ids[math.random(#ids)], {["Authorization"] = "Bearer $tok"})
end
LUA
ticks() { local t=0; for p in "$@"; do [ -r /proc/$p/stat ] && t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
pgticks() { ticks $(pgrep -x postgres); }
xacts() { psql -h 127.0.0.1 -d postgres -Atc "select sum(xact_commit) from pg_stat_database"; }
measure() { local x0; x0=$(xacts); local s0 p0; s0=$(ticks $3); p0=$(pgticks); local out; out=$(run $1 $2); local s1 p1; s1=$(ticks $3); p1=$(pgticks);
  local n; n=$(echo "$out" | awk '/requests in/{print $1}'); echo "$out"; echo "COMMITS $(( $(xacts) - x0 )) " >&2; echo "CPUPERREQ server $(( (s1-s0)*10000000/n/1000 )) us pg $(( (p1-p0)*10000000/n/1000 )) us ($n req)" >&2; }
run() { PREFIX=$2 wrk -t2 -c32 -d${DUR:-10}s --latency -s /tmp/ratio-ids.lua "$1" 2>&1; }
run http://127.0.0.1:18471 /api/v1/clients/ >/dev/null   # warm-up
[ -n "${PERF:-}" ] && { perf record -F 4000 -g -p $opid -o /tmp/perf.data -- sleep 8 >/dev/null 2>&1 & perfpid=$!; }
o=$(measure http://127.0.0.1:18471 /api/v1/clients/ $opid); [ -n "${PERF:-}" ] && wait $perfpid; [ -n "${PERF:-}" ] && { perf record -F 4000 -g -p $bpid -o /tmp/perfb.data -- sleep 8 >/dev/null 2>&1 & perfpid=$!; }
b=$(measure http://127.0.0.1:18472 / $bpid); [ -n "${PERF:-}" ] && wait $perfpid;
orps=$(echo "$o" | awk '/Requests\/sec/{print $2}'); brps=$(echo "$b" | awk '/Requests\/sec/{print $2}')
o99=$(echo "$o" | awk '$1=="99%"{print $2}'); non2xx=$(echo "$o" | awk '/Non-2xx/{print $NF}')
ratio=$(python3 -c "print(round($orps/$brps,3))")
echo "read ratio $ratio (ostwerk $orps rps p99 $o99 non-2xx ${non2xx:-0} / baseline $brps rps)"
python3 -c "import sys; sys.exit(0 if $ratio >= 0.6 and '${non2xx:-0}'=='0' else 1)"
