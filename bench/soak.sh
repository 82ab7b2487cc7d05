#!/usr/bin/env bash
# Soak: a mixed load on every service of one `sockit serve` for MINUTES
# (default 30), sampling the server's RSS and open descriptors once a
# second. The load mixes well-behaved clients with abusive ones (resets,
# garbage, oversized lines, slow and silent peers). At the end it prints
# the samples' summary and the RSS growth after warm-up (the first tenth of
# the run, at least a minute when the run allows), which must stay within 5%.
#   bench/soak.sh [MINUTES]        # samples: target/soak.csv
source "$(dirname "$0")/lib.sh"
MINUTES=${1:-30}
build
need_fds 4096
trap 'stop_server' EXIT

work=$(mktemp -d)
mkdir -p "$work/www/sub"
head -c 1048576 /dev/urandom >"$work/www/big.bin"
echo "hello soak" >"$work/www/index.txt"
echo "nested" >"$work/www/sub/file.txt"

# Fixed free ports so the forward rule can name the echo port.
declare -A P
for name in echo discard daytime chargen time ftime chat http fwd socks; do P[$name]=$(free_port); done
udp_echo=$(free_udp_port)
udp_time=$(free_udp_port)
cat >"$work/soak.toml" <<EOF
drain_timeout = "2s"
[echo]
listen = ["tcp://127.0.0.1:${P[echo]}", "udp://127.0.0.1:$udp_echo"]
[discard]
listen = ["tcp://127.0.0.1:${P[discard]}"]
[daytime]
listen = ["tcp://127.0.0.1:${P[daytime]}"]
[chargen]
listen = ["tcp://127.0.0.1:${P[chargen]}"]
[time]
listen = ["tcp://127.0.0.1:${P[time]}", "udp://127.0.0.1:$udp_time"]
[format_time]
listen = ["tcp://127.0.0.1:${P[ftime]}"]
[chat]
listen = ["tcp://127.0.0.1:${P[chat]}"]
history = 50
[http]
listen = ["tcp://127.0.0.1:${P[http]}"]
root = "$work/www"
[socks]
listen = ["tcp://127.0.0.1:${P[socks]}"]
[[forward]]
listen = "127.0.0.1:${P[fwd]}"
targets = ["127.0.0.1:${P[echo]}"]
EOF

taskset -c "$SERVER_CPU" "$SOCKIT" -q serve --config "$work/soak.toml" >/dev/null 2>"$work/server.log" &
SERVER_PID=$!
wait_port "${P[http]}"
mkdir -p "$ROOT/target"
echo "soak: ${MINUTES} min against sockit serve (pid $SERVER_PID), samples in target/soak.csv" >&2

status=0
before=$(cpu_ticks)
taskset -c "$LOAD_CPU" python3 - "$SERVER_PID" "$MINUTES" "$ROOT/target/soak.csv" \
    "${P[echo]}" "${P[discard]}" "${P[daytime]}" "${P[chargen]}" "${P[time]}" "${P[ftime]}" \
    "${P[chat]}" "${P[http]}" "${P[fwd]}" "$udp_echo" "$udp_time" "${P[socks]}" <<'PY' || status=$?
import asyncio, os, random, socket, statistics, struct, sys, time

pid, minutes, csv = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
(echo, discard, daytime, chargen, tport, ftime, chat, http, fwd, uecho, utime, socks) = map(int, sys.argv[4:16])
HOST = "127.0.0.1"
deadline = time.monotonic() + minutes * 60
counts, errors = {}, {}

def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def fds():
    return len(os.listdir(f"/proc/{pid}/fd"))

async def step(name, coro):
    try:
        await asyncio.wait_for(coro, 10)
        counts[name] = counts.get(name, 0) + 1
    except Exception as e:
        errors[name] = errors.get(name, 0) + 1
        if errors[name] <= 3:
            print(f"soak: {name}: {type(e).__name__}: {e}", file=sys.stderr)

async def conn(port):
    return await asyncio.open_connection(HOST, port)

async def close(w):
    w.close()
    try:
        await w.wait_closed()
    except OSError:
        pass

async def echo_lines(port):
    r, w = await conn(port)
    for i in range(random.randint(1, 50)):
        line = f"line {i} {'x' * random.randint(0, 2000)}\n".encode()
        w.write(line)
        assert await r.readexactly(len(line)) == line
    await close(w)

