#!/usr/bin/env bash
# The whole test suite: installs the real peers the tests talk to when they
# are missing (Debian/Ubuntu), then format, lint and test checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# The tests need OpenBSD nc (-N, -U); another nc is replaced by it.
nc -h 2>&1 | grep -q -- '-N' || need+=(netcat-openbsd)
command -v python3 >/dev/null || need+=(python3)
command -v rdate >/dev/null || need+=(rdate)
command -v script >/dev/null || need+=(bsdutils)
command -v kill >/dev/null || need+=(procps)
command -v iperf3 >/dev/null || need+=(iperf3)
command -v redis-server >/dev/null || need+=(redis-server)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
command -v ss >/dev/null || need+=(iproute2)
command -v unshare >/dev/null || need+=(util-linux)
command -v man >/dev/null || need+=(man-db)
command -v zsh >/dev/null || need+=(zsh)
command -v tmux >/dev/null || need+=(tmux)
command -v ncat >/dev/null || need+=(ncat)
command -v fish >/dev/null || need+=(fish)
command -v nft >/dev/null || need+=(nftables)
command -v haproxy >/dev/null || need+=(haproxy)
command -v microsocks >/dev/null || need+=(microsocks)
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
if ((${#need[@]})); then
    echo "installing: ${need[*]}" >&2
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The browser tests drive Chromium with playwright-core, pinned in
# tests/browser/package-lock.json.
(cd tests/browser && npm ci --no-audit --no-fund --silent)
# The WebSocket tests' peer is Python's websockets; the metrics tests'
# reader is prometheus_client's parser.
for module in websockets:websockets prometheus_client:prometheus-client; do
    if ! python3 -c "import ${module%%:*}" 2>/dev/null; then
        python3 -m pip install --quiet "${module#*:}" 2>/dev/null ||
            python3 -m pip install --quiet --break-system-packages "${module#*:}"
    fi
done
if ! nc -h 2>&1 | grep -q -- '-N'; then
    echo "error: nc is not OpenBSD netcat even after installing netcat-openbsd" >&2
    exit 1
fi

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
(cd fuzz && cargo fmt --check)
# Every fuzz target for a short while from the seed corpus (long runs:
# scripts/fuzz.sh SECONDS by hand).
bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
