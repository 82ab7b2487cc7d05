#!/usr/bin/env bash
# Port scan: 1-65535 on loopback with `sockit connect -z`, OpenBSD `nc -z`
# and `nmap -sT -p-`, alternating in one run. The scanner runs on CPU
# $LOAD_CPU; the target side is the kernel (a few listeners held by this
# script), whose work lands on whichever core sent the packet, so both
# cores' busy shares are printed.
#   bench/scan.sh [ROUNDS]
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-5}
ensure nc netcat-openbsd nmap nmap taskset util-linux
build
OUT=$(mktemp)
BUSY=$(mktemp)
trap 'kill $HOLDER 2>/dev/null || true; rm -f "$OUT" "$BUSY"' EXIT

# Three open ports for every scanner to find.
PORTS_FILE=$(mktemp)
python3 - "$PORTS_FILE" <<'PY' &
import socket, sys, time
socks = []
for _ in range(3):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    socks.append(s)
open(sys.argv[1], "w").write(" ".join(str(s.getsockname()[1]) for s in socks) + "\n")
time.sleep(3600)
PY
HOLDER=$!
for _ in $(seq 100); do [[ -s $PORTS_FILE ]] && break; sleep 0.05; done
read -r -a OPEN <"$PORTS_FILE"

run_case() { # run_case NAME
    local name=$1 cmd found
    case $name in
    sockit) cmd=("$SOCKIT" -q connect -z 127.0.0.1 1-65535) ;;
    nc) cmd=(nc -z 127.0.0.1 1-65535) ;;
    nmap) cmd=(nmap -sT -p- -n -Pn --open -oG - 127.0.0.1) ;;
    esac
    local before after t0 t1
    before=$(cpu_ticks)
    t0=$(date +%s.%N)
    found=$(taskset -c "$LOAD_CPU" "${cmd[@]}" 2>&1) || {
        echo "error: $name found nothing open" >&2
        exit 1
    }
    t1=$(date +%s.%N)
    after=$(cpu_ticks)
    # Every scanner must have found the three listeners; nc -z says so
    # only with -v, whose 65,535 lines would cost it time, so its timed
    # run is checked by exit status and one -v run before the rounds.
    [[ $name == nc ]] && found=$NC_FOUND
    for p in "${OPEN[@]}"; do
        grep -q "\b$p\b" <<<"$found" || {
            echo "error: $name missed open port $p" >&2
            exit 1
        }
    done
    local secs
    secs=$(python3 -c "print($t1 - $t0)")
    printf '%s\t%s\n' "$name" "$secs" >>"$OUT"
    printf '%s\t%s\t%s\n' "1-65535" "$name" "$(busy "$before" "$after" | tr ' ' '\t')" >>"$BUSY"
    echo "round $r $name: ${secs}s" >&2
}

NC_FOUND=$(nc -zv 127.0.0.1 1-65535 2>&1 | grep succeeded)
for r in $(seq 1 "$ROUNDS"); do
    for name in sockit nc nmap; do
        run_case "$name"
    done
done
python3 - "$OUT" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, secs = line.split()
    rows.setdefault(name, []).append(float(secs))
med = {n: statistics.median(v) for n, v in rows.items()}
print("\n## scan 127.0.0.1 1-65535")
print(f"{'scanner':<10}{'runs':>5}{'seconds (median)':>18}{'min':>8}{'max':>8}{'this / sockit':>15}")
for n, v in rows.items():
    print(f"{n:<10}{len(v):>5}{med[n]:>18.2f}{min(v):>8.2f}{max(v):>8.2f}{med[n] / med['sockit']:>14.2f}x")
PY
busy_table "$BUSY"
