#!/bin/sh
# bench_tcp_lab - echo throughput through the TAP lab: the same Linux client
# (tests/system/tcp_client.py bulk) against sluiced's echo service over the
# TAP, and against a Linux echo server on loopback in the same namespace.
# Usage: perf/bench tcp-lab [MBYTES]   (default 100). Needs root.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
lab=$root/tests/lab
client=$root/tests/system/tcp_client.py
mb=${1:-100}
bytes=$((mb * 1000 * 1000))
trap '"$lab" down >/dev/null 2>&1 || true' EXIT
"$lab" down >/dev/null 2>&1 || true
eval "$("$lab" up | grep -E '^(SLUICE|PEER)_ADDR=')"
field() { /usr/bin/python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(d['$1'] if d['match'] else 'MISMATCH')"; }
tap=$("$lab" exec /usr/bin/python3 "$client" bulk "$SLUICE_ADDR" 7 "$bytes" --max-seconds 300 | field mbytes_per_s)
"$lab" exec ip link set lo up
"$lab" exec /usr/bin/python3 "$client" echo-server 7007 --max-seconds 300 &
srv=$!
sleep 1
lo=$("$lab" exec /usr/bin/python3 "$client" bulk 127.0.0.1 7007 "$bytes" --max-seconds 300 | field mbytes_per_s)
kill "$srv" 2>/dev/null || true
wait "$srv" 2>/dev/null || true
printf '%-44s %12s\n' "echo round trip, ${mb} MB, one connection" "MB/s"
printf '%-44s %12s\n' "sluiced over TAP (net_tap PMD, 1 queue)" "$tap"
printf '%-44s %12s\n' "Linux stack on loopback (python echo server)" "$lo"
echo "summary: tcp-lab echo ${mb} MB: sluiced/TAP $tap MB/s, Linux/loopback $lo MB/s"