async def echo_bulk(port):
    r, w = await conn(port)
    data = os.urandom(random.randint(1, 512 * 1024))
    w.write(data)
    w.write_eof()
    got = await r.read(-1)
    assert got == data, "bulk echo differs"
    await close(w)

async def reset(port):
    # An abrupt close with data in flight: RST instead of FIN.
    r, w = await conn(port)
    w.write(os.urandom(4096))
    sock = w.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.transport.abort()

async def discard_bytes():
    r, w = await conn(discard)
    for _ in range(random.randint(1, 64)):
        w.write(os.urandom(16384))
        await w.drain()
    await close(w)

async def read_until_eof(port, want):
    r, w = await conn(port)
    got = await r.read(-1)
    assert len(got) >= want, f"{len(got)} bytes from port {port}"
    await close(w)

async def format_time():
    r, w = await conn(ftime)
    for fmt in random.sample([b"%Y-%m-%d", b"%s", b"%Q", b"", b"%" * 600, b"\xff"], 3):
        w.write(fmt + b"\n")
        assert (await r.readline()).endswith(b"\n")
    await close(w)

async def chargen_some():
    r, w = await conn(chargen)
    await r.readexactly(random.randint(1, 256 * 1024))
    await close(w)

class Udp(asyncio.DatagramProtocol):
    def __init__(self):
        self.got = asyncio.get_running_loop().create_future()
    def datagram_received(self, data, addr):
        if not self.got.done():
            self.got.set_result(data)
    def error_received(self, exc):
        pass

async def udp(port, payload, check):
    loop = asyncio.get_running_loop()
    t, p = await loop.create_datagram_endpoint(Udp, remote_addr=(HOST, port))
    try:
        for _ in range(5):  # loss on loopback is rare, not impossible
            t.sendto(payload)
            try:
                check(await asyncio.wait_for(asyncio.shield(p.got), 1))
                return
            except asyncio.TimeoutError:
                continue
        raise TimeoutError(f"no udp reply from {port}")
    finally:
        t.close()

async def chatter(n):
    r, w = await conn(chat)
    await r.readline()
    room = f"#r{random.randint(0, 9)}"
    w.write(f"/nick soak{n}\n/join {room}\n".encode())
    for i in range(random.randint(1, 30)):
        w.write(f"message {i} from {n}\n".encode())
        await w.drain()
        await asyncio.sleep(random.random() * 0.2)
    w.write(b"/quit\n")
    await w.drain()
    await r.read(-1)
    await close(w)

async def chat_abuse():
    r, w = await conn(chat)
    kind = random.choice(["long", "binary", "flood"])
    if kind == "long":
        w.write(b"y" * 100_000 + b"\n")
    elif kind == "binary":
        w.write(os.urandom(8192))
    else:
        w.write(b"spam\n" * 500)
    await w.drain()
    w.transport.abort()

