#!/usr/bin/env bash
# bench/releases.sh - what a release upload costs on a real nofussd with a
# SQLite store: IMAGES uploads of a MIB MiB image (each a little different,
# so each is stored), timed through the admin API, against the anchor in the
# same run: the least the server must do with the same bytes (read them,
# MD5 and SHA-256 them, write them to a file in the same folder and fsync),
# done here by Python's hashlib. Prints both medians and the ratio. A
# measurement, not a test: it exits 0 whenever it ran. Figures:
# docs/ROLLOUTS.md section 1.
#
#   bench/releases.sh [IMAGES] [MIB]      (default 10 uploads of 4 MiB)
#
# Needs build/ (cmake --build build): nofussd.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
build=${BUILD:-$top/build}
images=${1:-10}
mib=${2:-4}
nofussd=$build/server/nofussd
[ -x "$nofussd" ] || { echo "releases.sh: build first: cmake --build build" >&2; exit 1; }

NAME=releases
# shellcheck source=bench/admin_data.sh
. "$here/admin_data.sh"
printf '[nofussd]\nstore = sqlite://%s/fleet.db\n' "$tmp" >"$tmp/nofussd.ini"

echo "bench/releases.sh: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$nofussd" -d "$tmp" -l 127.0.0.1 -p 0 -L "" -c "$tmp/nofussd.ini" --admin-port 0 \
  --admin-token-file "$tmp/tokens" 2>"$tmp/stderr" &
pid=$!
for _ in $(seq 100); do
  grep -q "admin API at" "$tmp/stderr" && break
  sleep 0.1
done
port=$(grep -o 'admin API at http://127.0.0.1:[0-9]*' "$tmp/stderr" | grep -o '[0-9]*$')

python3 - "$port" "$token" "$images" "$mib" "$tmp/public" <<'PY'
import hashlib, http.client, json, os, statistics, sys, time
port, token, images, mib, public = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
size = mib * 1024 * 1024
base = bytearray(bytes([0xE9, 1, 2, 0x20, 0, 0, 0x10, 0x40]) + os.urandom(size - 8))

def image(i):
    base[100:104] = i.to_bytes(4, "little")  # each upload its own bytes
    return bytes(base)

def anchor(data, i):
    t = time.monotonic()
    hashlib.md5(data).hexdigest()
    hashlib.sha256(data).hexdigest()
    path = os.path.join(public, ".anchor-%d" % i)
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    ms = (time.monotonic() - t) * 1000
    os.unlink(path)
    return ms

def upload(data, i):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t = time.monotonic()
    c.request("POST", "/api/v1/releases?device=BENCH&version=1.0.%d" % i, body=data,
              headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    body = r.read()
    ms = (time.monotonic() - t) * 1000
    c.close()
    assert r.status == 201, (r.status, body[:300])
    assert json.loads(body)["firmware"]["sha256"] == hashlib.sha256(data).hexdigest()
    return ms

a, u = [], []
for i in range(images):
    data = image(i)
    a.append(anchor(data, i))
    u.append(upload(data, i))
ma, mu = statistics.median(a), statistics.median(u)
print("%d uploads of %d MiB (median of each):" % (images, mib))
print("  anchor: hash (MD5 + SHA-256), write and fsync in Python: %7.1f ms  %6.1f MiB/s" % (ma, mib / ma * 1000))
print("  POST /api/v1/releases, through nofussd:                  %7.1f ms  %6.1f MiB/s" % (mu, mib / mu * 1000))
print("  ratio upload / anchor: %.2fx" % (mu / ma))
PY
