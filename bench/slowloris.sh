#!/usr/bin/env bash
# bench/slowloris.sh - checks answered, and their latency, while a slowloris
# holds nofussd's connections (issue 8, item 4), before and after the
# request-head deadline and shedding at the limit, in one run.
#
# "before" is a Release build of git revision BENCH_BEFORE_REV (main),
# built from `git archive` in the temporary folder; "after" is a Release
# build of this tree. Each runs with its default settings (max-connections
# 16384, idle-timeout 30; after: header-timeout 10), pinned to CPU 0. On CPU
# 1, `holdconns -m drip` opens N connections that each send the start of a
# request head and then one more byte every BENCH_DRIP_S seconds, never
# finishing it (a closed one is opened again, as an attacker would), for
# each N of BENCH_SLOW_COUNTS (1,000 and 16,400, the figures of issue 8).
# BENCH_SETTLE_S seconds after every connection is open (long enough for
# the head deadline to have begun closing them), `holdconns -m probe` sends
# BENCH_PROBES real checks, each on a new connection with a 5 s timeout,
# BENCH_PROBE_GAP_MS apart. The table gives the checks answered (200 with
# exactly the expected answer) and their latency (median, 99th percentile,
# max) for both builds, and the ratios after/before.
# It is a measurement, not a test: it exits 0 whenever it ran.
#
# Usage: bench/slowloris.sh             (about 6 minutes, 1 of them building)
# Settings (environment): BENCH_SLOW_COUNTS ("1000 16400"), BENCH_DRIP_S (5),
#   BENCH_SETTLE_S (12), BENCH_PROBES (20), BENCH_PROBE_GAP_MS (500),
#   BENCH_BEFORE_REV (main), NOFUSSD (the "after" binary; default a Release
#   build in build-release/), BENCH_SERVER_CPU (0), BENCH_CLIENT_CPU (1),
#   BENCH_KEEP=1 keeps the temporary folder.
# Open files: each side needs one per connection (16,400 + 64); the script
# raises its limit to the hard limit, and the hard limit too when run as
# root. Needs: git, cmake, gcc, taskset, python3. See bench/README.md.
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
COUNTS=${BENCH_SLOW_COUNTS:-"1000 16400"}
DRIP=${BENCH_DRIP_S:-5}
SETTLE=${BENCH_SETTLE_S:-12}
PROBES=${BENCH_PROBES:-20}
GAP=${BENCH_PROBE_GAP_MS:-500}
BEFORE_REV=${BENCH_BEFORE_REV:-main}
SCPU=${BENCH_SERVER_CPU:-0}
CCPU=${BENCH_CLIENT_CPU:-1}
PROBE_TIMEOUT=5

say() { printf '%s\n' "$*" >&2; }
die() { say "slowloris.sh: $*"; exit 1; }

for tool in git cmake gcc taskset python3; do
	command -v "$tool" >/dev/null 2>&1 || die "needs $tool"
done
case "${COUNTS// /}$DRIP$SETTLE$PROBES$GAP" in
*[!0-9]*) die "the counts and times must be whole numbers" ;;
esac

T=$(mktemp -d "${TMPDIR:-/tmp}/nofuss-slowloris.XXXXXX") || die "cannot make a temporary folder"
mkdir -p "$T/bin" "$T/logs" "$T/data/public"
SCRIPT=slowloris.sh
# shellcheck source=bench/procs.sh
. "$HERE/procs.sh"

# One file per connection on each side.
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
for n in $COUNTS; do
	[ "$NOFILE" = unlimited ] || [ "$NOFILE" -ge $((n + 64)) ] ||
		die "open files limited to $NOFILE: $n connections need $((n + 64)) (run as root)"
done

# ---- the binaries ------------------------------------------------------------------

build_before_after
gcc -O2 -Wall -o "$T/bin/holdconns" "$HERE/holdconns.c" || die "cannot compile holdconns.c"
HC=$T/bin/holdconns
BEFORE_INFO="$BEFORE_REV at $(git -C "$ROOT" rev-parse --short "$BEFORE_REV" 2>/dev/null || echo '?')"

# ---- data: one rule, and the requests --------------------------------------------

cat >"$T/data/versions.json" <<'EOF'
[{"origin": {"device": "LAMP", "min": "1.0", "max": "1.9"},
  "target": {"version": "2.0.0", "firmware": "/lamp-2.0.0.bin"}}]
EOF
printf '\xe9lamp' >"$T/data/public/lamp-2.0.0.bin"
printf 'GET /LAMP/1.0 HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: NoFussClient\r\n\r\n' >"$T/check.http"
printf 'GET /LAMP/1.0 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: ' >"$T/drip.http"
read -r PORT <<<"$(python3 "$HERE/helpers.py" ports 1)" || die "cannot find a free port"

# ---- one run -------------------------------------------------------------------------

