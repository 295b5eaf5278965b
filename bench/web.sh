#!/usr/bin/env bash
# bench/web.sh - what the back office's device list costs (issue 13,
# docs/WEB.md section 8): the server time of the page's first page,
# GET /api/v1/devices?limit=50 (sorted by last seen, newest first, as the
# page asks), through a session cookie as the page sends it, on a real
# nofussd with a SQLite store of DEVICES devices (filled by
# tests/integration/admin_fill), against its anchor: the same request on
# an empty store, and the summary (/api/v1/summary) on the full one.
# Medians of 21 requests on one kept-alive connection. A measurement, not
# a test: it exits 0 whenever it ran.
#
#   bench/web.sh [DEVICES]          (default 100000)
#
# Needs build/ (cmake --build build): nofussd and admin_fill.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
build=${BUILD:-$top/build}
devices=${1:-100000}
nofussd=$build/server/nofussd
fill=$build/tests/integration/admin_fill
[ -x "$nofussd" ] && [ -x "$fill" ] || { echo "web.sh: build first: cmake --build build" >&2; exit 1; }

NAME=web
# shellcheck source=bench/admin_data.sh
. "$here/admin_data.sh"

# Starts nofussd on store DB; sets pid and port.
start() {
  printf '[nofussd]\nstore = sqlite://%s\n' "$1" >"$tmp/nofussd.ini"
  : >"$tmp/stderr"
  "$nofussd" -d "$tmp" -l 127.0.0.1 -p 0 -L "" -c "$tmp/nofussd.ini" --admin-port 0 \
    --admin-token-file "$tmp/tokens" 2>"$tmp/stderr" &
  pid=$!
  for _ in $(seq 100); do
    grep -q "admin API at" "$tmp/stderr" && break
    sleep 0.1
  done
  port=$(grep -o 'admin API at http://127.0.0.1:[0-9]*' "$tmp/stderr" | grep -o '[0-9]*$')
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

# Prints the median ms of each path, signed in with a session cookie.
measure() {
  python3 - "$port" "$token" "$@" <<'PY'
import http.client, json, statistics, sys, time
port, token, paths = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
c.request("POST", "/api/v1/session", body=json.dumps({"token": token}))
r = c.getresponse()
r.read()
cookie = r.getheader("Set-Cookie").split(";")[0]
for path in paths:
    times = []
    for _ in range(21):
        t = time.monotonic()
        c.request("GET", path, headers={"Cookie": cookie})
        r = c.getresponse()
        body = r.read()
        times.append((time.monotonic() - t) * 1000)
        assert r.status == 200, (path, r.status, body[:200])
    print("%.3f %d" % (statistics.median(times), len(body)))
PY
}

echo "bench/web.sh: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
page="/api/v1/devices?limit=50"
start "$tmp/empty.db"
read -r empty_ms _ < <(measure "$page")
stop
t0=$(date +%s.%N)
"$fill" "sqlite://$tmp/fleet.db" "$devices" >/dev/null
echo "filled $devices devices in $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-5) s"
start "$tmp/fleet.db"
{ read -r full_ms full_bytes; read -r summary_ms _; } < <(measure "$page" "/api/v1/summary")
stop
printf 'first page (%s), empty store:      %8.2f ms (anchor)\n' "$page" "$empty_ms"
printf 'first page, %d devices:       %8.2f ms, %d bytes\n' "$devices" "$full_ms" "$full_bytes"
printf 'summary, %d devices:          %8.2f ms\n' "$devices" "$summary_ms"
echo "ratio: first page / empty store = $(echo "scale=1; $full_ms / $empty_ms" | bc)x;" \
  "first page / summary = $(echo "scale=2; $full_ms / $summary_ms" | bc)x"
