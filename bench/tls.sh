#!/usr/bin/env bash
# bench/tls.sh - what TLS costs nofussd, measured in one run against two
# anchors: the same nofussd without TLS, and nginx with TLS serving the same
# bytes (the check's answer from memory, the image from disk).
#
# One self-signed RSA-2048 certificate (openssl req) serves both TLS
# servers with the same protocol and cipher: TLS 1.3, TLS_AES_256_GCM_SHA384
# (nofussd's default priorities pick it; nginx is given TLSv1.2 TLSv1.3 and
# its defaults). The servers run on CPU 0, wrk on CPU 1 (taskset), one at a
# time. Rows:
#   1. header-form checks, 50 keep-alive connections (TLS: one handshake
#      per connection, then only record encryption)
#   2. the same checks with "Connection: close": a full handshake per check
#   3. downloads of a 1 MiB image over 20 keep-alive connections (plain
#      nofussd uses sendfile; under TLS every byte is read and encrypted
#      in user space by both servers: nginx 1.22 without kTLS does the same)
# A fourth server, nofussd TLS with --memory-limit 32768, shows what the
# default 2 KiB of connection memory costs TLS downloads: libmicrohttpd
# sends a file under TLS in records no larger than the free memory.
# Each wrk run lasts BENCH_DURATION seconds and runs BENCH_ROUNDS times,
# interleaved; the table prints medians, nofussd TLS / plain and nofussd
# TLS / nginx TLS. A measurement, not a test: it exits 0 whenever it ran.
#
# Usage: bench/tls.sh                  (about 2 minutes)
#        BENCH_QUICK=1 bench/tls.sh    (2 s per run, 1 round)
# Settings: BENCH_DURATION (5), BENCH_ROUNDS (3), NOFUSSD (binary; default a
#   Release build in build-release/), BENCH_SERVER_CPU (0), BENCH_CLIENT_CPU (1),
#   BENCH_KEEP=1 keeps the temporary folder.
# Needs: nginx, wrk, taskset, openssl, python3, curl. See bench/README.md.
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
DUR=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	DUR=2
	ROUNDS=1
fi
if [ -z "${NOFUSSD:-}" ]; then
	cmake -S "$ROOT" -B "$ROOT/build-release" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null &&
		cmake --build "$ROOT/build-release" -j2 --target nofussd >/dev/null ||
		{ echo "bench: cannot build nofussd" >&2; exit 1; }
fi
NOFUSSD_SRC=${NOFUSSD:-$ROOT/build-release/server/nofussd}
SCPU=${BENCH_SERVER_CPU:-0}
CCPU=${BENCH_CLIENT_CPU:-1}
MAC=5C:CF:7F:8B:6B:26
DEVICE=ESPURNA_BENCH # helpers.py BENCH_DEVICE
VERSION=1.13.5

say() { printf '%s\n' "$*" >&2; }
die() { say "tls.sh: $*"; exit 1; }
for tool in nginx wrk taskset openssl python3 curl; do
	command -v "$tool" >/dev/null 2>&1 || die "needs $tool"
done
case "$DUR$ROUNDS" in *[!0-9]*) die "BENCH_DURATION and BENCH_ROUNDS must be whole numbers" ;; esac

T=$(mktemp -d "${TMPDIR:-/tmp}/nofuss-bench-tls.XXXXXX") || die "cannot make a temporary folder"
mkdir -p "$T/bin" "$T/logs" "$T/nginx/tmp"
SCRIPT=tls.sh
# shellcheck source=bench/procs.sh
. "$HERE/procs.sh"

[ -x "$NOFUSSD_SRC" ] || die "no nofussd at $NOFUSSD_SRC"
cp "$NOFUSSD_SRC" "$T/bin/nofussd" || die "cannot copy $NOFUSSD_SRC"
NF=$T/bin/nofussd

