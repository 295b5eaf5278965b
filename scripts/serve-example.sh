#!/usr/bin/env bash
# Builds nofussd and serves the bundled example data (examples/) on port 8080.
# Extra arguments go to nofussd, e.g. scripts/serve-example.sh --port 9000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" --target nofussd
exec ./build/server/nofussd --data-dir examples "$@"
