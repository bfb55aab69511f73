#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine (root, apt reachable):
#
#   host/setup.sh run  [ferryd args...]   install what is missing, build (Release), start ferryd
#                                          on config/ferry.toml
#   host/setup.sh test                     the same set-up, then the whole test suite: a Release
#                                          build (warnings are errors) and an ASan+UBSan build
#   host/setup.sh test --no-sanitizers     the Release run only
#
# Environment: FERRY_BUILD_DIR (default build), FERRY_JOBS (default: all cores).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${FERRY_BUILD_DIR:-build}
jobs=${FERRY_JOBS:-$(nproc)}

say() { printf '\n== %s\n' "$*" >&2; }

packages=(
  build-essential cmake ninja-build ccache pkg-config git ca-certificates openssl socat
  libboost1.81-dev libssl-dev nlohmann-json3-dev libtomlplusplus-dev libspdlog-dev libfmt-dev
  libcpp-httplib-dev libgtest-dev libhiredis-dev libsqlite3-dev libre2-dev
)

install_missing() {
  local wanted=("$@") missing=()
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # Node.js runs the official-SDK client tests; any node >= 18 already on PATH will do.
  if [[ ${NEED_NODE:-0} == 1 ]] && ! command -v npm >/dev/null; then missing+=(nodejs npm); fi
  [[ ${#missing[@]} -eq 0 ]] && return 0
  say "installing: ${missing[*]}"
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

configure_and_build() {
  local dir=$1
  shift
  say "building $dir"
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

case "${1:-}" in
  run)
    shift
    install_missing "${packages[@]}"
    configure_and_build "$build" -DCMAKE_BUILD_TYPE=Release -DFERRY_BUILD_TESTS=OFF
    say "starting ferryd on config/ferry.toml (Ctrl-C to stop)"
    exec "$build/host/ferryd" --config config/ferry.toml "$@"
    ;;
  test)
    shift
    sanitizers=1
    [[ "${1:-}" == "--no-sanitizers" ]] && sanitizers=0
    # redis-server: the shared-state tests start their own on a free port.
    NEED_NODE=1 install_missing "${packages[@]}" redis-server
    say "installing the official client SDKs for the client tests"
    npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error
    configure_and_build "$build" -DCMAKE_BUILD_TYPE=Release -DFERRY_WERROR=ON
    say "running the test suite (Release)"
    ctest --test-dir "$build" --output-on-failure -j "$jobs"
    if [[ $sanitizers == 1 ]]; then
      configure_and_build "$build-asan" -DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=ON -DFERRY_WERROR=ON
      say "running the test suite under AddressSanitizer + UndefinedBehaviorSanitizer"
      ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir "$build-asan" --output-on-failure -j "$jobs"
    fi
    say "all tests passed"
    ;;
  *)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
