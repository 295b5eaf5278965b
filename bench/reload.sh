#!/usr/bin/env bash
# bench/reload.sh - how long checks wait while nofussd reloads a large
# versions.json, before and after the snapshot builder thread, in one run.
#
# "before" is a Release build of git revision BENCH_BEFORE_REV (7150c09, the
# tree whose loop parsed versions.json itself), built from `git archive` in
# the temporary folder; "after" is a Release build of this tree. Each is
# started on a 16 MiB versions.json of 100,000 rules, pinned to CPU 0, and
# measured with wrk on CPU 1: header-form checks on 50 keep-alive
# connections for BENCH_DURATION seconds while a SIGHUP every
# BENCH_RELOAD_EVERY seconds makes it reload the whole file. wrk records
# every request's latency (--latency, a 60 s timeout so that no stalled
# request is dropped from the figures). The table gives the largest check
# latency, the 99th percentile, checks/s and the reloads completed, for
# both builds, and the ratio after/before.
# It is a measurement, not a test: it exits 0 whenever it ran.
#
# Usage: bench/reload.sh               (about 4 minutes, 2 of them building)
#        BENCH_QUICK=1 bench/reload.sh  (10 s per run, 1 round)
# Settings (environment): BENCH_DURATION (s, default 20), BENCH_ROUNDS (2,
#   interleaved; the table shows medians), BENCH_RELOAD_EVERY (s, 3),
#   BENCH_RULES (100000), BENCH_RULES_BYTES (16 MiB), BENCH_CONNS (50),
#   BENCH_BEFORE_REV (7150c09), NOFUSSD (the "after" binary; default a
#   Release build in build-release/), BENCH_SERVER_CPU (0),
#   BENCH_CLIENT_CPU (1), BENCH_KEEP=1 keeps the temporary folder.
# Needs: git, cmake, a C compiler, wrk, taskset, python3. See bench/README.md.
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
DUR=${BENCH_DURATION:-20}
ROUNDS=${BENCH_ROUNDS:-2}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	DUR=10
	ROUNDS=1
fi
EVERY=${BENCH_RELOAD_EVERY:-3}
RULES=${BENCH_RULES:-100000}
BYTES=${BENCH_RULES_BYTES:-16777216}
CONNS=${BENCH_CONNS:-50}
BEFORE_REV=${BENCH_BEFORE_REV:-7150c09}
SCPU=${BENCH_SERVER_CPU:-0}
CCPU=${BENCH_CLIENT_CPU:-1}
MAC=5C:CF:7F:8B:6B:26
DEVICE=ESPURNA_BENCH # helpers.py BENCH_DEVICE; its rule wants 1.0.0 <= version < 1.13.6
VERSION=1.13.5

say() { printf '%s\n' "$*" >&2; }
die() { say "reload.sh: $*"; exit 1; }

for tool in git cmake wrk taskset python3 curl; do
	command -v "$tool" >/dev/null 2>&1 || die "needs $tool"
done
case "$DUR$ROUNDS$EVERY$RULES$BYTES$CONNS" in
*[!0-9]*) die "BENCH_DURATION, BENCH_ROUNDS, BENCH_RELOAD_EVERY and the counts must be whole numbers" ;;
esac

T=$(mktemp -d "${TMPDIR:-/tmp}/nofuss-reload.XXXXXX") || die "cannot make a temporary folder"
mkdir -p "$T/bin" "$T/logs"
SCRIPT=reload.sh
# shellcheck source=bench/procs.sh
. "$HERE/procs.sh"

# ---- the two binaries -----------------------------------------------------------

build_before_after

# ---- data -------------------------------------------------------------------------

say "writing $RULES rules ($BYTES bytes at most) ..."
python3 "$HERE/helpers.py" mkimages "$T/data/public" || die "cannot write images"
ANSWER=$(python3 "$HERE/helpers.py" mkbig "$T/data" "$RULES" $((RULES - 10)) "$BYTES") ||
	die "cannot write rules"
RULES_SIZE=$(stat -c %s "$T/data/versions.json")
read -r PORT <<<"$(python3 "$HERE/helpers.py" ports 1)" || die "cannot find a free port"

# ---- one run -----------------------------------------------------------------------

