#!/usr/bin/env bash
# Chat rooms across two nodes through Redis: 1,000 subscribers split over
# nodes A and B, one publisher on A. Against the same load on one node
# (no Redis) and against Redis pub/sub directly, alternating in one run.
# Blast (1,000 messages as fast as possible) reports deliveries/s; paced
# (100 messages/s) puts every subscriber on B, so its latency is publish
# on A to receipt on B. Every server (both nodes and Redis) is on CPU
# $SERVER_CPU, the load generator on CPU $LOAD_CPU; each case prints both
# cores' busy share, so it says which one was the limit.
#   bench/cluster.sh [ROUNDS]
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-3}
ensure redis-server redis-server taskset util-linux
build
need_fds 2200
OUT=$(mktemp)
BUSY=$(mktemp)
PIDS=()
trap 'stop_all; rm -f "$OUT" "$BUSY"' EXIT

start_bg() { # start_bg PORT CMD...: one more server on SERVER_CPU
    local port=$1
    shift
    taskset -c "$SERVER_CPU" "$@" >/dev/null 2>>/tmp/sockit-bench-server.log &
    PIDS+=($!)
    wait_port "$port"
}

stop_all() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}

redis() { # redis PORT
    start_bg "$1" redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no \
        --maxclients 10000
}

chat() { # chat PORT [ARGS]
    local port=$1
    shift
    start_bg "$port" "$SOCKIT" -q chat serve "127.0.0.1:$port" --rate 0 "$@"
}

# Waits (bounded) until both nodes have linked up: each has its presence
# hash in Redis.
linked() { # linked REDIS_PORT
    local end=$((SECONDS + 10))
    until (($(redis-cli -p "$1" --scan --pattern 'bench:who:*' | wc -l) >= 2)); do
        ((SECONDS < end)) || { echo "nodes never linked" >&2; exit 1; }
        sleep 0.05
    done
}

run_case() { # run_case SETUP MESSAGES [RATE]
    local setup=$1 msgs=$2 rate=${3:-} a b r target=() extra=() mode=blast name before json
    a=$(free_port)
    [[ -n $rate ]] && extra=(--rate "$rate") && mode="paced $rate/s"
    case $setup in
    one-node)
        chat "$a"
        target=("127.0.0.1:$a")
        ;;
    sockit)
        r=$(free_port)
        redis "$r"
        b=$(free_port)
        chat "$a" --redis "redis://127.0.0.1:$r" --cluster bench
        chat "$b" --redis "redis://127.0.0.1:$r" --cluster bench
        linked "$r"
        if [[ -n $rate ]]; then
            target=("127.0.0.1:$a" --subscribe "127.0.0.1:$b")
        else
            target=("127.0.0.1:$a" --subscribe "127.0.0.1:$a" --subscribe "127.0.0.1:$b")
        fi
        ;;
    redis)
        redis "$a"
        target=("127.0.0.1:$a" --redis)
        ;;
    esac
    before=$(cpu_ticks)
    json=$(taskset -c "$LOAD_CPU" "$SOCKIT" bench fanout "${target[@]}" -n 1000 -m "$msgs" \
        "${extra[@]}" --json)
    read -r sb lb <<<"$(busy "$before" "$(cpu_ticks)")"
    stop_all
    printf '%s\t%s\t%s\n' "$mode, 1000 subscribers" "$setup" "$json" >>"$OUT"
    printf '%s\t%s\t%s\t%s\n' "$mode, 1000 subscribers" "$setup" "$sb" "$lb" >>"$BUSY"
    echo "round $r_ $mode $setup (server ${sb}% load ${lb}%): $json" >&2
}

for r_ in $(seq 1 "$ROUNDS"); do
    for setup in sockit one-node redis; do
        run_case "$setup" 1000
        run_case "$setup" 500 100
    done
done
echo "# sockit = two nodes through Redis (paced: every subscriber on node B);"
echo "# one-node = one chat serve without Redis; redis = redis-server pub/sub"
medians "$OUT"
echo
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    case, setup, blob = line.rstrip("\n").split("\t", 2)
    rows.setdefault((case.split(",")[0], setup), []).append(json.loads(blob))
med = lambda k, key: statistics.median(r[key] for r in rows[k])
rate = med(("blast", "sockit"), "deliveries_per_sec") / med(("blast", "one-node"), "deliveries_per_sec")
p99 = med(("paced 100/s", "sockit"), "p99_ms")
one = med(("paced 100/s", "one-node"), "p99_ms")
print(f"two nodes / one node, blast: {rate:.2f}x (target >= 0.8x: {'met' if rate >= 0.8 else 'MISSED'})")
print(f"cross-node p99 {p99:.2f} ms vs one node {one:.2f} ms + 2 ms "
      f"(target: {'met' if p99 <= one + 2 else 'MISSED'})")
PY
echo
busy_table "$BUSY"
