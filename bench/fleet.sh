#!/usr/bin/env bash
# bench/fleet.sh - a 10,000-device rollout on this machine: `nofuss fleet`
# against nofussd on loopback, every device from 0.1.0 to 0.1.1 (a 64 KiB
# filesystem image, then a 64 KiB firmware, a reboot and a check that finds
# nothing new), and what it cost.
#
# Prints: time taken, checks/s, transfers and bytes, the fleet's peak RSS and
# RSS per device (also above a 1-device run, which holds libcurl's and
# OpenSSL's fixed cost), nofussd's RSS (peak and at the end) and CPU time of
# both, and a sanity check against nofussd's check log (every MAC reported
# 0.1.1 afterwards). It is a measurement: it exits 0 whenever the fleet ran,
# 1 when it could not run or the rollout did not complete.
#
# Usage: bench/fleet.sh
# Settings (environment): BENCH_DEVICES (10000), BENCH_CONCURRENCY (256),
#   BENCH_IMAGE_SIZE (64K), BENCH_TIMEOUT (s, 600), BUILD_DIR (build; built
#   with cmake when the binaries are missing), NOFUSSD and NOFUSS (binaries),
#   BENCH_SERVER_CPU (0) and BENCH_CLIENT_CPU (1) when taskset is there,
#   BENCH_KEEP=1 keeps the temporary folder.
# Needs: python3; /usr/bin/time (else peak RSS is sampled from /proc).
# Listens on and connects to 127.0.0.1 only.
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
NOFUSSD=${NOFUSSD:-$BUILD_DIR/server/nofussd}
NOFUSS=${NOFUSS:-$BUILD_DIR/tools/nofuss}
DEVICES=${BENCH_DEVICES:-10000}
CONCURRENCY=${BENCH_CONCURRENCY:-256}
IMAGE_SIZE=${BENCH_IMAGE_SIZE:-64K}
TIMEOUT=${BENCH_TIMEOUT:-600}
SCPU=${BENCH_SERVER_CPU:-0}
CCPU=${BENCH_CLIENT_CPU:-1}
DEVICE=FLEET_BENCH
MAC_BASE=5C:CF:7F:00:00:00
START_WAIT=100 # tenths of a second for nofussd to say where it listens

say() { printf '%s\n' "$*" >&2; }
die() { say "fleet.sh: $*"; exit 1; }

case "$DEVICES$CONCURRENCY$TIMEOUT" in
*[!0-9]*) die "BENCH_DEVICES, BENCH_CONCURRENCY and BENCH_TIMEOUT must be whole numbers" ;;
esac
command -v python3 >/dev/null 2>&1 || die "needs python3"

if [ ! -x "$NOFUSSD" ] || [ ! -x "$NOFUSS" ]; then
	say "building nofussd and nofuss in $BUILD_DIR"
	cmake -S "$ROOT" -B "$BUILD_DIR" >/dev/null || die "cmake failed"
	cmake --build "$BUILD_DIR" -j2 --target nofussd nofuss >/dev/null || die "build failed"
fi

# One socket per transfer in flight, on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null

PIN_S=() PIN_C=()
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
	PIN_S=(taskset -c "$SCPU")
	PIN_C=(taskset -c "$CCPU")
fi
TIME=()
[ -x /usr/bin/time ] && TIME=(/usr/bin/time -v -o)