python3 "$HERE/helpers.py" mkimages "$T/data/public" || die "cannot write images"
ANSWER=$(python3 "$HERE/helpers.py" mkdata "$T/data" 10 7) || die "cannot write rules"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 2 \
	-subj /CN=nofuss-bench -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 ||
	die "cannot make a certificate"
read -r P_PLAIN P_TLS P_TLS32 P_NG <<<"$(python3 "$HERE/helpers.py" ports 4)" || die "no free ports"

NGINX_USER=""
[ "$(id -u)" = 0 ] && NGINX_USER="user $(id -un) $(id -gn);"
cat >"$T/nginx/nginx.conf" <<EOF
# nginx TLS anchor for bench/tls.sh (generated)
$NGINX_USER
daemon off;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 4096; use epoll; }
http {
    access_log off;
    client_body_temp_path $T/nginx/tmp/body;
    proxy_temp_path $T/nginx/tmp/proxy;
    fastcgi_temp_path $T/nginx/tmp/fastcgi;
    uwsgi_temp_path $T/nginx/tmp/uwsgi;
    scgi_temp_path $T/nginx/tmp/scgi;
    sendfile on;
    keepalive_requests 1000000;
    open_file_cache max=100;
    server {
        listen 127.0.0.1:$P_NG ssl backlog=4096;
        ssl_certificate $T/cert.pem;
        ssl_certificate_key $T/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;
        location = / { default_type application/json; return 200 '$ANSWER'; }
        location /firmware/ { root $T/data/public; default_type application/octet-stream; }
    }
}
EOF
nginx -t -q -p "$T/nginx/" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" 2>"$T/logs/nginx-t.err" ||
	die "nginx config: $(cat "$T/logs/nginx-t.err")"

wait_tls() { # URL PID
	local i
	for i in $(seq 100); do
		kill -0 "$2" 2>/dev/null || return 1
		curl -ks -o /dev/null "$1" && return 0
		sleep 0.1
	done
	return 1
}
start() { # NAME URL CMD...: sets SPID
	local name=$1 url=$2
	shift 2
	taskset -c "$SCPU" "$@" 2>"$T/logs/$name.err" &
	SPID=$!
	PIDS+=("$SPID")
	wait_tls "$url" "$SPID" || die "$name did not start: $(cat "$T/logs/$name.err")"
}
stop() {
	kill -TERM "$1" 2>/dev/null
	kill -TERM "$1" 2>/dev/null # nofussd: at once, not after the grace period
	wait "$1" 2>/dev/null
	forget "$1"
}

declare -A PROTO=()
declare -A URL=([plain]="http://127.0.0.1:$P_PLAIN" [tls]="https://127.0.0.1:$P_TLS"
	[tls32]="https://127.0.0.1:$P_TLS32" [nginx]="https://127.0.0.1:$P_NG")
SERVERS="plain tls tls32 nginx"
start_server() { # NAME
	case $1 in
	plain) start plain "${URL[plain]}/" "$NF" -d "$T/data" -l 127.0.0.1 -p "$P_PLAIN" \
		--check-log "" -q ;;
	tls) start tls "${URL[tls]}/" "$NF" -d "$T/data" -l 127.0.0.1 -p "$P_TLS" --check-log "" -q \
		--tls-cert "$T/cert.pem" --tls-key "$T/key.pem" ;;
	# Under TLS the image goes out in records as large as the connection's
	# free memory: 32 KiB instead of the default 2 KiB.
	tls32) start tls32 "${URL[tls32]}/" "$NF" -d "$T/data" -l 127.0.0.1 -p "$P_TLS32" \
		--check-log "" -q --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" --memory-limit 32768 ;;
	nginx) start nginx "${URL[nginx]}/" nginx -p "$T/nginx/" -c "$T/nginx/nginx.conf" \
		-e "$T/nginx/error.log" ;;
	esac
}

