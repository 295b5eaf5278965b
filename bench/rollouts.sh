#!/usr/bin/env bash
# bench/rollouts.sh - staged rollouts measured against their anchors in the
# same run (bench/rollouts.py says what and how). Needs build/ (cmake
# --build build) and wrk; BENCH_ROUNDS, BENCH_DURATION as bench/store.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${BUILD:-$root/build}
[ -x "$build/server/nofussd" ] || { echo "rollouts.sh: build first: cmake --build build" >&2; exit 1; }
command -v wrk >/dev/null || { echo "SKIPPED: wrk is not installed (apt-get install wrk)"; exit 0; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$here/rollouts.py" "$build/server/nofussd" "$build/tools/nofuss"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
