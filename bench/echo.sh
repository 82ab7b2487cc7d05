#!/usr/bin/env bash
# Echo round trips: `sockit bench echo` against sockit echo, the minimal tokio
# echo (the ceiling), socat and ncat (the anchors), alternating in one run.
# Server on CPU $SERVER_CPU, load generator on CPU $LOAD_CPU.
#   bench/echo.sh [ROUNDS] [SECONDS]
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-5}
SECS=${2:-3}
ensure socat socat ncat ncat taskset util-linux
build --example tokio_echo
TOKIO="$ROOT/target/release/examples/tokio_echo"
OUT=$(mktemp)
trap 'stop_server; rm -f "$OUT"' EXIT

run_case() { # run_case SERVER CONNS
    local name=$1 conns=$2 port
    port=$(free_port)
    case $name in
    sockit) start_server "$port" "$SOCKIT" -q echo "127.0.0.1:$port" ;;
    tokio-minimal) start_server "$port" "$TOKIO" "127.0.0.1:$port" ;;
    socat-exec) start_server "$port" socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" EXEC:cat ;;
    socat-pipe) start_server "$port" socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" PIPE ;;
    ncat-exec) start_server "$port" ncat -k -l 127.0.0.1 "$port" --exec /bin/cat ;;
    esac
    local json
    json=$(taskset -c "$LOAD_CPU" "$SOCKIT" bench echo "127.0.0.1:$port" \
        -c "$conns" -d "$SECS" -s 64 --json)
    stop_server
    printf '%s conns, 64 B\t%s\t%s\n' "$conns" "$name" "$json" >>"$OUT"
    echo "round $r  $conns conns  $name: $json" >&2
}

for r in $(seq 1 "$ROUNDS"); do
    for conns in 1 100; do
        for name in sockit tokio-minimal socat-exec socat-pipe ncat-exec; do
            run_case "$name" "$conns"
        done
    done
done
medians "$OUT"
