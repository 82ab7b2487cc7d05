#!/usr/bin/env bash
# TCP relay throughput: iperf3 client -> relay -> iperf3 server, for direct
# (no relay: the loopback's own limit), sockit forward (splice), sockit
# forward --no-splice, the plain tokio copy_bidirectional relay, socat,
# rinetd and redir, alternating in one run; 1 and 4 streams. Then the relay's
# RSS with 1,000 open relayed connections.
# Relay on CPU $SERVER_CPU, iperf3 client and server on CPU $LOAD_CPU.
#   bench/forward.sh [ROUNDS] [SECONDS]
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-3}
SECS=${2:-3}
ensure iperf3 iperf3 socat socat rinetd rinetd taskset util-linux
# redir is optional: not every mirror carries it.
command -v redir >/dev/null || ensure redir redir 2>/dev/null || true
build --example tokio_relay
TOKIO="$ROOT/target/release/examples/tokio_relay"
OUT=$(mktemp)
IPERF_PID=
RINETD_CONF=$(mktemp)
trap 'stop_server; [[ -n $IPERF_PID ]] && kill $IPERF_PID 2>/dev/null; rm -f "$OUT" "$RINETD_CONF"' EXIT

RELAYS=(direct sockit sockit-copy tokio-copy socat rinetd)
command -v redir >/dev/null && RELAYS+=(redir)

IPERF_PORT=$(free_port)
taskset -c "$LOAD_CPU" iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT" >/dev/null 2>&1 &
IPERF_PID=$!
wait_port "$IPERF_PORT"

start_relay() { # start_relay NAME PORT
    local name=$1 port=$2 target="127.0.0.1:$IPERF_PORT"
    case $name in
    sockit) start_server "$port" "$SOCKIT" -q forward "127.0.0.1:$port" "$target" ;;
    sockit-copy) start_server "$port" "$SOCKIT" -q forward --no-splice "127.0.0.1:$port" "$target" ;;
    tokio-copy) start_server "$port" "$TOKIO" "127.0.0.1:$port" "$target" ;;
    socat) start_server "$port" socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "TCP:$target" ;;
    rinetd)
        printf '127.0.0.1 %s 127.0.0.1 %s\n' "$port" "$IPERF_PORT" >"$RINETD_CONF"
        start_server "$port" rinetd -f -c "$RINETD_CONF"
        ;;
    redir) start_server "$port" redir -n -l 127.0.0.1 -p "$port" -r 127.0.0.1 -P "$IPERF_PORT" 2>/dev/null \
        || start_server "$port" redir -n ":$port" "$target" ;;
    esac
}

run_case() { # run_case RELAY STREAMS
    local name=$1 streams=$2 port=$IPERF_PORT json
    if [[ $name != direct ]]; then
        port=$(free_port)
        start_relay "$name" "$port"
    fi
    json=$(taskset -c "$LOAD_CPU" iperf3 -c 127.0.0.1 -p "$port" -P "$streams" -t "$SECS" -J)
    [[ $name != direct ]] && stop_server
    local gbps
    gbps=$(iperf3_gbps "$json")
    printf '%s\t%s\t%s\n' "$streams" "$name" "$gbps" >>"$OUT"
    echo "round $r  $streams stream(s)  $name: $gbps Gbit/s" >&2
}

for r in $(seq 1 "$ROUNDS"); do
    for streams in 1 4; do
        for name in "${RELAYS[@]}"; do
            run_case "$name" "$streams"
        done
    done
done

python3 - "$OUT" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    streams, name, gbps = line.split("\t")
    rows.setdefault(streams, {}).setdefault(name, []).append(float(gbps))
for streams, relays in rows.items():
    med = {n: statistics.median(v) for n, v in relays.items()}
    print(f"\n## {streams} stream(s), Gbit/s")
    print(f"{'relay':<13}{'runs':>5}{'median':>9}{'of direct':>11}{'sockit / this':>15}")
    for n, v in relays.items():
        print(f"{n:<13}{len(v):>5}{med[n]:>9.2f}{med[n] / med['direct']:>10.2f}x{med['sockit'] / med[n]:>14.2f}x")
PY

# RSS with 1,000 relayed connections open, each having moved a little data.
need_fds 2200
rss_case() { # rss_case NAME
    local name=$1 port
    port=$(free_port)
    start_relay "$name" "$port"
    local kb
    kb=$(taskset -c "$LOAD_CPU" python3 - "$port" "$SERVER_PID" <<'PY'
import socket, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
conns = []
for _ in range(1000):
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    conns.append(c)
# The iperf3 server reads a 37-byte cookie first; any bytes will do to make
# every relay allocate its per-connection state.
for c in conns:
    c.sendall(b"x" * 37)
time.sleep(1)
print(next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")))
PY
)
    stop_server
    echo "$name $((kb / 1024)) MiB"
}
# iperf3 -s takes one test at a time; an echo server is a better sink here.
kill "$IPERF_PID" 2>/dev/null; wait "$IPERF_PID" 2>/dev/null || true
IPERF_PID=
ECHO_PORT=$(free_port)
taskset -c "$LOAD_CPU" "$SOCKIT" -q echo "127.0.0.1:$ECHO_PORT" 2>/dev/null &
IPERF_PID=$!
IPERF_PORT=$ECHO_PORT
wait_port "$ECHO_PORT"
echo
echo "## RSS with 1,000 open relayed connections"
for name in sockit tokio-copy; do rss_case "$name"; done
