#!/usr/bin/env bash
# TLS, alternating sockit and its anchors in one run, ECDSA P-256 for all:
#  - termination: iperf3 -> stunnel (client side, on the load core) -> TLS
#    -> terminator -> iperf3 server, 1 and 4 streams, for sockit forward
#    --tls-accept, stunnel4 and socat OPENSSL-LISTEN;
#  - HTTPS hello world, keep-alive requests/s (wrk), sockit http serve --tls
#    against nginx with ssl and one worker;
#  - new TLS handshakes/s (wrk, Connection: close, so each request is a new
#    connection and a full handshake), the same two;
#  - RSS of sockit echo --tls holding 1,000 idle TLS connections.
# Terminators and servers on CPU $SERVER_CPU, everything else on $LOAD_CPU;
# each row shows both cores' busy fractions, to tell who the bottleneck was,
# and what the server spent per unit of work, which compares servers even
# when the load core is the one saturated (for termination it always is
# here: the client side must encrypt what the server decrypts, and iperf3's
# two ends run beside it).
#   bench/tls.sh [ROUNDS] [SECONDS]
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-3}
SECS=${2:-3}
ensure iperf3 iperf3 socat socat stunnel4 stunnel4 nginx nginx-light wrk wrk openssl openssl taskset util-linux
build
WORK=$(mktemp -d)
OUT="$WORK/results"
PIDS=()
trap 'stop_server; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
chmod 755 "$WORK"

# One ECDSA P-256 certificate for every server.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
chmod 644 "$WORK/key.pem" "$WORK/cert.pem"

background() { # background CPU CMD...: started and remembered for cleanup
    local cpu=$1
    shift
    taskset -c "$cpu" "$@" >/dev/null 2>&1 &
    PIDS+=($!)
}

IPERF_PORT=$(free_port)
background "$LOAD_CPU" iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT"
wait_port "$IPERF_PORT"

stunnel_conf() { # stunnel_conf FILE client|server ACCEPT CONNECT
    {
        echo "foreground = yes"
        echo "pid ="
        echo "[t]"
        [[ $2 == client ]] && echo "client = yes" && echo "verifyChain = no"
        [[ $2 == server ]] && echo "cert = $WORK/cert.pem" && echo "key = $WORK/key.pem"
        echo "accept = 127.0.0.1:$3"
        echo "connect = 127.0.0.1:$4"
    } >"$1"
}

start_terminator() { # start_terminator NAME PORT
    local target="127.0.0.1:$IPERF_PORT"
    case $1 in
    sockit) start_server "$2" "$SOCKIT" -q forward --tls-accept --cert "$WORK/cert.pem" \
        --key "$WORK/key.pem" "127.0.0.1:$2" "$target" ;;
    stunnel)
        stunnel_conf "$WORK/server.conf" server "$2" "$IPERF_PORT"
        start_server "$2" stunnel4 "$WORK/server.conf"
        ;;
    socat) start_server "$2" socat "OPENSSL-LISTEN:$2,bind=127.0.0.1,fork,reuseaddr,cert=$WORK/cert.pem,key=$WORK/key.pem,verify=0" "TCP:$target" ;;
    esac
}

termination_case() { # termination_case NAME STREAMS
    local name=$1 streams=$2 port client_port client_pid before json cpu
    port=$(free_port)
    start_terminator "$name" "$port"
    client_port=$(free_port)
    stunnel_conf "$WORK/client.conf" client "$client_port" "$port"
    taskset -c "$LOAD_CPU" stunnel4 "$WORK/client.conf" >/dev/null 2>&1 &
    client_pid=$!
    wait_port "$client_port"
    before=$(cpu_ticks)
    json=$(taskset -c "$LOAD_CPU" iperf3 -c 127.0.0.1 -p "$client_port" -P "$streams" -t "$SECS" -J)
    cpu=$(busy "$before" "$(cpu_ticks)")
    kill "$client_pid" 2>/dev/null
    wait "$client_pid" 2>/dev/null || true
    stop_server
    local gbps
    gbps=$(iperf3_gbps "$json")
    printf 'termination %s streams\t%s\t%s\t%s\t%s\n' "$streams" "$name" "$gbps" ${cpu} >>"$OUT"
    echo "round $r termination $streams $name: $gbps Gbit/s cpu ${cpu// //}%" >&2
}

