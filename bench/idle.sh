#!/usr/bin/env bash
# Memory of `sockit echo` holding many idle TCP connections (default 10,000),
# next to the minimal tokio echo server for reference. Prints the resident
# set size of each server once every connection is accepted.
#   bench/idle.sh [CONNECTIONS]
source "$(dirname "$0")/lib.sh"
CONNS=${1:-10000}
need_fds "$CONNS"
build --example tokio_echo
TOKIO="$ROOT/target/release/examples/tokio_echo"
trap 'stop_server' EXIT

measure() { # measure NAME CMD...
    local name=$1 port
    shift
    port=$(free_port)
    start_server "$port" "$@" "127.0.0.1:$port"
    python3 - "$port" "$CONNS" "$SERVER_PID" "$name" <<'PY'
import os, socket, sys, time
port, conns, pid, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
def fds():
    return len(os.listdir(f"/proc/{pid}/fd"))
base_fds, base_rss = fds(), rss_kib()
socks = []
for _ in range(conns):
    s = socket.socket()
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    socks.append(s)
# Wait (bounded) until the server has accepted every connection.
end = time.time() + 60
while fds() < base_fds + conns:
    if time.time() > end:
        sys.exit(f"{name}: only {fds() - base_fds} of {conns} accepted")
    time.sleep(0.1)
rss = rss_kib()
print(f"{name:<14}{conns:>8} idle  RSS {rss / 1024:7.1f} MiB  (at start {base_rss / 1024:.1f} MiB, {(rss - base_rss) * 1024 / conns:.0f} B/conn)")
for s in socks:
    s.close()
PY
    stop_server
}

measure sockit "$SOCKIT" -q echo
measure tokio-minimal "$TOKIO"