T=$(mktemp -d "${TMPDIR:-/tmp}/nofuss-fleet-bench.XXXXXX") || die "cannot make a temporary folder"
SERVER_PID=
cleanup() {
	if [ -n "$SERVER_PID" ]; then
		kill "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		say "kept $T"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- the data folder: one rule, two images ----
mkdir -p "$T/data/public/firmware" || die "cannot write $T"
"$NOFUSS" mkimage --version 0.1.1 --device "$DEVICE" --size "$IMAGE_SIZE" \
	-o "$T/data/public/firmware/bench-0.1.1.bin" || die "mkimage failed"
"$NOFUSS" mkimage --fs --version 0.1.1 --size "$IMAGE_SIZE" \
	-o "$T/data/public/firmware/bench-0.1.1-fs.bin" || die "mkimage failed"
cat >"$T/data/versions.json" <<EOF
[{"origin": {"device": "$DEVICE", "max": "0.1.0"},
  "target": {"version": "0.1.1", "firmware": "/firmware/bench-0.1.1.bin",
             "spiffs": "/firmware/bench-0.1.1-fs.bin"}}]
EOF

# ---- nofussd, as in production: check log on, written to a file ----
"${PIN_S[@]}" "$NOFUSSD" -d "$T/data" -l 127.0.0.1 -p 0 --check-log "$T/checks.log" \
	--max-connections 16384 2>"$T/nofussd.err" &
SERVER_PID=$!
PORT=
for _ in $(seq "$START_WAIT"); do
	PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/nofussd.err")
	[ -n "$PORT" ] && break
	kill -0 "$SERVER_PID" 2>/dev/null || break
	sleep 0.1
done
[ -n "$PORT" ] || die "nofussd did not start: $(cat "$T/nofussd.err")"
URL=http://127.0.0.1:$PORT/

status_kb() { # PID FIELD: a VmRSS/VmHWM line of /proc/PID/status, in kB
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null
}
cpu_s() { # PID: user+system CPU seconds so far
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null
}

# Runs a fleet: NAME N MAC-BASE; JSON summary in $T/NAME.json, stderr in
# $T/NAME.err, peak RSS (kB) in $T/NAME.rss, its exit status returned.
fleet() {
	local name=$1 n=$2 base=$3 rc peak=0 pid now
	if [ ${#TIME[@]} -gt 0 ]; then
		"${TIME[@]}" "$T/$name.time" "${PIN_C[@]}" "$NOFUSS" fleet --server "$URL" \
			--devices "$n" --device "$DEVICE" --version 0.1.0 --mac-base "$base" \
			--concurrency "$CONCURRENCY" --until-updated --reboot-delay 0.1 \
			--timeout "$TIMEOUT" --progress 5 --json >"$T/$name.json" 2>"$T/$name.err"
		rc=$?
		peak=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$T/$name.time")
	else
		"${PIN_C[@]}" "$NOFUSS" fleet --server "$URL" \
			--devices "$n" --device "$DEVICE" --version 0.1.0 --mac-base "$base" \
			--concurrency "$CONCURRENCY" --until-updated --reboot-delay 0.1 \
			--timeout "$TIMEOUT" --progress 5 --json >"$T/$name.json" 2>"$T/$name.err" &
		pid=$!
		while kill -0 "$pid" 2>/dev/null; do # sampled: a lower bound
			now=$(status_kb "$pid" VmHWM)
			[ -n "$now" ] && [ "$now" -gt "$peak" ] && peak=$now
			sleep 0.2
		done
		wait "$pid"
		rc=$?
	fi
	echo "${peak:-0}" >"$T/$name.rss"
	return "$rc"
}

say "nofussd on $URL; a 1-device fleet first (fixed cost), then $DEVICES devices"
fleet base 1 5C:CF:7F:FF:00:00
BASE_RC=$?
[ "$BASE_RC" -eq 0 ] || die "the 1-device fleet failed (exit $BASE_RC): $(cat "$T/base.err")"
sleep 1.5 # nofussd flushes its check log each second: the base run's lines first
RSS0_SERVER=$(status_kb "$SERVER_PID" VmRSS)
CPU0_SERVER=$(cpu_s "$SERVER_PID")
LINES0=$(wc -l <"$T/checks.log" 2>/dev/null || echo 0)

fleet main "$DEVICES" "$MAC_BASE"
RC=$?
sleep 1.5 # nofussd flushes its check log each second
RSS_SERVER=$(status_kb "$SERVER_PID" VmRSS)
HWM_SERVER=$(status_kb "$SERVER_PID" VmHWM)
CPU_SERVER=$(cpu_s "$SERVER_PID")
grep '^\[fleet\]' "$T/main.err" >&2

python3 - "$T" "$DEVICES" "$CONCURRENCY" "$IMAGE_SIZE" "$RC" "$RSS0_SERVER" "$RSS_SERVER" \
	"$HWM_SERVER" "$CPU0_SERVER" "$CPU_SERVER" "$LINES0" <<'EOF'
import json, re, sys
t, n, conc, size, rc, rss0_s, rss_s, hwm_s, cpu0_s, cpu_s, lines0 = sys.argv[1:]
n = int(n)
try:
    s = json.load(open(t + "/main.json"))
except (OSError, ValueError) as e:
    print("fleet.sh: no summary from the fleet (exit %s): %s" % (rc, e), file=sys.stderr)
    print(open(t + "/main.err").read()[-2000:], file=sys.stderr)
    sys.exit(1)
peak = int(open(t + "/main.rss").read().split()[0])
base = int(open(t + "/base.rss").read().split()[0])

def cpu(name):
    try:
        text = open("%s/%s.time" % (t, name)).read()
    except OSError:
        return None
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", text).group(1))
    sys_ = float(re.search(r"System time \(seconds\): ([\d.]+)", text).group(1))
    return user, sys_

# The check log: every device at 0.1.0 (offered 0.1.1), then at 0.1.1.
lines = open(t + "/checks.log").read().splitlines()[int(lines0):]
rx = re.compile(r"MAC: (\S+) DEVICE: \S+ VERSION: (\S+) ")
new = {m.group(1) for m in map(rx.search, lines) if m and m.group(2) == "0.1.1"}

row = lambda k, v: print("  %-18s %s" % (k, v))
print("nofuss fleet benchmark: %d devices, concurrency %s, images %s firmware + %s "
      "filesystem, nofussd on loopback" % (n, conc, size, size))
ok = s["updated"] == n and s["failed"] == 0 and not s["timed_out"]
row("result", "%d updated, %d up to date, %d failed, %d unfinished (exit %s)%s"
    % (s["updated"], s["up_to_date"], s["failed"], s["unfinished"], rc,
       "" if ok else "  ROLLOUT INCOMPLETE"))
if s["failed_by_error"]:
    row("failures", ", ".join("%s: %d" % kv for kv in s["failed_by_error"].items()))
row("time taken", "%.2f s" % s["seconds"])
row("checks", "%d, %.1f checks/s" % (s["checks"], s["checks_per_s"]))
row("transfers", "%d (%.1f/s), %.1f MiB downloaded (%.1f MiB/s)"
    % (s["transfers"], s["transfers"] / s["seconds"], s["bytes_downloaded"] / 2**20,
       s["bytes_downloaded"] / 2**20 / s["seconds"]))
row("fleet peak RSS", "%d KiB = %.2f KiB per device" % (peak, peak / n))
if n > 1:
    row("", "%d KiB for 1 device: %.2f KiB per added device" % (base, (peak - base) / (n - 1)))
row("", "a sleeping device's state: %d bytes" % s["bytes_per_device"])
c = cpu("main")
if c:
    row("fleet CPU", "%.2f s user + %.2f s system" % c)
row("nofussd RSS", "%s KiB peak, %s KiB at the end (%s KiB before)" % (hwm_s, rss_s, rss0_s))
row("nofussd CPU", "%.2f s" % (float(cpu_s) - float(cpu0_s)))
row("check log", "%d lines, %d distinct MACs reported 0.1.1%s"
    % (len(lines), len(new), "" if len(new) == n else "  MISMATCH"))
sys.exit(0 if ok and len(new) == n else 1)
EOF
