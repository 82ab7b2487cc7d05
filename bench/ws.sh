#!/usr/bin/env bash
# WebSocket: memory of many idle clients on chat's --web socket (default
# 10,000; node's `ws` broadcast server beside it for reference), and
# fan-out over WebSocket to 1,000 subscribers against the broadcast server
# built on npm `ws` (bench/node/ws_broadcast.mjs), alternating in one run:
# blast deliveries/s and paced (100 messages/s) latency. Server on CPU
# $SERVER_CPU, load generator on CPU $LOAD_CPU; each case prints both
# cores' busy share, so it says which one was the limit.
#   bench/ws.sh [ROUNDS] [IDLE_CLIENTS]
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-3}
IDLE=${2:-10000}
ensure node nodejs npm npm taskset util-linux
(cd "$ROOT/bench/node" && npm ci --no-audit --no-fund --silent)
build
need_fds $((IDLE + 200))
OUT=$(mktemp)
BUSY=$(mktemp)
trap 'stop_server; rm -f "$OUT" "$BUSY"' EXIT

# start NAME PORT: the server under test, its WebSocket URL in $URL.
start() {
    local chat
    case $1 in
    sockit)
        chat=$(free_port)
        start_server "$2" "$SOCKIT" -q chat serve "127.0.0.1:$chat" --web "127.0.0.1:$2" \
            --rate 0 --max-conns $((IDLE + 2000)) --history 0
        URL="ws://127.0.0.1:$2/ws"
        ;;
    node)
        start_server "$2" node "$ROOT/bench/node/ws_broadcast.mjs" "$2"
        URL="ws://127.0.0.1:$2/"
        ;;
    esac
}

run_case() { # run_case SERVER SUBSCRIBERS MESSAGES [RATE]
    local name=$1 subs=$2 msgs=$3 rate=${4:-} port extra=() mode=blast json before
    port=$(free_port)
    start "$name" "$port"
    [[ -n $rate ]] && extra=(--rate "$rate") && mode="paced $rate/s"
    before=$(cpu_ticks)
    json=$(taskset -c "$LOAD_CPU" "$SOCKIT" bench fanout "$URL" -n "$subs" -m "$msgs" "${extra[@]}" --json)
    read -r sb lb <<<"$(busy "$before" "$(cpu_ticks)")"
    stop_server
    printf '%s\t%s\t%s\n' "$mode, $subs subscribers" "$name" "$json" >>"$OUT"
    printf '%s\t%s\t%s\t%s\n' "$mode, $subs subscribers" "$name" "$sb" "$lb" >>"$BUSY"
    echo "round $r $mode $subs $name (server ${sb}% load ${lb}%): $json" >&2
}

idle_rss() { # idle_rss SERVER: RSS of the server holding $IDLE idle clients
    local port
    port=$(free_port)
    start "$1" "$port"
    taskset -c "$LOAD_CPU" python3 - "$URL" "$IDLE" "$SERVER_PID" "$1" <<'PY'
import base64, os, socket, sys, time
url, n, pid, name = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
host, rest = url[len("ws://"):].split(":", 1)
port, path = rest.split("/", 1)
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
base = rss()
held = []
for i in range(n):
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT
    s.bind(("127.0.0.%d" % (2 + i // 20000), 0))
    s.settimeout(10)
    s.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /%s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, host, port, key)).encode())
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(4096)
    assert b" 101 " in got.split(b"\r\n")[0], got[:80]
    held.append(s)
time.sleep(2)
mib = rss()
verdict = "" if name != "sockit" else ("  (target < 100 MiB: %s)" % ("met" if mib < 100 else "MISSED"))
print(f"{name:<8}{n:>8} idle WebSocket clients: {mib:7.1f} MiB RSS ({(mib - base) * 1024 / n:.1f} KiB each){verdict}")
PY
    stop_server
}

echo "## idle WebSocket clients"
idle_rss sockit
idle_rss node
for r in $(seq 1 "$ROUNDS"); do
    for name in sockit node; do
        run_case "$name" 1000 1000
        run_case "$name" 1000 500 100
    done
done
medians "$OUT"
echo
busy_table "$BUSY"
