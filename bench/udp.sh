#!/usr/bin/env bash
# UDP request/response: `sockit bench udp` (16 requests in flight) against
# sockit's UDP echo and format-time services and the anchors sockperf server
# and socat, alternating in one run. Server on CPU $SERVER_CPU, load on
# CPU $LOAD_CPU. Messages to echo servers are 64-byte sockperf pings, which
# sockperf answers and echo servers return unchanged.
#   bench/udp.sh [ROUNDS] [SECONDS]
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-5}
SECS=${2:-3}
ensure socat socat sockperf sockperf taskset util-linux
build
OUT=$(mktemp)
trap 'stop_server; rm -f "$OUT"' EXIT
PING=$(printf 'x%.0s' $(seq 64))

run_case() { # run_case NAME
    local name=$1 port load=(--sockperf --payload "$PING")
    port=$(free_udp_port)
    case $name in
    sockit) start_udp_server "$port" "$SOCKIT" -q echo --udp "127.0.0.1:$port" ;;
    sockperf) start_udp_server "$port" sockperf server -i 127.0.0.1 -p "$port" ;;
    socat) start_udp_server "$port" socat "UDP-RECVFROM:$port,bind=127.0.0.1,fork" EXEC:cat ;;
    format-time)
        start_udp_server "$port" "$SOCKIT" -q time serve "127.0.0.1:$port"
        load=(--payload '%Y-%m-%d %X')
        ;;
    esac
    local json
    json=$(taskset -c "$LOAD_CPU" "$SOCKIT" bench udp "127.0.0.1:$port" \
        -c 16 -d "$SECS" "${load[@]}" --json)
    stop_server
    printf '%s\t%s\t%s\n' "16 in flight" "$name" "$json" >>"$OUT"
    echo "round $r $name: $json" >&2
}

for r in $(seq 1 "$ROUNDS"); do
    for name in sockit sockperf socat format-time; do
        run_case "$name"
    done
done
medians "$OUT"
python3 - "$OUT" <<'PY'
import json, statistics, sys
rates = {}
for line in open(sys.argv[1]):
    _, server, blob = line.rstrip("\n").split("\t", 2)
    rates.setdefault(server, []).append(json.loads(blob)["rate"])
med = {s: statistics.median(r) for s, r in rates.items()}
print("\ntargets")
print(f"  sockit echo / sockperf server  {med['sockit'] / med['sockperf']:.2f}x  (>= 0.9)")
print(f"  sockit echo / socat            {med['sockit'] / med['socat']:.0f}x  (>= 50)")
print(f"  format-time / sockperf server  {med['format-time'] / med['sockperf']:.2f}x  (>= 0.7)")
PY