wait_for() { # FILE PATTERN PID SECONDS
	for _ in $(seq $(($4 * 10))); do
		kill -0 "$3" 2>/dev/null || return 1
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# run WHICH N: appends "N WHICH answered/probes p50 p99 max server_closed" to $T/runs
run() {
	local which=$1 n=$2 err="$T/logs/$1-$2.err" drip="$T/logs/$1-$2.drip" probe="$T/logs/$1-$2.probe"
	local pid hc hold
	taskset -c "$SCPU" "$T/bin/nofussd-$which" -d "$T/data" -l 127.0.0.1 -p "$PORT" \
		--no-watch --check-log "" 2>"$err" &
	pid=$!
	PIDS+=("$pid")
	wait_for "$err" "listening on" "$pid" 30 || die "nofussd ($which) did not start: $(head -c 400 "$err")"
	# The answer every probe must get: the first build's, which the second must match.
	python3 -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=5).read())' \
		"http://127.0.0.1:$PORT/LAMP/1.0" >"$T/answer.$which" || die "nofussd ($which) did not answer a check"
	[ -f "$T/answer.json" ] || cp "$T/answer.$which" "$T/answer.json"
	cmp -s "$T/answer.json" "$T/answer.$which" || say "  note: $which answers $(cat "$T/answer.$which")"
	grep -q '"version":"2.0.0"' "$T/answer.json" || die "unexpected answer: $(cat "$T/answer.json")"
	hold=$((SETTLE + PROBES * (GAP / 1000 + PROBE_TIMEOUT + 1) + 10))
	taskset -c "$CCPU" "$HC" -p "$PORT" -r "$T/drip.http" -m drip -n "$n" -D "$DRIP" -S 120 \
		-H "$hold" -c 500 >"$drip" 2>&1 &
	hc=$!
	PIDS+=("$hc")
	wait_for "$drip" "^held" "$hc" 130 || die "holdconns did not open $n connections: $(cat "$drip")"
	say "  $which, $n connections: $(grep '^held' "$drip"); probing after ${SETTLE}s ..."
	sleep "$SETTLE"
	taskset -c "$CCPU" "$HC" -p "$PORT" -r "$T/check.http" -m probe -n "$PROBES" -G "$GAP" \
		-T "$PROBE_TIMEOUT" -e "$T/answer.json" >"$probe" 2>&1
	kill -TERM "$hc" 2>/dev/null
	wait "$hc" 2>/dev/null
	forget "$hc"
	kill -0 "$pid" 2>/dev/null || say "  nofussd ($which) died during the run"
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	forget "$pid"
	say "  $(cat "$probe")"
	awk -v n="$n" -v w="$which" '/^probe/ {
		for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		printf "%s %s %s %s %s %s\n", n, w, v["answered"],
			(v["lat_ms_med"] == "" ? "-" : v["lat_ms_med"]),
			(v["lat_ms_p99"] == "" ? "-" : v["lat_ms_p99"]),
			(v["lat_ms_max"] == "" ? "-" : v["lat_ms_max"]) }' "$probe" >>"$T/runs"
}

: >"$T/runs"
for n in $COUNTS; do
	for which in before after; do
		run "$which" "$n"
	done
done

# ---- the table ------------------------------------------------------------------------

printf '\nnofussd under a slowloris: real checks answered while N connections drip a request head\n'
printf 'before: %s; after: %s\n' "$BEFORE_INFO" "$AFTER_INFO"
printf 'defaults (max-connections 16384); a byte every %s s per connection; %s checks, %s ms apart, 5 s timeout\n\n' \
	"$DRIP" "$PROBES" "$GAP"
awk '
	{ ans[$1, $2] = $3; p50[$1, $2] = $4; p99[$1, $2] = $5; mx[$1, $2] = $6; if (!seen[$1]++) order[++k] = $1 }
	function ratio(a, b) { return (a == "-" || b == "-" || b + 0 == 0) ? "-" : sprintf("%.3f", a / b) }
	function frac(s) { split(s, p, "/"); return p[2] ? p[1] / p[2] : 0 }
	END {
		printf "%-12s %-7s %-9s %10s %10s %10s\n", "connections", "build", "answered", "p50 ms", "p99 ms", "max ms"
		for (i = 1; i <= k; i++) {
			n = order[i]
			for (j = 1; j <= 2; j++) {
				w = (j == 1) ? "before" : "after"
				printf "%-12s %-7s %-9s %10s %10s %10s\n", n, w, ans[n, w], p50[n, w], p99[n, w], mx[n, w]
			}
			fb = frac(ans[n, "before"]); fa = frac(ans[n, "after"])
			printf "%-12s %-7s %-9s %10s %10s %10s\n", n, "ratio", \
				(fb > 0 ? sprintf("%.2fx", fa / fb) : (fa > 0 ? "inf" : "-")), \
				ratio(p50[n, "after"], p50[n, "before"]), ratio(p99[n, "after"], p99[n, "before"]), \
				ratio(mx[n, "after"], mx[n, "before"])
		}
		print "\nratio: answered after/before; latencies after/before (lower is better; - when a side answered none)"
	}' "$T/runs"
