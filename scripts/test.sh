#!/usr/bin/env bash
# Checks that every document the tree cites exists (scripts/check-docs.py),
# then builds nofuss and runs every test: the fuzz harnesses briefly, the unit
# tests and nofussd under valgrind, the whole suite under ASan+UBSan, and the
# whole suite in the normal -Werror build (last, so its summary closes the
# output). Installs what it needs first (scripts/bootstrap.sh).
#
#   scripts/test.sh            everything
#   FUZZ_SECONDS=60 scripts/test.sh   longer fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
jobs=$(nproc)
fuzz_seconds=${FUZZ_SECONDS:-15}
export FUZZ_SECONDS

bash scripts/bootstrap.sh

step() { printf '\n== %s\n' "$*"; }

step "docs: every cited document and section exists"
python3 scripts/check-docs.py

step "fuzz: libFuzzer harnesses, ${fuzz_seconds}s each"
cmake -S . -B build-fuzz -DNOFUSS_FUZZ=ON -DCMAKE_C_COMPILER=clang \
  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined" >/dev/null
cmake --build build-fuzz -j"$jobs" >/dev/null
for harness in router rules checkline vercmp range config answer ota_stream pio_ini image signed_image \
    api_query api_body api_cookie esp_header stock_request creds; do
  corpus=$(mktemp -d)
  log="build-fuzz/fuzz_$harness.log"
  if ! ./build-fuzz/tests/fuzz/fuzz_$harness -max_total_time="$fuzz_seconds" -timeout=10 \
      -print_final_stats=0 "$corpus" "tests/fuzz/corpus/$harness" >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz_$harness FAILED (crash input saved in the working directory)"
    exit 1
  fi
  rm -rf "$corpus"
  echo "fuzz_$harness: $(grep -E '^Done' "$log")"
done

step "valgrind: unit tests, and nofussd under the integration tests"
cmake -S . -B build-valgrind -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-valgrind -j"$jobs" >/dev/null
mkdir -p build-valgrind/logs
for t in $(find build-valgrind/tests/unit -maxdepth 1 -type f -executable -name 'test_*' | sort); do
  log="build-valgrind/logs/$(basename "$t").log"
  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    "$t" >"$log" 2>&1 || { tail -n 60 "$log"; echo "valgrind: $t FAILED"; exit 1; }
  echo "valgrind: $(basename "$t") clean"
done
( cd tests/integration &&
  NOFUSSD="$top/build-valgrind/server/nofussd" \
  NOFUSSD_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect" \
  python3 -m unittest test_fixtures test_http 2>&1 | tail -n 3 )

step "ASan+UBSan: the whole suite"
cmake -S . -B build-asan -DNOFUSS_SANITIZE=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs" >/dev/null
( cd build-asan && ctest -j2 --output-on-failure )

step "the whole suite (-Werror build)"
cmake -S . -B build -DNOFUSS_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
( cd build && ctest -j2 --output-on-failure )
