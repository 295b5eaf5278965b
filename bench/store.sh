#!/usr/bin/env bash
# bench/store.sh - how many events per second the fleet store's writer
# records for 100,000 distinct devices, on SQLite and on PostgreSQL, and the
# memory its queue takes at the default capacity. A measurement, not a test:
# it exits 0 whenever it ran. Then nofussd itself with the store on, against
# the same nofussd with it off, in the same run (bench/store_server.py).
# Figures: docs/STORE.md section 10.
#
#   bench/store.sh [DEVICES]          (default 100000)
#   BENCH_SERVER=0 skips the nofussd part; NOFUSSD (default build/server/nofussd),
#   BENCH_ROUNDS (3), BENCH_DURATION (5 s per wrk run); BENCH_BATCH sets the
#   library bench's batch_max, PGOPTIONS its PostgreSQL session's settings
#
# Needs build/ (cmake --build build) for libnofuss_store.a, gcc, and for the
# PostgreSQL figures Debian's postgresql (its server runs from a throw-away
# cluster made by tests/integration/pgcluster.py, on 127.0.0.1 only, with
# fsync on as in production). SQLite runs on a file in a temporary folder.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
build=${BUILD:-$top/build}
devices=${1:-100000}
lib=$build/server/store/libnofuss_store.a
common=$build/common/libnofuss_common.a
[ -f "$lib" ] && [ -f "$common" ] || { echo "store.sh: build first: cmake --build build" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nofuss-store-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
gcc -std=c11 -O2 -D_GNU_SOURCE -I"$top/server/store" -I"$top/common" \
  "$here/store_bench.c" "$lib" "$common" -lsqlite3 -lpq -lcrypto -lpthread -o "$tmp/store_bench"

echo "bench/store.sh: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "SQLite (WAL, synchronous=NORMAL), file in $tmp"
"$tmp/store_bench" "sqlite://$tmp/sqlite/fleet.db" "$devices"
"$tmp/store_bench" --queue "sqlite://$tmp/queue/fleet.db"

echo "PostgreSQL (throw-away cluster, fsync on)"
if python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import pgcluster; sys.exit(pgcluster.find_bin() is None)' "$top/tests/integration"; then
  python3 "$top/tests/integration/pgcluster.py" run -- \
    sh -c '"$0" "$NOFUSS_PG_BASE/postgres" "$1"' "$tmp/store_bench" "$devices"
else
  echo "  skipped: PostgreSQL server binaries not found"
fi

# nofussd with the store against the same nofussd with "store = off", in the
# same run (bench/store_server.py): checks/s, 100,000 devices checking in
# within 10 s, the RSS with them in the inventory.
nofussd=${NOFUSSD:-$build/server/nofussd}
if [ "${BENCH_SERVER:-1}" = 1 ] && [ -x "$nofussd" ] && command -v wrk >/dev/null && command -v taskset >/dev/null; then
  cp "$nofussd" "$tmp/nofussd" # a rebuild during the run does not matter
  echo "nofussd with the store, SQLite"
  python3 "$here/store_server.py" "$tmp/nofussd" sqlite "$devices"
  echo "nofussd with the store, PostgreSQL"
  if pgbin=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import pgcluster; b = pgcluster.find_bin(); print(b or ""); sys.exit(b is None)' "$top/tests/integration"); then
    PSQL=$pgbin/psql python3 "$top/tests/integration/pgcluster.py" run -- \
      sh -c 'python3 "$0" "$1" "$NOFUSS_PG_BASE/postgres" "$2"' "$here/store_server.py" "$tmp/nofussd" "$devices"
  else
    echo "  skipped: PostgreSQL server binaries not found"
  fi
else
  echo "nofussd with the store: skipped (needs $nofussd, wrk and taskset; BENCH_SERVER=0 skips it)"
fi
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
