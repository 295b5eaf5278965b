#!/usr/bin/env bash
# bench/stock.sh - checks/s of the stock-client paths (docs/PROTOCOL.md
# section 5) against the NoFUSS header-form check, in one run.
#
# Starts one nofussd (Release build, check log on, 10,000 rules plus the
# bench's own) pinned to CPU 0, and drives it with wrk (-t1 -c50, keep-alive)
# pinned to CPU 1:
#   anchor  a NoFUSS header-form check, offered an update (200 JSON)
#   stock   an ESP8266 updater at /update/BENCH, current by its version (304)
#   md5     the same without a version, known by its sketch MD5 (304)
#   held    an update held back: the image is larger than the free space (304)
#   esphome the ESPHome manifest /esphome/BENCH/manifest.json (200 JSON)
# Each runs BENCH_ROUNDS times (default 3), interleaved; the table shows the
# median checks/s of each, and its ratio to the anchor's median measured in
# the same run. A measurement, not a test: exits 0 whenever it ran.
#
# Usage: bench/stock.sh   (BENCH_DURATION s per run, default 5; NOFUSSD=binary)
# Needs: wrk, taskset, curl, python3. Shares bench/lib.sh with bench/loadctl.sh.
set -u -o pipefail

DUR=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MD5=$(cat "$T/data/md5")

bench_start nofussd
U=http://127.0.0.1:${PORT[nofussd]}

# The ESP8266 updater's headers (tests/fixtures/requests/esp8266-httpupdate-3.1-*.http).
UPD=(-H "User-Agent: ESP8266-http-Update" -H "x-ESP8266-Chip-ID: 9923366"
	-H "x-ESP8266-STA-MAC: 5C:CF:7F:8B:6B:26" -H "x-ESP8266-AP-MAC: 5E:CF:7F:8B:6B:26"
	-H "x-ESP8266-sketch-size: 200012" -H "x-ESP8266-chip-size: 1048576"
	-H "x-ESP8266-sdk-version: 2.2.2-dev(38a443e)" -H "x-ESP8266-mode: sketch")
declare -A ARGS URL WANT
URL[anchor]=$U/
ARGS[anchor]='-H "X-ESP8266-MAC: 5C:CF:7F:8B:6B:26" -H "X-ESP8266-DEVICE: BENCH" -H "X-ESP8266-VERSION: 1.5.0" -H "X-ESP8266-BUILD: 1"'
WANT[anchor]=200
URL[stock]=$U/update/BENCH
ARGS[stock]="$(printf '%q ' "${UPD[@]}") -H \"x-ESP8266-free-space: 655360\" -H \"x-ESP8266-sketch-md5: 00000000000000000000000000000000\" -H \"x-ESP8266-version: 2.0.0\""
WANT[stock]=304
URL[md5]=$U/update/BENCH
ARGS[md5]="$(printf '%q ' "${UPD[@]}") -H \"x-ESP8266-free-space: 655360\" -H \"x-ESP8266-sketch-md5: $MD5\""
WANT[md5]=304
URL[held]=$U/update/BENCH
ARGS[held]="$(printf '%q ' "${UPD[@]}") -H \"x-ESP8266-free-space: 100000\" -H \"x-ESP8266-sketch-md5: 00000000000000000000000000000000\" -H \"x-ESP8266-version: 1.5.0\""
WANT[held]=304
URL[esphome]=$U/esphome/BENCH/manifest.json
ARGS[esphome]='-H "User-Agent: ESPHome/2025.11.0 (https://esphome.io)"'
WANT[esphome]=200
NAMES=(anchor stock md5 held esphome)

# Each path answers what it should before it is measured.
for n in "${NAMES[@]}"; do
	got=$(eval curl -s -o /dev/null -w '%{http_code}' "${ARGS[$n]}" "${URL[$n]}")
	[ "$got" = "${WANT[$n]}" ] || { echo "bench: $n answered $got, not ${WANT[$n]}" >&2; exit 1; }
done

declare -A RUNS
for r in $(seq "$ROUNDS"); do
	for n in "${NAMES[@]}"; do
		echo "bench: round $r: $n" >&2
		eval taskset -c 1 wrk -t1 -c50 -d"${DUR}s" "${ARGS[$n]}" "${URL[$n]}" >"$T/$n.$r" 2>&1
		rps=$(awk '/^Requests\/sec:/ {print $2}' "$T/$n.$r")
		if grep -q 'Non-2xx or 3xx' "$T/$n.$r"; then
			echo "bench: $n: wrong answers during the run" >&2
			rps=0
		fi
		RUNS[$n]="${RUNS[$n]:-} ${rps:-0}"
	done
done

ANCHOR=$(echo "${RUNS[anchor]}" | median)
printf '%-8s %12s %8s   %s\n' path "checks/s" ratio "runs"
for n in "${NAMES[@]}"; do
	m=$(echo "${RUNS[$n]}" | median)
	printf '%-8s %12.0f %8.2f  %s\n' "$n" "$m" "$(awk -v a="$m" -v b="$ANCHOR" 'BEGIN {print (b > 0 ? a / b : 0)}')" "${RUNS[$n]}"
done
echo "(nofussd on CPU 0, wrk -t1 -c50 keep-alive on CPU 1, ${DUR} s x $ROUNDS rounds, 10,001 rules;"
echo " ratio = checks/s / the anchor's median, a NoFUSS header-form check, same run)"
