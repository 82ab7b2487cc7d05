#!/usr/bin/env bash
# HTTP: wrk (keep-alive, 64 connections) against `sockit http serve`
# hello-world and nginx returning the same 12-byte body (one worker, and
# auto), plainly and with 16 requests pipelined per connection; then a
# 100 MiB static download (sockit vs nginx) with curl. Alternating in one
# run; medians and ratios. Server on CPU $SERVER_CPU, wrk/curl on $LOAD_CPU.
# One download takes well under a second and varies a lot, so each round
# downloads the file DOWNLOADS times from each server.
# "sockit-logged" is the hello-world server at the default log level, its
# per-request lines going to a file, against the same server with -q;
# "sockit-to-null" sends the same lines to /dev/null, which leaves out the
# kernel's cost of storing them; "nginx-logged" is nginx-1 with a buffered
# access log, for what a line costs the anchor.
# Each row also shows how busy the server's and the load's cores were, and
# a last table what the logged rows' writer thread cost.
#   bench/http.sh [ROUNDS] [SECONDS] [DOWNLOADS]
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-3}
SECS=${2:-3}
DOWNLOADS=${3:-5}
ensure wrk wrk nginx nginx-light curl curl taskset util-linux
build
WORK=$(mktemp -d)
OUT="$WORK/results"
trap 'stop_server; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/www" "$WORK/nginx"
head -c $((100 << 20)) /dev/urandom >"$WORK/www/big.bin"
# nginx's workers run as nobody: they must be able to read the files.
chmod 755 "$WORK" "$WORK/www"
chmod 644 "$WORK/www/big.bin"
cat >"$WORK/pipeline.lua" <<'LUA'
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format(nil, "/") end
  req = table.concat(r)
end
request = function() return req end
LUA

start_nginx() { # start_nginx WORKERS PORT [ACCESS_LOG]
    # Logged, nginx is told to buffer as the issue asks of sockit, and
    # starts each run on an empty file, as sockit's redirected stderr does.
    local log="off"
    if [[ -n ${3:-} ]]; then
        log="$3 combined buffer=256k flush=1s"
        : >"$3"
    fi
    cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes $1;
error_log $WORK/nginx/error.log;
pid $WORK/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log $log;
    sendfile on;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/nginx;
    proxy_temp_path $WORK/nginx;
    fastcgi_temp_path $WORK/nginx;
    uwsgi_temp_path $WORK/nginx;
    scgi_temp_path $WORK/nginx;
    server {
        listen 127.0.0.1:$2;
        root $WORK/www;
        location = / { default_type text/plain; return 200 "Hello World!"; }
    }
}
CONF
    start_server "$2" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;'
}

start() { # start NAME PORT
    case $1 in
    sockit) start_server "$2" "$SOCKIT" -q http serve "$WORK/www" -l "127.0.0.1:$2" ;;
    sockit-hello) start_server "$2" "$SOCKIT" -q http serve -l "127.0.0.1:$2" ;;
    sockit-logged) start_server "$2" "$SOCKIT" http serve -l "127.0.0.1:$2" ;;
    sockit-to-null) SERVER_LOG=/dev/null start_server "$2" "$SOCKIT" http serve -l "127.0.0.1:$2" ;;
    nginx-1) start_nginx 1 "$2" ;;
    nginx-logged) start_nginx 1 "$2" "$WORK/nginx/access.log" ;;
    nginx-auto) start_nginx auto "$2" ;;
    esac
}

# wrk's summary as JSON: requests/s and the p99 latency in ms.
wrk_json() {
    python3 -c '
import re, sys
t = sys.stdin.read()
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", t)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(f"{rate}\t{p99}\t{errs.group(1) if errs else 0}")'
}

rss_kb() { awk '/VmHWM/{print $2}' "/proc/$SERVER_PID/status"; }

