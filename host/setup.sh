#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine (root, apt reachable):
#
#   host/setup.sh run  [ferryd args...]   install what is missing, build (Release), start ferryd
#                                          on config/ferry.toml
#   host/setup.sh test                     the same set-up, then the whole test suite: a Release
#                                          build (warnings are errors), an ASan+UBSan build, a TSan
#                                          build, and a bounded run of every fuzz target
#   host/setup.sh test --no-sanitizers     the Release run only
#   host/setup.sh test --no-fuzz           all but the bounded libFuzzer run (tests/fuzz, clang)
#
# Environment: FERRY_BUILD_DIR (default build), FERRY_JOBS (default: all cores),
# FERRY_FUZZ_SECONDS (default 60: per fuzz target, two targets at a time).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${FERRY_BUILD_DIR:-build}
jobs=${FERRY_JOBS:-$(nproc)}
# ccache hashes paths relative to the checkout: a second clone (CI's) reuses
# what the first one compiled on this machine.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root}

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
    [[ " $* " == *" --no-sanitizers "* ]] && sanitizers=0
    fuzz=$sanitizers  # the fuzz build is a sanitizer build too
    [[ " $* " == *" --no-fuzz "* ]] && fuzz=0
    fuzz_packages=()
    [[ $fuzz == 1 ]] && fuzz_packages=(clang libclang-rt-14-dev)  # libFuzzer and clang's sanitizer runtimes
    # redis-server: the shared-state tests start their own on a free port.
    NEED_NODE=1 install_missing "${packages[@]}" redis-server "${fuzz_packages[@]}"
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
      # Plugins call back from any thread: ThreadSanitizer watches ferryd's side of that.
      configure_and_build "$build-tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_TSAN=ON -DFERRY_WERROR=ON
      say "running the test suite under ThreadSanitizer"
      TSAN_OPTIONS="halt_on_error=1 suppressions=$root/tests/tsan.supp" \
        ctest --test-dir "$build-tsan" --output-on-failure -j "$jobs"
    fi
    if [[ $fuzz == 1 ]]; then
      # Coverage-guided fuzzing (tests/fuzz/README.md): clang, a directory of its own, bounded time.
      # Only the fuzz targets and what they load: the rest of the tree was built three times already.
      say "building $build-fuzz (the fuzz targets)"
      CC=clang CXX=clang++ cmake -S . -B "$build-fuzz" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_FUZZ=ON \
        -DFERRY_BUILD_TESTS=OFF -DFERRY_WERROR=ON >/dev/null
      cmake --build "$build-fuzz" -j "$jobs" --target ferry_fuzz
      say "fuzzing each target for ${FERRY_FUZZ_SECONDS:-60}s"
      FERRY_FUZZ_BUILD_DIR="$build-fuzz" tests/fuzz/run.sh "${FERRY_FUZZ_SECONDS:-60}"
    fi
    say "all tests passed"
    ;;
  *)
    sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
