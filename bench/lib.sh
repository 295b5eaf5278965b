# bench/lib.sh - what bench/stock.sh and bench/loadctl.sh share, sourced by
# both: a Release nofussd, the tools checked, a temporary folder removed at
# exit with every server started, the data (an image and 10,000 rules ahead
# of the bench's own rule for device BENCH), starting a server pinned to
# CPU 0, and the median of a list.
#
# Sets HERE, ROOT, NOFUSSD and T; bench_start sets PORT[NAME] and PID[NAME].

HERE=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
ROOT=$(dirname "$HERE")
if [ -z "${NOFUSSD:-}" ]; then
	cmake -S "$ROOT" -B "$ROOT/build-release" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null &&
		cmake --build "$ROOT/build-release" -j2 --target nofussd >/dev/null ||
		{ echo "bench: cannot build nofussd" >&2; exit 1; }
fi
NOFUSSD=${NOFUSSD:-$ROOT/build-release/server/nofussd}
for tool in wrk taskset curl python3; do
	command -v "$tool" >/dev/null || { echo "bench: needs $tool" >&2; exit 1; }
done

T=$(mktemp -d)
BENCH_PIDS=()
bench_cleanup() {
	for p in "${BENCH_PIDS[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap bench_cleanup EXIT

# The data in $T/data: public/firmware/bench.bin (an ESP8266 image of
# 200,012 bytes), its MD5 in $T/data/md5, and versions.json: 10,000 rules for
# other devices, then BENCH at 1.0.0 or later offered 2.0.0.
mkdir -p "$T/data/public/firmware"
python3 - "$T/data" <<'PYEOF'
import hashlib, json, sys
d = sys.argv[1]
img = bytes([0xE9, 1, 2, 0x20, 0, 0x10, 0x10, 0x40, 0, 0, 0x10, 0x40]) + bytes(200000)
open(d + "/public/firmware/bench.bin", "wb").write(img)
open(d + "/md5", "w").write(hashlib.md5(img).hexdigest())
rules = [{"origin": {"device": "OTHER%d" % i, "lt": "2.0"},
          "target": {"version": "2.0", "firmware": "/firmware/bench.bin"}} for i in range(10000)]
rules.append({"origin": {"device": "BENCH", "ge": "1.0.0"},
              "target": {"version": "2.0.0", "firmware": "/firmware/bench.bin"}})
json.dump(rules, open(d + "/versions.json", "w"))
PYEOF

# bench_start NAME ARGS...: nofussd on the data, pinned to CPU 0, its check
# log in $T/NAME.log and stderr in $T/NAME.err; sets PORT[NAME], PID[NAME].
declare -A PORT PID
bench_start() {
	local name=$1 port=
	shift
	taskset -c 0 "$NOFUSSD" -d "$T/data" -l 127.0.0.1 -p 0 --check-log "$T/$name.log" "$@" \
		2>"$T/$name.err" &
	BENCH_PIDS+=($!)
	PID[$name]=$!
	for _ in $(seq 100); do
		port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/$name.err")
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "$port" ] || { echo "bench: nofussd ($name) did not start" >&2; cat "$T/$name.err" >&2; exit 1; }
	PORT[$name]=$port
}

# The median of the numbers on stdin (blank-separated or one a line).
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
