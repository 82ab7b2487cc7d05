#!/usr/bin/env bash
# Chat fan-out: one publisher, 100 and 1,000 subscribers, against
# `sockit chat serve`, `ncat --chat` and `redis-server` pub/sub, alternating
# in one run. Blast (publish as fast as possible) reports deliveries/s;
# paced (100 messages/s to 1,000 subscribers) reports delivery latency.
# Server on CPU $SERVER_CPU, load generator on CPU $LOAD_CPU.
#   bench/fanout.sh [ROUNDS]
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-3}
ensure ncat ncat redis-server redis-server taskset util-linux
build
need_fds 2100
OUT=$(mktemp)
trap 'stop_server; rm -f "$OUT"' EXIT

run_case() { # run_case SERVER SUBSCRIBERS MESSAGES [RATE]
    local name=$1 subs=$2 msgs=$3 rate=${4:-} port extra=()
    port=$(free_port)
    case $name in
    sockit) start_server "$port" "$SOCKIT" -q chat serve "127.0.0.1:$port" --rate 0 --max-clients 5000 ;;
    ncat) start_server "$port" ncat -l --chat -m 5000 127.0.0.1 "$port" ;;
    redis)
        start_server "$port" redis-server --port "$port" --bind 127.0.0.1 --save '' \
            --appendonly no --maxclients 10000
        extra=(--redis)
        ;;
    esac
    [[ -n $rate ]] && extra+=(--rate "$rate")
    local json mode=blast
    [[ -n $rate ]] && mode="paced $rate/s"
    json=$(taskset -c "$LOAD_CPU" "$SOCKIT" bench fanout "127.0.0.1:$port" \
        -n "$subs" -m "$msgs" "${extra[@]}" --json)
    stop_server
    printf '%s\t%s\t%s\n' "$mode, $subs subscribers" "$name" "$json" >>"$OUT"
    echo "round $r $mode $subs $name: $json" >&2
}

for r in $(seq 1 "$ROUNDS"); do
    for name in sockit ncat redis; do
        run_case "$name" 100 1000
        run_case "$name" 1000 200
        run_case "$name" 1000 500 100
    done
done
medians "$OUT"
