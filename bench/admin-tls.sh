#!/usr/bin/env bash
# bench/admin-tls.sh - what TLS costs a request to the admin API, in one run
# against its anchor: the same nofussd binary, the same SQLite fleet store
# of DEVICES devices (tests/integration/admin_fill), the same requests, with
# the admin listener on plain HTTP (the anchor) and then on HTTPS
# (admin-tls-cert: a self-signed RSA-2048 certificate made by openssl req,
# the default priorities, so TLS 1.3). Two tables: every request on a new
# connection (with TLS a full handshake each: what a client without
# keep-alive pays), then every request on one kept-alive connection per
# listener (checked to be the same socket throughout), and last the TLS
# medians of the two side by side. Medians of ROUNDS requests each,
# interleaved plain/TLS; each table prints both and the ratio. A measurement, not a test: it exits 0 whenever it ran.
#
#   bench/admin-tls.sh [DEVICES] [ROUNDS]     (default 1000 and 200)
#
# Needs build/ (cmake --build build): nofussd and admin_fill; openssl.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
build=${BUILD:-$top/build}
devices=${1:-1000}
rounds=${2:-200}
nofussd=$build/server/nofussd
fill=$build/tests/integration/admin_fill
[ -x "$nofussd" ] && [ -x "$fill" ] || { echo "admin-tls.sh: build first: cmake --build build" >&2; exit 1; }
command -v openssl >/dev/null || { echo "admin-tls.sh: needs openssl" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nofuss-admin-tls-bench.XXXXXX")
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
mkdir "$tmp/public"
echo '[]' >"$tmp/versions.json"
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token admin bench" >"$tmp/tokens"
chmod 600 "$tmp/tokens"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/admin.key" -out "$tmp/admin.crt" \
  -days 2 -subj /CN=nofuss-bench -addext subjectAltName=IP:127.0.0.1 2>/dev/null
"$fill" "sqlite://$tmp/fleet.db" "$devices" >/dev/null

echo "bench/admin-tls.sh: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
  "$devices devices, $rounds requests per row and listener"

# start NAME [ARGS...]: nofussd with the admin listener; its admin port in
# $port. Not in $(...): the server would hold the substitution's pipe open.
start() {
  local name=$1
  shift
  port=
  "$nofussd" -d "$tmp" -l 127.0.0.1 -p 0 -L "" --store "sqlite://$tmp/fleet.db" \
    --admin-port 0 --admin-token-file "$tmp/tokens" "$@" >/dev/null 2>"$tmp/$name.stderr" &
  pids+=($!)
  for _ in $(seq 100); do
    port=$(grep -o 'admin API at https\?://127.0.0.1:[0-9]*' "$tmp/$name.stderr" | grep -o '[0-9]*$' || true)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$tmp/$name.stderr" >&2; exit 1; }
}
start plain
plain=$port
start tls --admin-tls-cert "$tmp/admin.crt" --admin-tls-key "$tmp/admin.key"
tls=$port

python3 - "$plain" "$tls" "$token" "$tmp/admin.crt" "$rounds" <<'PY'
import http.client, ssl, statistics, sys, time
plain, tls, token, cafile, rounds = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
ctx = ssl.create_default_context(cafile=cafile)
def get(secure, path, status):
    """ms for one request on a new connection; the status is checked."""
    c = (http.client.HTTPSConnection("127.0.0.1", tls, timeout=60, context=ctx) if secure
         else http.client.HTTPConnection("127.0.0.1", plain, timeout=60))
    t = time.monotonic()
    c.request("GET", path, headers={"Authorization": "Bearer " + token} if status == 200 else {})
    r = c.getresponse()
    body = r.read()
    ms = (time.monotonic() - t) * 1000
    c.close()
    assert r.status == status, (path, r.status, body[:200])
    return ms
rows = [("a 401 (no token, no query)", "/api/v1/summary", 401),
        ("one device with its history", "/api/v1/devices/5C:CF:7F:00:00:07", 200),
        ("summary", "/api/v1/summary", 200),
        ("100 devices, newest seen first", "/api/v1/devices?limit=100", 200)]
kept = {}
def get_kept(secure, path, status):
    """ms for one request on the listener's one kept-alive connection,
    which must still be the same socket afterwards."""
    c = kept.get(secure)
    if c is None:
        c = kept[secure] = (http.client.HTTPSConnection("127.0.0.1", tls, timeout=60, context=ctx)
                            if secure else http.client.HTTPConnection("127.0.0.1", plain, timeout=60))
        c.connect()
    sock = c.sock
    t = time.monotonic()
    c.request("GET", path, headers={"Authorization": "Bearer " + token} if status == 200 else {})
    r = c.getresponse()
    body = r.read()
    ms = (time.monotonic() - t) * 1000
    assert r.status == status, (path, r.status, body[:200])
    assert c.sock is sock and not r.will_close, ("the connection was closed", path)
    return ms
medians = {}
for label, fetch in (("a new connection each", get), ("one kept-alive connection", get_kept)):
    print("%-40s %10s %10s %10s" % ("request (%s)" % label, "plain ms", "TLS ms", "TLS/plain"))
    for name, path, status in rows:
        times = {False: [], True: []}
        for secure in (False, True):
            fetch(secure, path, status)  # warm the page cache and the statements
        for _ in range(rounds):
            for secure in (False, True):
                times[secure].append(fetch(secure, path, status))
        p, s = statistics.median(times[False]), statistics.median(times[True])
        medians[label, name] = s
        print("%-40s %10.2f %10.2f %9.1fx" % (name, p, s, s / p))
    print()
print("%-40s %10s %10s %10s" % ("TLS: new connection / kept-alive", "new ms", "kept ms", "ratio"))
for name, _, _ in rows:
    n, k = medians["a new connection each", name], medians["one kept-alive connection", name]
    print("%-40s %10.2f %10.2f %9.1fx" % (name, n, k, n / k))
PY
