#!/usr/bin/env bash
# Instructions per audited client read (issue 8), counted by valgrind's
# callgrind: repeatable for one binary whatever else the machine is doing,
# unlike requests per second (docs/BENCHMARKS.md). One HTTP worker runs under
# callgrind; after a warm-up its counters are zeroed, wrk reads random
# clients for DUR seconds (default 20), the counters are dumped, and the
# total is divided by the audit rows written meanwhile (one per read; the
# audit writer's batches are included). Prints the per-request figure and
# the profile's path (`callgrind_annotate --inclusive=yes <file>` shows
# where it goes). Needs valgrind, wrk and PostgreSQL on 127.0.0.1 with a role
# that may create databases (PGUSER/PGPASSWORD, default ostwerk/ostwerk).
# BIN=<release ostwerk> (default target/release/ostwerk). Benchmarks only:
# CI does not run this.
set -u
export PGUSER=${PGUSER:-ostwerk} PGPASSWORD=${PGPASSWORD:-ostwerk}
bin=${BIN:-target/release/ostwerk}
secret="read-callgrind-secret-read-callgrind-secret-0123"
db="ostwerk_callgrind_$$"; out=$(mktemp -d); port=18491
psql -h 127.0.0.1 -d postgres -qc "CREATE DATABASE $db" >/dev/null || { echo "read callgrind: no postgres"; exit 1; }
url="postgres://$PGUSER:$PGPASSWORD@127.0.0.1:5432/$db"
trap 'kill $pid 2>/dev/null; wait 2>/dev/null; psql -h 127.0.0.1 -d postgres -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1' EXIT
DATABASE_URL=$url OSTWERK_JWT_SECRET=$secret "$bin" seed --clients 10000 >/dev/null 2>&1 || { echo "read callgrind: seed failed"; exit 1; }
DATABASE_URL=$url OSTWERK_ADDR=127.0.0.1:$port OSTWERK_JWT_SECRET=$secret OSTWERK_RATE_LIMIT=0 OSTWERK_LOG=warn OSTWERK_WORKERS=1 \
  valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" "$bin" serve >"$out/server.log" 2>&1 & pid=$!
for _ in $(seq 120); do curl -fs http://127.0.0.1:$port/readyz >/dev/null && break; sleep 0.5; done
psql -h 127.0.0.1 -d $db -Atc "SELECT id FROM clients ORDER BY random() LIMIT 1000" > "$out/ids.txt"
tok=$(OSTWERK_JWT_SECRET=$secret "$bin" token --role caseworker --sub callgrind)
cat > "$out/ids.lua" <<LUA
local ids = {}
for line in io.lines("$out/ids.txt") do ids[#ids+1] = line end
request = function()
  return wrk.format("GET", "/api/v1/clients/" .. ids[math.random(#ids)], {["Authorization"] = "Bearer $tok"})
end
LUA
audited() { psql -h 127.0.0.1 -d $db -Atc "SELECT count(*) FROM audit_events WHERE action = 'client.read'"; }
wrk -t1 -c8 -d5s -s "$out/ids.lua" http://127.0.0.1:$port >/dev/null 2>&1   # warm-up
callgrind_control -z $pid >/dev/null 2>&1
n0=$(audited)
wrk -t1 -c8 -d${DUR:-20}s -s "$out/ids.lua" http://127.0.0.1:$port | grep -E "Non-2xx" && echo "read callgrind: errors"
callgrind_control -d $pid >/dev/null 2>&1
n1=$(audited)
total=$(callgrind_annotate "$out/callgrind.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
echo "instructions per read $((total / (n1 - n0))) ($((n1 - n0)) reads; profile $out/callgrind.out.1)"
