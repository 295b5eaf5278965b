#!/usr/bin/env bash
# bench/admin.sh - what the admin API costs on a real nofussd with a SQLite
# fleet store of DEVICES devices (filled by tests/integration/admin_fill
# through the store library): a 1,000-device page against its anchor, a
# 1-device page with the same filter and sort (the count and the sort
# without the rendering); the summary; /metrics' time and size. A
# measurement, not a test: it exits 0 whenever it ran. Figures:
# docs/ADMIN.md section 7.
#
#   bench/admin.sh [DEVICES]          (default 100000)
#
# Needs build/ (cmake --build build): nofussd and admin_fill.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
build=${BUILD:-$top/build}
devices=${1:-100000}
nofussd=$build/server/nofussd
fill=$build/tests/integration/admin_fill
[ -x "$nofussd" ] && [ -x "$fill" ] || { echo "admin.sh: build first: cmake --build build" >&2; exit 1; }

NAME=admin
# shellcheck source=bench/admin_data.sh
. "$here/admin_data.sh"
printf '[nofussd]\nstore = sqlite://%s/fleet.db\n' "$tmp" >"$tmp/nofussd.ini"

echo "bench/admin.sh: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s.%N)
"$fill" "sqlite://$tmp/fleet.db" "$devices" >/dev/null
echo "filled $devices devices in $(echo "$(date +%s.%N) - $start" | bc | cut -c1-5) s"

"$nofussd" -d "$tmp" -l 127.0.0.1 -p 0 -L "" -c "$tmp/nofussd.ini" --admin-port 0 \
  --admin-token-file "$tmp/tokens" 2>"$tmp/stderr" &
pid=$!
for _ in $(seq 100); do
  grep -q "admin API at" "$tmp/stderr" && break
  sleep 0.1
done
port=$(grep -o 'admin API at http://127.0.0.1:[0-9]*' "$tmp/stderr" | grep -o '[0-9]*$')

python3 - "$port" "$token" <<'PY'
import http.client, statistics, sys, time
port, token = int(sys.argv[1]), sys.argv[2]
def get(path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t = time.monotonic()
    c.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    body = r.read()
    ms = (time.monotonic() - t) * 1000
    c.close()
    assert r.status == 200, (path, r.status, body[:200])
    return ms, len(body)
def median(path, n=15):
    get(path)  # warm the page cache and the statements
    runs = [get(path) for _ in range(n)]
    return statistics.median(r[0] for r in runs), runs[0][1]
rows = [
    ("anchor: 1 device, newest seen first", "/api/v1/devices?limit=1"),
    ("1,000 devices, newest seen first", "/api/v1/devices?limit=1000"),
    ("1,000 devices, by key, offset 50,000", "/api/v1/devices?limit=1000&sort=key&order=asc&offset=50000"),
    ("1,000 confirmed devices of one type", "/api/v1/devices?limit=1000&state=confirmed&type=LIGHT"),
    ("one device with its history", "/api/v1/devices/5C:CF:7F:00:00:07"),
    ("summary", "/api/v1/summary"),
]
res = {}
print("%-42s %10s %10s" % ("request", "median ms", "bytes"))
for name, path in rows:
    ms, size = median(path)
    res[name] = ms
    print("%-42s %10.1f %10d" % (name, ms, size))
ms, size = get("/metrics")
print("%-42s %10.1f %10d" % ("/metrics (first: makes the summary)", ms, size))
ms2, _ = get("/metrics")
print("%-42s %10.1f %10d" % ("/metrics (summary reused, < 5 s)", ms2, size))
a, b = res["anchor: 1 device, newest seen first"], res["1,000 devices, newest seen first"]
print("1,000-device page / 1-device page: %.2fx (%.1f ms of rendering and sending)" % (b / a, b - a))
PY
echo "nofussd RSS after: $(grep VmRSS /proc/$pid/status | awk '{print $2, $3}')"
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
