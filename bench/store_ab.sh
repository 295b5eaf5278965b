#!/usr/bin/env bash
# bench/store_ab.sh - the fleet store's writer before and after a change, in
# the same run: bench/store_bench.c built against each tree's library, and
# bench/store_server.py on each tree's nofussd, alternating, each run on a
# database of its own (SQLite: its own file; PostgreSQL: CREATE DATABASE in
# one throw-away cluster made by tests/integration/pgcluster.py). Prints each
# run's figures with the load average at its start; on a shared machine
# compare pairs, not single runs. A measurement, not a test: exits 0
# whenever it ran. Figures: docs/STORE.md section 10.
#
#   bench/store_ab.sh BEFORE-BUILD AFTER-BUILD [DEVICES]   (default 100000)
#   ROUNDS (2) library runs of each; SROUNDS (1) nofussd runs of each on
#   PostgreSQL; SQLITE=0 or PG=0 skips a backend, SERVER=0 the nofussd part;
#   BENCH_ROUNDS (3) and BENCH_DURATION (3 s) as in bench/store_server.py
#
# e.g. git worktree add /tmp/base main && cmake -S /tmp/base -B build-base &&
#      cmake --build build-base -j2 && bench/store_ab.sh build-base build
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
[ $# -ge 2 ] || { sed -n '2,17p' "$0" >&2; exit 2; }
devices=${3:-100000}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nofuss-store-ab.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
i=0
for b in "$1" "$2"; do
  v=$([ $i = 0 ] && echo before || echo after); i=1
  [ -f "$b/server/store/libnofuss_store.a" ] || { echo "store_ab.sh: build $b first" >&2; exit 1; }
  gcc -std=c11 -O2 -D_GNU_SOURCE -I"$top/server/store" -I"$top/common" "$here/store_bench.c" \
    "$b/server/store/libnofuss_store.a" "$b/common/libnofuss_common.a" \
    -lsqlite3 -lpq -lcrypto -lpthread -o "$tmp/bench_$v"
  cp "$b/server/nofussd" "$tmp/nofussd_$v"
done
export TMPB=$tmp DEVICES=$devices ROUNDS=${ROUNDS:-2} SROUNDS=${SROUNDS:-1} SERVER=${SERVER:-1} HERE=$here
export BENCH_ROUNDS=${BENCH_ROUNDS:-3} BENCH_DURATION=${BENCH_DURATION:-3}
la() { cut -d' ' -f1-3 /proc/loadavg; }
echo "bench/store_ab.sh: $(nproc) CPUs, $devices devices, before $1, after $2"
if [ "${SQLITE:-1}" = 1 ]; then
  for r in $(seq "$ROUNDS"); do for v in before after; do
    echo "SQLite library, $v, run $r, load average $(la)"
    "$tmp/bench_$v" "sqlite://$tmp/sq_${v}_$r/fleet.db" "$devices" | grep -E 'first|again|update'
  done; done
  if [ "$SERVER" = 1 ]; then for v in before after; do
    echo "nofussd SQLite, $v, load average $(la)"
    python3 "$here/store_server.py" "$tmp/nofussd_$v" sqlite "$devices"
  done; fi
fi
if [ "${PG:-1}" = 1 ]; then
  pgbin=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import pgcluster; b = pgcluster.find_bin(); print(b or ""); sys.exit(b is None)' "$top/tests/integration") ||
    { echo "PostgreSQL skipped: server binaries not found"; exit 0; }
  PSQL=$pgbin/psql python3 "$top/tests/integration/pgcluster.py" run -- bash -c '
    la() { cut -d" " -f1-3 /proc/loadavg; }
    db() { "$PSQL" -X -q -d "$NOFUSS_PG_BASE/postgres" -c "CREATE DATABASE $1"; echo "$NOFUSS_PG_BASE/$1"; }
    for r in $(seq "$ROUNDS"); do for v in before after; do
      url=$(db "lib_${v}_$r")
      echo "PostgreSQL library, $v, run $r, load average $(la)"
      "$TMPB/bench_$v" "$url" "$DEVICES" | grep -E "first|again|update"
    done; done
    if [ "$SERVER" = 1 ]; then for r in $(seq "$SROUNDS"); do for v in before after; do
      url=$(db "srv_${v}_$r")
      echo "nofussd PostgreSQL, $v, run $r, load average $(la)"
      python3 "$HERE/store_server.py" "$TMPB/nofussd_$v" "$url" "$DEVICES"
    done; done; fi'
fi
echo "load average at the end $(la)"