wait_listening() { # ERRFILE PID: the start line, within 120 s (the first build is slow)
	for _ in $(seq 1200); do
		kill -0 "$2" 2>/dev/null || return 1
		grep -q "listening on" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# wrk's latency in ms from "Latency ... " / "99% ..." lines: 1.23ms, 4.5s, 800us
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
		printf "%.2f", n }'
}

# run WHICH ROUND: appends "WHICH max_ms p99_ms rps reloads errors" to $T/runs
run() {
	local which=$1 round=$2 err="$T/logs/$1-$2.err" out="$T/logs/$1-$2.wrk" pid wrk_pid got
	local next tick
	taskset -c "$SCPU" "$T/bin/nofussd-$which" -d "$T/data" -l 127.0.0.1 -p "$PORT" \
		--no-watch --check-log "$T/logs/checks-$which-$round.log" 2>"$err" &
	pid=$!
	PIDS+=("$pid")
	wait_listening "$err" "$pid" || die "nofussd ($which) did not start: $(head -c 400 "$err")"
	got=$(curl -s -H "X-ESP8266-MAC: $MAC" -H "X-ESP8266-DEVICE: $DEVICE" \
		-H "X-ESP8266-VERSION: $VERSION" "http://127.0.0.1:$PORT/")
	[ "$got" = "$ANSWER" ] || die "nofussd ($which) answered '$got', expected '$ANSWER'"
	taskset -c "$CCPU" wrk -t1 -c"$CONNS" -d"${DUR}s" --timeout 60s --latency \
		-H "X-ESP8266-MAC: $MAC" -H "X-ESP8266-DEVICE: $DEVICE" -H "X-ESP8266-VERSION: $VERSION" \
		"http://127.0.0.1:$PORT/" >"$out" 2>&1 &
	wrk_pid=$!
	PIDS+=("$wrk_pid")
	# SIGHUP every EVERY seconds while wrk runs, the first after 1 s.
	next=1
	for tick in $(seq $((DUR * 10))); do
		kill -0 "$wrk_pid" 2>/dev/null || break
		if [ "$tick" = $((next * 10)) ]; then
			kill -HUP "$pid" 2>/dev/null
			next=$((next + EVERY))
		fi
		sleep 0.1
	done
	wait "$wrk_pid"
	forget "$wrk_pid"
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	forget "$pid"
	printf '%s %s %s %s %s %s\n' "$which" \
		"$(to_ms "$(awk '/^    Latency/ {print $4}' "$out")")" \
		"$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")" \
		"$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")" \
		"$(grep -c "reloaded" "$err")" \
		"$(awk '/Socket errors|Non-2xx/ {s = s $0 "; "} END {print (s == "" ? "none" : s)}' "$out" |
			tr ' ' '_')" >>"$T/runs"
	say "  $which round $round: $(tail -1 "$T/runs")"
}

say "measuring: $DUR s per run, $ROUNDS round(s), SIGHUP every $EVERY s ..."
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$ROUNDS"); do
	run before "$round"
	run after "$round"
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table ---------------------------------------------------------------------

median() { # WHICH COLUMN
	awk -v w="$1" -v c="$2" '$1 == w {print $c}' "$T/runs" | sort -g |
		awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3fx", a / b; else print "-" }'; }
row() { # LABEL COLUMN UNIT
	local b a
	b=$(median before "$2")
	a=$(median after "$2")
	printf '%-28s %14s %14s %12s\n' "$1" "$b$3" "$a$3" "$(ratio "$a" "$b")"
}

echo "nofussd: checks during reloads of a ${RULES_SIZE}-byte, $RULES-rule versions.json"
echo "  wrk -t1 -c$CONNS, ${DUR} s per run, SIGHUP every ${EVERY} s, server on CPU $SCPU, wrk on CPU $CCPU;"
echo "  medians of $ROUNDS round(s); load average $LOAD_START at start, $LOAD_END at end"
echo "  before: $BEFORE_REV (Release); after: $AFTER_INFO (Release)"
echo
printf '%-28s %14s %14s %12s\n' "" "before" "after" "after/before"
row "largest check latency" 2 " ms"
row "99th percentile latency" 3 " ms"
row "checks/s" 4 ""
row "reloads completed" 5 ""
echo
echo "per run (which max_ms p99_ms checks/s reloads wrk-errors):"
sed 's/^/  /' "$T/runs"
