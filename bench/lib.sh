# Shared helpers for the bench scripts: build, free ports, start/stop servers
# pinned to one core, and the medians table.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SOCKIT="$ROOT/target/release/sockit"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"

build() {
    (cd "$ROOT" && cargo build --release --locked --quiet --bin sockit "$@")
}

# apt-get install the named packages if their commands are missing.
ensure() { # ensure CMD PKG [CMD PKG]...
    local missing=()
    while (($#)); do
        command -v "$1" >/dev/null || missing+=("$2")
        shift 2
    done
    if ((${#missing[@]})); then
        local sudo=""
        [[ $(id -u) -eq 0 ]] || sudo=sudo
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# need_fds N: raises the open-files limit to the hard limit and fails if
# that is still below N plus some headroom (client and server share it).
need_fds() {
    ulimit -n "$(ulimit -Hn)"
    if (($(ulimit -n) < $1 + 100)); then
        echo "error: open-files hard limit $(ulimit -Hn) is below $1 connections" >&2
        exit 1
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

free_udp_port() {
    python3 -c 'import socket; s=socket.socket(type=socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits (bounded) until something accepts on 127.0.0.1:$1.
wait_port() {
    python3 - "$1" <<'PY'
import socket, sys, time
end = time.time() + 10
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        break
    except OSError:
        if time.time() > end:
            sys.exit("server did not come up on port " + sys.argv[1])
        time.sleep(0.05)
PY
}

# Waits (bounded) until a UDP socket is bound to 127.0.0.1:$1.
wait_udp_port() {
    python3 - "$1" <<'PY'
import sys, time
want = ":%04X" % int(sys.argv[1])
end = time.time() + 10
while not any(want in line.split()[1] for line in open("/proc/net/udp").readlines()[1:]):
    if time.time() > end:
        sys.exit("server did not bind udp port " + sys.argv[1])
    time.sleep(0.05)
PY
}

# start_server PORT CMD...: runs CMD pinned to SERVER_CPU in the background,
# sets SERVER_PID, and waits for the TCP port (start_udp_server: UDP port).
# Its stderr goes to SERVER_LOG.
start_server() { launch wait_port "$@"; }
start_udp_server() { launch wait_udp_port "$@"; }

launch() {
    local wait=$1 port=$2
    shift 2
    taskset -c "$SERVER_CPU" "$@" >/dev/null 2>"${SERVER_LOG:-/tmp/sockit-bench-server.log}" &
    SERVER_PID=$!
    "$wait" "$port"
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    # socat/ncat fork children per connection; take them down too.
    pkill -P "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

# medians RESULTS_FILE: prints the medians per (case, server) and the ratio of
# the row named "sockit" to each. Lines are "case<TAB>server<TAB>json".
medians() {
    python3 - "$1" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    case, server, blob = line.rstrip("\n").split("\t", 2)
    rows.setdefault(case, {}).setdefault(server, []).append(json.loads(blob))
for case, servers in rows.items():
    print(f"\n## {case}")
    print(f"{'server':<14}{'runs':>5}{'rate/s (median)':>16}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'lost':>7}{'sockit / this':>15}")
    # bench echo/udp report "rate", bench fanout "deliveries_per_sec".
    rate = lambda r: r.get("rate", r.get("deliveries_per_sec", 0))
    med = {s: statistics.median(rate(r) for r in rs) for s, rs in servers.items()}
    base = med.get("sockit")
    for s, rs in servers.items():
        p50 = statistics.median(r["p50_ms"] for r in rs)
        p99 = statistics.median(r["p99_ms"] for r in rs)
        errs = sum(r.get("errors", 0) for r in rs)
        lost = sum(r.get("lost", 0) for r in rs)
        ratio = f"{base / med[s]:.2f}x" if base and med[s] else "-"
        print(f"{s:<14}{len(rs):>5}{med[s]:>16.0f}{p50:>9.3f}{p99:>9.3f}{errs:>8}{lost:>7}{ratio:>15}")
PY
}

# iperf3_gbps JSON: the received rate of an `iperf3 --json` run, Gbit/s.
iperf3_gbps() {
    python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9)' <<<"$1"
}

# cpu_ticks: "busy total" jiffies of SERVER_CPU and LOAD_CPU, for busy().
cpu_ticks() {
    awk -v s="cpu$SERVER_CPU" -v l="cpu$LOAD_CPU" '
        $1 == s || $1 == l { busy = $2 + $3 + $4 + $7 + $8; total = busy + $5 + $6
                             printf "%d %d ", busy, total }' /proc/stat
}

# busy BEFORE AFTER: the server's and the load's CPU busy percentages
# between two cpu_ticks samples, "server% load%", to tell which one was
# the bottleneck.
busy() {
    python3 -c '
import sys
a, b = list(map(int, sys.argv[1].split())), list(map(int, sys.argv[2].split()))
pct = lambda i: 100 * (b[i] - a[i]) / max(1, b[i + 1] - a[i + 1])
print(f"{pct(0):.0f} {pct(2):.0f}")' "$1" "$2"
}

# busy_table FILE: the median busy share of both cores per (case, server),
# from lines "case<TAB>server<TAB>server%<TAB>load%".
busy_table() {
    echo "## core busy, median % (server core $SERVER_CPU, load core $LOAD_CPU)"
    python3 - "$1" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    case, name, sb, lb = line.rstrip("\n").split("\t")
    rows.setdefault((case, name), []).append((float(sb), float(lb)))
for (case, name), v in rows.items():
    print(f"{case:<30}{name:<10} server {statistics.median(x for x, _ in v):5.0f}%  load {statistics.median(y for _, y in v):5.0f}%")
PY
}
