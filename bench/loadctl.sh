#!/usr/bin/env bash
# bench/loadctl.sh - what max-downloads costs the check path
# (docs/ROLLOUTS.md section 5): checks/s with the limit set, and not reached,
# against the limit unset, in one run.
#
# Starts two nofussd (Release build, same data: 10,000 rules plus the bench's
# own, check log on, store off so that its writer thread does not share the
# CPU), one with --max-downloads 20 and one without, both pinned to CPU 0,
# and drives them in turn with wrk (-t1 -c50, keep-alive) pinned to CPU 1,
# with a NoFUSS header-form check that is offered an update (200 JSON): the
# answer that asks nf_downloads_full. No image is downloaded, so the limit
# is never reached and every answer is the offer (checked before and after).
# BENCH_ROUNDS rounds (default 11) of one short run each (BENCH_DURATION s,
# default 2), back to back and in alternating order, so that the two runs of
# a round share the machine's load; the table shows the median checks/s of
# each, and the ratio limited/unset: of the medians, and the median of the
# rounds' own ratios. Beside throughput, the server's own CPU time per check
# (utime + stime from /proc/PID/stat over each run, divided by the requests
# wrk counted): the figure that resists a busy machine best, since waiting
# for the CPU costs throughput but not CPU time.
# A measurement, not a test: exits 0 whenever it ran.
#
# Usage: bench/loadctl.sh   (BENCH_DURATION, BENCH_ROUNDS; NOFUSSD=binary)
# Needs: wrk, taskset, curl, python3. Shares bench/lib.sh with bench/stock.sh.
set -u -o pipefail

DUR=${BENCH_DURATION:-2}
ROUNDS=${BENCH_ROUNDS:-11}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Store off, so that its writer thread does not share the CPU.
bench_start unlimited --store off
bench_start limited --store off --max-downloads 20
NAMES=(unlimited limited)

CHECK=(-H "User-Agent: NoFussClient" -H "X-ESP8266-MAC: 5C:CF:7F:8B:6B:26"
	-H "X-ESP8266-DEVICE: BENCH" -H "X-ESP8266-VERSION: 1.5.0" -H "X-ESP8266-BUILD: 1")
offered() { # NAME: the answer is the offer, not {} (deferred)
	local body
	body=$(curl -s "${CHECK[@]}" "http://127.0.0.1:${PORT[$1]}/")
	[ "$body" = '{"version":"2.0.0","firmware":"/firmware/bench.bin","spiffs":""}' ] ||
		{ echo "bench: $1 answered $body" >&2; exit 1; }
}
for n in "${NAMES[@]}"; do offered "$n"; done

HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # the comm field has no blank
declare -A RUNS CPU
RATIOS=
for r in $(seq "$ROUNDS"); do
	order=("${NAMES[@]}")
	[ $((r % 2)) -eq 0 ] && order=(limited unlimited)
	declare -A RPS=()
	for n in "${order[@]}"; do
		echo "bench: round $r: $n" >&2
		t0=$(ticks "${PID[$n]}")
		taskset -c 1 wrk -t1 -c50 -d"${DUR}s" "${CHECK[@]}" "http://127.0.0.1:${PORT[$n]}/" \
			>"$T/$n.$r" 2>&1
		t1=$(ticks "${PID[$n]}")
		rps=$(awk '/^Requests\/sec:/ {print $2}' "$T/$n.$r")
		reqs=$(awk '/requests in/ {print $1}' "$T/$n.$r")
		CPU[$n]="${CPU[$n]:-} $(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="${reqs:-0}" \
			'BEGIN {printf "%.2f", (n > 0 ? t * 1e6 / hz / n : 0)}')"
		if grep -q 'Non-2xx or 3xx' "$T/$n.$r"; then
			echo "bench: $n: wrong answers during the run" >&2
			rps=0
		fi
		RPS[$n]=${rps:-0}
		RUNS[$n]="${RUNS[$n]:-} ${rps:-0}"
	done
	RATIOS="$RATIOS $(awk -v a="${RPS[limited]}" -v b="${RPS[unlimited]}" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')"
done
for n in "${NAMES[@]}"; do offered "$n"; done # never deferred: the limit was not reached

U=$(echo "${RUNS[unlimited]}" | median)
L=$(echo "${RUNS[limited]}" | median)
CU=$(echo "${CPU[unlimited]}" | median)
CL=$(echo "${CPU[limited]}" | median)
printf '%-32s %10s %14s\n' "nofussd" "checks/s" "CPU us/check"
printf '%-32s %10.0f %14.2f\n' "max-downloads unset (anchor)" "$U" "$CU"
printf '%-32s %10.0f %14.2f\n' "max-downloads 20, not reached" "$L" "$CL"
printf 'ratio limited/unset, CPU per check: %.3f (medians)\n' \
	"$(awk -v a="$CL" -v b="$CU" 'BEGIN {print (b > 0 ? a / b : 0)}')"
printf 'ratio limited/unset, checks/s: %.3f of the medians, %.3f median of the rounds'"'"' ratios\n' \
	"$(awk -v a="$L" -v b="$U" 'BEGIN {print (b > 0 ? a / b : 0)}')" "$(echo "$RATIOS" | median)"
echo "rounds' ratios:$RATIOS"
echo "checks/s, unset:  ${RUNS[unlimited]}"
echo "checks/s, limited:${RUNS[limited]}"
echo "CPU us/check, unset:  ${CPU[unlimited]}"
echo "CPU us/check, limited:${CPU[limited]}"
echo "(each nofussd on CPU 0 in turn, wrk -t1 -c50 keep-alive on CPU 1, ${DUR} s x $ROUNDS rounds,"
echo " alternating; 10,001 rules, check log on, store off; header-form checks answered with the offer;"
echo " load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