# The same bytes from each: the answer, and the image with the right length.
for s in $SERVERS; do
	start_server "$s"
	got=$(curl -ks -H "X-ESP8266-MAC: $MAC" -H "X-ESP8266-DEVICE: $DEVICE" \
		-H "X-ESP8266-VERSION: $VERSION" "${URL[$s]}/")
	[ "$got" = "$ANSWER" ] || die "$s answered '$got', not '$ANSWER'"
	len=$(curl -ks -o /dev/null -w '%{size_download}' "${URL[$s]}/firmware/bench-1m.bin")
	[ "$len" = 1048576 ] || die "$s sent $len bytes of the image"
	# What a default client negotiates with it.
	[ "$s" = plain ] || PROTO[$s]=$(openssl s_client -connect "${URL[$s]#https://}" </dev/null \
		2>/dev/null | awk '/^New, / {sub(",", "", $2); print $2, $5}')
	stop "$SPID"
done

# run ROW SERVER ROUND: one wrk run; its requests/s and MB/s into the results
RES=$T/results.tsv
: >"$RES"
run() {
	local row=$1 s=$2 r=$3 out=$T/logs/wrk-$1-$2-$3.txt args
	case $row in
	keepalive) args=(-t1 -c50 -H "X-ESP8266-MAC: $MAC" -H "X-ESP8266-DEVICE: $DEVICE"
		-H "X-ESP8266-VERSION: $VERSION" "${URL[$s]}/") ;;
	close) args=(-t1 -c50 -H "Connection: close" -H "X-ESP8266-MAC: $MAC"
		-H "X-ESP8266-DEVICE: $DEVICE" -H "X-ESP8266-VERSION: $VERSION" "${URL[$s]}/") ;;
	download) args=(-t1 -c20 -H "User-Agent: ESP8266-http-Update" -H "x-ESP8266-mode: sketch"
		"${URL[$s]}/firmware/bench-1m.bin") ;;
	esac
	taskset -c "$CCPU" wrk -d "${DUR}s" "${args[@]}" >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
	printf '%s\t%s\t%s\t%s\t%s\n' "$row" "$s" "$r" \
		"$(awk '/^Requests\/sec:/ {print $2}' "$out")" \
		"$(grep -c -E 'Non-2xx|Socket errors' "$out")" >>"$RES"
}

say "tls.sh: ${ROUNDS} rounds of ${DUR} s per row and server"
for r in $(seq "$ROUNDS"); do
	for s in $SERVERS; do
		start_server "$s"
		for row in keepalive close download; do
			run "$row" "$s" "$r"
		done
		stop "$SPID"
	done
done

python3 - "$RES" "${PROTO[tls]}" "${PROTO[nginx]}" "$DUR" "$ROUNDS" <<'EOF'
import statistics, sys
res, proto_nf, proto_ng, dur, rounds = sys.argv[1:]
vals, errs = {}, 0
for line in open(res):
    row, s, r, rps, bad = line.rstrip("\n").split("\t")
    vals.setdefault((row, s), []).append(float(rps))
    errs += int(bad)
med = {k: statistics.median(v) for k, v in vals.items()}
print("nofussd TLS (%s) vs nofussd plain vs nginx TLS (%s); %s s x %s rounds, medians"
      % (proto_nf, proto_ng, dur, rounds))
print("%-31s %9s %9s %9s %9s %10s %10s %10s" % ("", "plain", "TLS", "TLS 32K", "nginx TLS",
                                               "TLS/plain", "TLS/nginx", "32K/nginx"))
names = {"keepalive": "checks/s, 50 keep-alive conns", "close": "checks/s, Connection: close",
         "download": "1 MiB downloads/s, 20 conns"}
for row in ("keepalive", "close", "download"):
    p, t, t32, n = (med[(row, s)] for s in ("plain", "tls", "tls32", "nginx"))
    print("%-31s %9.0f %9.0f %9.0f %9.0f %9.2fx %9.2fx %9.2fx"
          % (names[row], p, t, t32, n, t / p, t / n, t32 / n))
print("TLS 32K: nofussd TLS with --memory-limit 32768 (TLS records up to its free memory)")
print("wrk runs with socket errors or non-2xx answers: %d" % errs)
EOF