# The log writer thread's CPU ticks so far (user + system).
writer_ticks() {
    local t
    for t in /proc/"$SERVER_PID"/task/*; do
        [[ $(cat "$t/comm") == sockit-log ]] && awk '{print $14 + $15}' "$t/stat"
    done
}

log_size() { stat -c %s "${SERVER_LOG:-/tmp/sockit-bench-server.log}"; }

hello_case() { # hello_case NAME [pipeline]
    local name=$1 mode=${2:-plain} port extra=()
    port=$(free_port)
    case $name in sockit) start sockit-hello "$port" ;; *) start "$name" "$port" ;; esac
    [[ $mode == pipeline ]] && extra=(-s "$WORK/pipeline.lua")
    # A second of warm-up, unmeasured, so that connection set-up and a
    # fresh process's first page faults stay out of the percentiles.
    taskset -c "$LOAD_CPU" wrk -t1 -c64 -d1s "${extra[@]}" "http://127.0.0.1:$port/" >/dev/null
    local line before cpu ticks0 size0 ticks1 size1
    before=$(cpu_ticks)
    [[ $name == sockit-logged ]] && ticks0=$(writer_ticks) && size0=$(log_size)
    line=$(taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${SECS}s" --latency "${extra[@]}" "http://127.0.0.1:$port/" | wrk_json)
    cpu=$(busy "$before" "$(cpu_ticks)")
    if [[ $name == sockit-logged ]]; then
        ticks1=$(writer_ticks) size1=$(log_size)
        printf '%s\t%s\t%s\t%s\n' "$mode" "$(cut -f1 <<<"$line")" "$((ticks1 - ticks0))" "$((size1 - size0))" >>"$WORK/writer"
    fi
    local rss=0
    [[ $name == sockit ]] && rss=$(rss_kb)
    stop_server
    local scpu lcpu
    read -r scpu lcpu <<<"$cpu"
    printf 'hello %s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$name" "$line" "$rss" "$scpu" "$lcpu" >>"$OUT"
    echo "round $r hello $mode $name: $line rss ${rss}k cpu server/load $scpu/$lcpu%" >&2
}

static_case() { # static_case NAME: DOWNLOADS downloads, each one row
    local name=$1 port speed size
    port=$(free_port)
    start "$name" "$port"
    for _ in $(seq 1 "$DOWNLOADS"); do
        read -r speed size < <(taskset -c "$LOAD_CPU" curl -s -o /dev/null \
            -w '%{speed_download} %{size_download}\n' "http://127.0.0.1:$port/big.bin")
        if ((size != 100 << 20)); then
            stop_server
            echo "error: $name sent $size bytes instead of 100 MiB" >&2
            exit 1
        fi
        local rss=0
        [[ $name == sockit ]] && rss=$(rss_kb)
        printf 'static 100MiB\t%s\t%s\t0\t0\t%s\t0\t0\n' "$name" "$speed" "$rss" >>"$OUT"
        echo "round $r static $name: $speed B/s" >&2
    done
    stop_server
}

HELLO_SERVERS=(sockit sockit-logged sockit-to-null nginx-1 nginx-logged nginx-auto)
for r in $(seq 1 "$ROUNDS"); do
    for name in "${HELLO_SERVERS[@]}"; do hello_case "$name"; done
    for name in "${HELLO_SERVERS[@]}"; do hello_case "$name" pipeline; done
    for name in sockit nginx-1; do static_case "$name"; done
done

python3 - "$OUT" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    case, name, rate, p99, errs, rss, scpu, lcpu = line.rstrip("\n").split("\t")
    rows.setdefault(case, {}).setdefault(name, []).append(
        (float(rate), float(p99), int(errs), int(rss), float(scpu), float(lcpu)))
for case, servers in rows.items():
    static = case.startswith("static")
    unit = "MB/s" if static else "req/s"
    print(f"\n## {case}")
    print(f"{'server':<14}{'runs':>5}{unit + ' (median)':>16}{'p99 ms':>9}{'errors':>8}{'peak RSS':>10}{'cpu srv/load':>14}{'sockit / this':>15}")
    med = {n: statistics.median(v[0] for v in vs) for n, vs in servers.items()}
    for n, vs in servers.items():
        rate = med[n] / 1e6 if static else med[n]
        p99 = "-" if static else f"{statistics.median(v[1] for v in vs):.3f}"
        rss = max(v[3] for v in vs)
        rss_s = f"{rss / 1024:.1f} MiB" if rss else "-"
        cpu = "-" if static else f"{statistics.median(v[4] for v in vs):.0f}%/{statistics.median(v[5] for v in vs):.0f}%"
        print(f"{n:<14}{len(vs):>5}{rate:>16.1f}{p99:>9}{sum(v[2] for v in vs):>8}{rss_s:>10}{cpu:>14}{med['sockit'] / med[n]:>14.2f}x")
    if static:
        continue
    # What a log line costs each server: its rate without logging over its
    # rate with, and the time that adds to a request. The two ran next to
    # each other in every round, so the median of each round's own ratio
    # leaves out the machine's drift between rounds.
    print(f"{'logging':<24}{'unlogged / logged':>18}{'per round':>11}{'ns per line':>13}")
    for logged, bare in (("sockit-logged", "sockit"), ("sockit-to-null", "sockit"), ("nginx-logged", "nginx-1")):
        if logged in med and bare in med:
            paired = statistics.median(b[0] / l[0] for b, l in zip(servers[bare], servers[logged]))
            print(f"{logged + ' / ' + bare:<24}{med[bare] / med[logged]:>17.2f}x{paired:>10.2f}x"
                  f"{1e9 / med[logged] - 1e9 / med[bare]:>13.0f}")
PY

# Where the file-logged rows' time goes: the log writer thread's share of
# the server core, which is almost all the kernel storing the lines, and
# what that costs per megabyte written and per request.
python3 - "$WORK/writer" "$SECS" "$(getconf CLK_TCK)" <<'PY'
import statistics, sys
secs, hz = float(sys.argv[2]), float(sys.argv[3])
rows = {}
for line in open(sys.argv[1]):
    mode, rate, ticks, size = line.split()
    rows.setdefault(mode, []).append((float(rate), int(ticks) / hz, int(size)))
print("\n## sockit-logged: the log writer thread (to a file)")
print(f"{'hello':<10}{'share of core':>15}{'log MB/s':>10}{'ms per MB':>11}{'bytes/line':>12}{'ns/request':>12}")
for mode, v in rows.items():
    med = lambda f: statistics.median(f(r) for r in v)
    print(f"{mode:<10}{med(lambda r: 100 * r[1] / secs):>14.1f}%{med(lambda r: r[2] / secs / 1e6):>10.1f}"
          f"{med(lambda r: 1e3 * r[1] / max(1, r[2] / 1e6)):>11.2f}{med(lambda r: r[2] / (r[0] * secs)):>12.0f}"
          f"{med(lambda r: 1e9 * r[1] / (r[0] * secs)):>12.0f}")
PY
