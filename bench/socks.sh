#!/usr/bin/env bash
# SOCKS5 throughput: iperf3 through `sockit socks`, microsocks and dante,
# with 1 and 4 parallel streams, alternating in one run. The proxy runs on
# CPU $SERVER_CPU; iperf3's client and server on CPU $LOAD_CPU. iperf3 has
# no SOCKS support of its own, so proxychains4 carries its connections
# (control and data) through the proxy under test.
#   bench/socks.sh [ROUNDS] [SECONDS]
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-3}
SECS=${2:-5}
ensure iperf3 iperf3 microsocks microsocks danted dante-server proxychains4 proxychains4 taskset util-linux
build
OUT=$(mktemp)
BUSY=$(mktemp)
WORK=$(mktemp -d)
trap 'stop_server; kill $IPERF 2>/dev/null || true; rm -rf "$OUT" "$BUSY" "$WORK"' EXIT

IPORT=$(free_port)
taskset -c "$LOAD_CPU" iperf3 -s -B 127.0.0.1 -p "$IPORT" >/dev/null 2>&1 &
IPERF=$!
wait_port "$IPORT"

run_case() { # run_case NAME STREAMS
    local name=$1 streams=$2 port
    port=$(free_port)
    case $name in
    sockit) start_server "$port" "$SOCKIT" -q socks "127.0.0.1:$port" ;;
    microsocks) start_server "$port" microsocks -i 127.0.0.1 -p "$port" ;;
    dante)
        cat >"$WORK/danted.conf" <<EOF
logoutput: /dev/null
internal: 127.0.0.1 port = $port
external: 127.0.0.1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect }
EOF
        start_server "$port" danted -f "$WORK/danted.conf"
        ;;
    esac
    cat >"$WORK/proxychains.conf" <<EOF
strict_chain
quiet_mode
tcp_read_time_out 15000
tcp_connect_time_out 8000
[ProxyList]
socks5 127.0.0.1 $port
EOF
    local before after json
    before=$(cpu_ticks)
    json=$(taskset -c "$LOAD_CPU" proxychains4 -q -f "$WORK/proxychains.conf" \
        iperf3 -c 127.0.0.1 -p "$IPORT" -t "$SECS" -P "$streams" --json)
    after=$(cpu_ticks)
    stop_server
    local gbps
    gbps=$(iperf3_gbps "$json")
    printf '%s\t%s\t%s\n' "$streams" "$name" "$gbps" >>"$OUT"
    printf '%s\t%s\t%s\n' "$streams stream(s)" "$name" "$(busy "$before" "$after" | tr ' ' '\t')" >>"$BUSY"
    echo "round $r $name -P $streams: $gbps Gbit/s" >&2
}

for r in $(seq 1 "$ROUNDS"); do
    for streams in 1 4; do
        for name in sockit microsocks dante; do
            run_case "$name" "$streams"
        done
    done
done
python3 - "$OUT" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    streams, name, gbps = line.split()
    rows.setdefault(streams, {}).setdefault(name, []).append(float(gbps))
for streams, by in rows.items():
    print(f"\n## iperf3 -P {streams} through the proxy")
    print(f"{'proxy':<12}{'runs':>5}{'Gbit/s (median)':>17}{'sockit / this':>15}")
    med = {n: statistics.median(v) for n, v in by.items()}
    for n, v in by.items():
        print(f"{n:<12}{len(v):>5}{med[n]:>17.2f}{med['sockit'] / med[n]:>14.2f}x")
    print(f"target sockit / microsocks >= 1.5x: {'met' if med['sockit'] / med['microsocks'] >= 1.5 else 'MISSED'}")
PY
busy_table "$BUSY"