async def http_get(path, want):
    r, w = await conn(http)
    for _ in range(random.randint(1, 10)):  # keep-alive
        w.write(f"GET {path} HTTP/1.1\r\nHost: soak\r\n\r\n".encode())
        status = await r.readline()
        assert status.split()[1] == want, status
        length = 0
        while (line := await r.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await r.readexactly(length)
    await close(w)

async def http_abuse():
    r, w = await conn(http)
    kind = random.choice(["garbage", "huge", "slow", "range"])
    if kind == "garbage":
        w.write(os.urandom(2048))
    elif kind == "huge":
        w.write(b"GET / HTTP/1.1\r\nX: " + b"z" * 100_000 + b"\r\n\r\n")
    elif kind == "slow":
        w.write(b"GET / HT")
        await asyncio.sleep(random.random() * 2)
    else:
        w.write(b"GET /big.bin HTTP/1.1\r\nHost: s\r\nRange: bytes=999999999-\r\nConnection: close\r\n\r\n")
        await r.read(-1)
    await w.drain()
    w.transport.abort()

async def socks_echo():
    # CONNECT to the echo service through the SOCKS server, then talk.
    r, w = await conn(socks)
    w.write(b"\x05\x01\x00")
    assert await r.readexactly(2) == b"\x05\x00"
    w.write(b"\x05\x01\x00\x01\x7f\x00\x00\x01" + echo.to_bytes(2, "big"))
    assert (await r.readexactly(10))[:2] == b"\x05\x00"
    for i in range(random.randint(1, 20)):
        line = f"via socks {i} {'s' * random.randint(0, 1000)}\n".encode()
        w.write(line)
        assert await r.readexactly(len(line)) == line
    await close(w)

async def socks_abuse():
    r, w = await conn(socks)
    w.write(random.choice([os.urandom(64), b"\x05\xff" + os.urandom(255), b"\x05\x01\x00\x05\x01\x00\x03\x00\x00\x00"]))
    await w.drain()
    w.transport.abort()

async def silent(port, secs):
    # A peer that connects and says nothing for a while.
    r, w = await conn(port)
    await asyncio.sleep(secs)
    w.transport.abort()

def mix(n):
    yield "echo lines", echo_lines(echo)
    yield "echo bulk", echo_bulk(echo)
    yield "forward lines", echo_lines(fwd)
    yield "forward bulk", echo_bulk(fwd)
    yield "echo reset", reset(echo)
    yield "forward reset", reset(fwd)
    yield "discard", discard_bytes()
    yield "daytime", read_until_eof(daytime, 10)
    yield "time tcp", read_until_eof(tport, 4)
    yield "format_time", format_time()
    yield "chargen", chargen_some()
    yield "echo udp", udp(uecho, b"u%d" % n, lambda d: None if d == b"u%d" % n else 1 / 0)
    yield "time udp", udp(utime, b"t", lambda d: None if len(d) == 4 else 1 / 0)
    yield "chat", chatter(n)
    yield "chat abuse", chat_abuse()
    yield "http file", http_get("/index.txt", b"200")
    yield "http listing", http_get("/sub/", b"200")
    yield "http 404", http_get("/missing", b"404")
    yield "http abuse", http_abuse()
    yield "socks", socks_echo()
    yield "socks abuse", socks_abuse()
    yield "silent", silent(random.choice([echo, chat, http, fwd, socks]), random.random() * 3)

async def worker(n):
    i = 0
    while time.monotonic() < deadline:
        jobs = list(mix(n * 100000 + i))
        name, coro = random.choice(jobs)
        for _, other in jobs:
            if other is not coro:
                other.close()  # never awaited: discard without a warning
        await step(name, coro)
        i += 1

async def sampler(rows):
    start = time.monotonic()
    while time.monotonic() < deadline:
        rows.append((time.monotonic() - start, rss_kib(), fds()))
        await asyncio.sleep(1)

async def main():
    rows = []
    await asyncio.gather(sampler(rows), *(worker(n) for n in range(48)))
    with open(csv, "w") as f:
        f.write("seconds,rss_kib,fds\n")
        for s, r, d in rows:
            f.write(f"{s:.0f},{r},{d}\n")
    total = rows[-1][0]
    warm = max(total / 10, min(60, total / 3))
    after = [r for s, r, _ in rows if s >= warm]
    first = statistics.median(after[:10])
    last = statistics.median(after[-10:])
    peak = max(r for _, r, _ in rows)
    growth = 100 * (last - first) / first
    print(f"\n## soak: {minutes:g} min, {sum(counts.values())} operations, {sum(errors.values())} failed")
    print(f"{'operation':<16}{'done':>10}{'failed':>8}")
    for name in sorted(counts.keys() | errors.keys()):
        print(f"{name:<16}{counts.get(name, 0):>10}{errors.get(name, 0):>8}")
    print(f"\n{'':<28}{'RSS MiB':>9}{'fds':>6}")
    print(f"{'start':<28}{rows[0][1] / 1024:>9.1f}{rows[0][2]:>6}")
    print(f"{f'after warm-up ({warm:.0f} s)':<28}{first / 1024:>9.1f}")
    print(f"{'end (median of last 10 s)':<28}{last / 1024:>9.1f}{rows[-1][2]:>6}")
    print(f"{'peak':<28}{peak / 1024:>9.1f}{max(d for _, _, d in rows):>6}")
    verdict = "flat" if growth <= 5 else "GROWING"
    print(f"RSS growth after warm-up: {growth:+.1f}% ({verdict}; target at most +5%)")
    sys.exit(0 if growth <= 5 else 1)

asyncio.run(main())
PY

read -r server_busy load_busy <<<"$(busy "$before" "$(cpu_ticks)")"
echo "core busy: server (cpu $SERVER_CPU) ${server_busy}%, load (cpu $LOAD_CPU) ${load_busy}%" \
    "— the load generator is the limit when its core is the busier"
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "soak: the server died; its log:" >&2
    tail -20 "$work/server.log" >&2
    exit 1
fi
rm -rf "$work"
exit $status
