#!/usr/bin/env bash
# Memory of `sockit chat serve` with many connected idle clients (default
# 10,000): every client is greeted and sits in the lobby, nobody speaks.
#   bench/chat-idle.sh [CLIENTS]
source "$(dirname "$0")/lib.sh"
CLIENTS=${1:-10000}
need_fds "$CLIENTS"
build
trap 'stop_server' EXIT
port=$(free_port)
start_server "$port" "$SOCKIT" -q chat serve "127.0.0.1:$port" --max-clients "$CLIENTS"
python3 - "$port" "$CLIENTS" "$SERVER_PID" <<'PY'
import socket, sys, time
port, clients, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def rss_mib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
base = rss_mib()
socks = []
for i in range(clients):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    socks.append(s)
# Every client has been greeted once its welcome line arrives.
for s in socks:
    data = b""
    while b"welcome" not in data:
        data += s.recv(4096)
rss = rss_mib()
verdict = "ok" if rss < 100 else "OVER TARGET"
print(f"sockit chat serve  {clients} idle clients  RSS {rss:.1f} MiB "
      f"(at start {base:.1f} MiB, {(rss - base) * 1024 * 1024 / clients:.0f} B/client)  target < 100 MiB: {verdict}")
PY