nginx_conf() { # nginx_conf PORT
    mkdir -p "$WORK/nginx"
    cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
error_log $WORK/nginx/error.log;
pid $WORK/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    ssl_session_cache off;
    ssl_session_tickets off;
    client_body_temp_path $WORK/nginx;
    proxy_temp_path $WORK/nginx;
    fastcgi_temp_path $WORK/nginx;
    uwsgi_temp_path $WORK/nginx;
    scgi_temp_path $WORK/nginx;
    server {
        listen 127.0.0.1:$1 ssl;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        location = / { default_type text/plain; return 200 "Hello World!"; }
    }
}
CONF
}

start_https() { # start_https NAME PORT
    case $1 in
    sockit) start_server "$2" "$SOCKIT" -q http serve -l "127.0.0.1:$2" --cert "$WORK/cert.pem" --key "$WORK/key.pem" ;;
    nginx) nginx_conf "$2"; start_server "$2" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' ;;
    esac
}

https_case() { # https_case NAME keepalive|handshakes
    local name=$1 mode=$2 port extra=() before rate cpu
    port=$(free_port)
    start_https "$name" "$port"
    [[ $mode == handshakes ]] && extra=(-H "Connection: close")
    taskset -c "$LOAD_CPU" wrk -t1 -c32 -d1s "${extra[@]}" "https://127.0.0.1:$port/" >/dev/null
    before=$(cpu_ticks)
    rate=$(taskset -c "$LOAD_CPU" wrk -t1 -c32 -d"${SECS}s" "${extra[@]}" "https://127.0.0.1:$port/" |
        awk '/Requests\/sec/ {print $2}')
    cpu=$(busy "$before" "$(cpu_ticks)")
    stop_server
    printf 'https %s\t%s\t%s\t%s\t%s\n' "$mode" "$name" "$rate" ${cpu} >>"$OUT"
    echo "round $r https $mode $name: $rate/s cpu ${cpu// //}%" >&2
}

idle_rss() { # 1,000 idle TLS connections held by sockit echo --tls
    local port
    port=$(free_port)
    start_server "$port" "$SOCKIT" -q echo --tls "127.0.0.1:$port"
    local before
    before=$(awk '/VmRSS/{print $2}' "/proc/$SERVER_PID/status")
    python3 - "$port" "$SERVER_PID" <<'PY'
import socket, ssl, sys
port, pid = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
conns = []
for _ in range(1000):
    conns.append(ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10)))
# One round trip on the last proves the server took them all.
conns[-1].sendall(b"x")
assert conns[-1].recv(1) == b"x"
rss = [l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1]
print(f"idle {rss}")
PY
    stop_server
}

for r in $(seq 1 "$ROUNDS"); do
    for streams in 1 4; do
        for name in sockit stunnel socat; do termination_case "$name" "$streams"; done
    done
    for mode in keepalive handshakes; do
        for name in sockit nginx; do https_case "$name" "$mode"; done
    done
done
RSS=$(idle_rss)

python3 - "$OUT" "$RSS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    case, name, rate, scpu, lcpu = line.rstrip("\n").split("\t")
    rows.setdefault(case, {}).setdefault(name, []).append((float(rate), float(scpu), float(lcpu)))
for case, servers in rows.items():
    unit = "Gbit/s" if case.startswith("termination") else "req/s"
    print(f"\n## {case}")
    # When the load core is the one at 100%, rates compare the load, not
    # the servers: what each server spends on its core per unit of work
    # (busy % per Gbit/s or per 1,000 req/s) compares the servers.
    per = 1 if unit == "Gbit/s" else 1000
    print(f"{'server':<10}{'runs':>5}{unit + ' (median)':>18}{'cpu srv/load':>14}{'sockit / this':>15}"
          f"{'srv cpu per unit':>18}{'this / sockit':>15}")
    med = {n: statistics.median(v[0] for v in vs) for n, vs in servers.items()}
    cost = {n: statistics.median(v[1] / (v[0] / per) for v in vs) for n, vs in servers.items()}
    for n, vs in servers.items():
        cpu = f"{statistics.median(v[1] for v in vs):.0f}%/{statistics.median(v[2] for v in vs):.0f}%"
        print(f"{n:<10}{len(vs):>5}{med[n]:>18.2f}{cpu:>14}{med['sockit'] / med[n]:>14.2f}x"
              f"{cost[n]:>17.1f}%{cost[n] / cost['sockit']:>14.2f}x")
kib = int(sys.argv[2].split()[1])
print(f"\n## 1,000 idle TLS connections (sockit echo --tls): {kib / 1024:.1f} MiB RSS")
PY
