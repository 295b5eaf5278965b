#!/usr/bin/env bash
# bench/server.sh - measure nofussd against nginx on this machine, in one run.
#
# Starts nofussd (check log on, written to a file, as in production) and
# nginx (1 worker, its own temporary prefix, config, pid and logs, running as
# the current user) on free 127.0.0.1 ports, pins the servers to CPU 0 and
# the load (wrk, holdconns) to CPU 1, and prints one table:
#   1. header-form checks, 50 keep-alive connections (wrk -c50 -t1)
#   2. the same checks with "Connection: close"
#   3. a 1 MiB image downloaded over 100 connections
#   4. keep-alive checks against 10,000 rules vs 10 rules
#   5. server RSS holding 10,000 idle keep-alive connections, and holding
#      2,000 slow (~10 KB/s) downloads, with 20 real checks sent meanwhile
# Anchors: nginx serving the same answer bytes (a) as a static file with
# open_file_cache and (b) with "return 200" from memory; nginx sendfile for
# the image. Each wrk measurement runs BENCH_ROUNDS times, interleaved, and
# the table shows medians and the ratio nofussd/anchor next to its target.
# It is a measurement, not a test: it exits 0 whenever it ran, PASS or MISS.
#
# Usage: bench/server.sh            (about 5 minutes on a quiet machine)
#        BENCH_QUICK=1 bench/server.sh   (2 s per run, 1 round)
# Settings (environment): BENCH_DURATION (s, default 5), BENCH_ROUNDS (3),
#   NOFUSSD (binary, default: a Release build in build-release/), BENCH_IDLE_CONNS (10000),
#   BENCH_SLOW_CONNS (2000), BENCH_HOLD (s, 10), BENCH_SLOW_RATE (B/s, 10240),
#   BENCH_NGINX_LOG (buffered|off, default buffered), BENCH_SERVER_CPU (0),
#   BENCH_CLIENT_CPU (1), BENCH_MAX_OTHER (% CPU other processes may use
#   during a run before it counts as disturbed, 10), BENCH_QUIET_BUDGET (s spent
#   at most waiting for a quiet machine and re-running disturbed runs, 300),
#   BENCH_KEEP=1 keeps the temporary folder.
# Needs: nginx, wrk, taskset, gcc, python3, curl. See bench/README.md.
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
DUR=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	DUR=2
	ROUNDS=1
fi
# By default a Release build of its own, so that a Debug build/ is never measured.
if [ -z "${NOFUSSD:-}" ]; then
	cmake -S "$ROOT" -B "$ROOT/build-release" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null &&
		cmake --build "$ROOT/build-release" -j"$(nproc)" --target nofussd >/dev/null ||
		{ echo "bench: cannot build nofussd" >&2; exit 1; }
fi
NOFUSSD_SRC=${NOFUSSD:-$ROOT/build-release/server/nofussd}
SCPU=${BENCH_SERVER_CPU:-0}
CCPU=${BENCH_CLIENT_CPU:-1}
IDLE_N=${BENCH_IDLE_CONNS:-10000}
SLOW_N=${BENCH_SLOW_CONNS:-2000}
HOLD=${BENCH_HOLD:-10}
SLOW_RATE=${BENCH_SLOW_RATE:-10240}
NGINX_LOG=${BENCH_NGINX_LOG:-buffered}
MAX_OTHER=${BENCH_MAX_OTHER:-10}
QUIET_BUDGET=${BENCH_QUIET_BUDGET:-300}
PROBES=20
MAC=5C:CF:7F:8B:6B:26
DEVICE=ESPURNA_BENCH # helpers.py BENCH_DEVICE; its rule wants 1.0.0 <= version < 1.13.6
VERSION=1.13.5
BUILD=20240101

say() { printf '%s\n' "$*" >&2; }
die() { say "server.sh: $*"; exit 1; }

for tool in nginx wrk taskset gcc python3 curl; do
	command -v "$tool" >/dev/null 2>&1 || die "needs $tool"
done
case "$DUR$ROUNDS$IDLE_N$SLOW_N$HOLD$SLOW_RATE$MAX_OTHER$QUIET_BUDGET" in
*[!0-9]*) die "BENCH_DURATION, BENCH_ROUNDS and the counts must be whole numbers" ;;
esac
[ "$(nproc)" -ge 2 ] || say "server.sh: fewer than 2 CPUs: pinning cannot separate server and client"

# As many open files as allowed: 10,000 connections need 10,000 descriptors
# on each side. The hard limit is left as it is.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)

T=$(mktemp -d "${TMPDIR:-/tmp}/nofuss-bench.XXXXXX") || die "cannot make a temporary folder"
mkdir -p "$T/bin" "$T/logs" "$T/req" "$T/nginx/www" "$T/nginx/tmp"
RES=$T/results.tsv
: >"$RES"
SCRIPT=server.sh
# shellcheck source=bench/procs.sh
. "$HERE/procs.sh"

put() { printf '%s\t%s\n' "$1" "$2" >>"$RES"; }
note() { put "note.$(printf '%03d' "$(grep -c '^note\.' "$RES")")" "$*"; say "note: $*"; }

# ---- binaries ---------------------------------------------------------------

# Others may be rebuilding build/: wait for the binary, then use a private
# copy so that every measurement runs the same one.
for _ in $(seq 120); do
	[ -x "$NOFUSSD_SRC" ] && "$NOFUSSD_SRC" -V >/dev/null 2>&1 && break
	sleep 1
done
[ -x "$NOFUSSD_SRC" ] || die "no nofussd at $NOFUSSD_SRC: set NOFUSSD to a built nofussd"
cp "$NOFUSSD_SRC" "$T/bin/nofussd" || die "cannot copy $NOFUSSD_SRC"
NF=$T/bin/nofussd
gcc -O2 -Wall -o "$T/bin/holdconns" "$HERE/holdconns.c" || die "cannot compile holdconns.c"
HC=$T/bin/holdconns
put info.nofussd "$("$NF" -V 2>&1 | head -1)"
BUILD_INFO="binary $NOFUSSD_SRC, built $(date -r "$NOFUSSD_SRC" '+%F %T')"
if git -C "$ROOT" rev-parse --short HEAD >/dev/null 2>&1; then
	BUILD_INFO="$BUILD_INFO; tree at $(git -C "$ROOT" rev-parse --short HEAD)"
	[ -z "$(git -C "$ROOT" status --porcelain -- server include common 2>/dev/null)" ] ||
		BUILD_INFO="$BUILD_INFO with uncommitted server changes"
fi
put info.build "$BUILD_INFO"
put info.load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
put info.nginx "$(nginx -v 2>&1 | sed 's/^nginx version: //')"
put info.server_cpu "$SCPU"
put info.client_cpu "$CCPU"
put info.duration "$DUR"
put info.rounds "$ROUNDS"
put info.nginx_log "$NGINX_LOG"
put info.max_other "$MAX_OTHER"
put info.idle_n "$IDLE_N"
put info.slow_n "$SLOW_N"
put info.slow_kbps "$((SLOW_RATE / 1024))"

# ---- data ---------------------------------------------------------------------

python3 "$HERE/helpers.py" mkimages "$T/data/public" || die "cannot write images"
ANSWER=$(python3 "$HERE/helpers.py" mkdata "$T/data" 10 7) || die "cannot write rules"
python3 "$HERE/helpers.py" mkdata "$T/data10k" 10000 9990 >/dev/null || die "cannot write rules"
ln -s ../data/public "$T/data10k/public"
printf '%s' "$ANSWER" >"$T/answer.json"
cp "$T/answer.json" "$T/nginx/www/answer.json"
IMAGE=$T/data/public/firmware/bench-1m.bin

CHECK_HDRS=(-H "X-ESP8266-MAC: $MAC" -H "X-ESP8266-DEVICE: $DEVICE"
	-H "X-ESP8266-VERSION: $VERSION" -H "X-ESP8266-BUILD: $BUILD")
printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: ESP8266HTTPClient\r\nX-ESP8266-MAC: %s\r\nX-ESP8266-DEVICE: %s\r\nX-ESP8266-VERSION: %s\r\nX-ESP8266-BUILD: %s\r\n\r\n' \
	"$MAC" "$DEVICE" "$VERSION" "$BUILD" >"$T/req/check.http"
printf 'GET /firmware/bench-1m.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: ESP8266-http-Update\r\nx-ESP8266-mode: sketch\r\n\r\n' \
	>"$T/req/download.http"

read -r P_NF P_NF10K P_NGA P_NGB P_NGS P_M1 P_M2 P_M3 P_M4 <<<"$(python3 "$HERE/helpers.py" ports 9)" ||
	die "cannot find free ports"

# ---- nginx configuration ------------------------------------------------------

NGINX_USER=""
[ "$(id -u)" = 0 ] && NGINX_USER="user $(id -un) $(id -gn);"
if [ "$NGINX_LOG" = off ]; then
	ACCESS_LOG="access_log off;"
else
	# One line per request into a 64 KiB buffer flushed every second: the
	# same deal as nofussd's check log.
	ACCESS_LOG="access_log $T/nginx/access.log combined buffer=64k flush=1s;"
fi
cat >"$T/nginx/nginx.conf" <<EOF
# nginx anchor for bench/server.sh (generated)
$NGINX_USER
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile $NOFILE;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events {
    worker_connections 16384;
    use epoll;
}
http {
    $ACCESS_LOG
    client_body_temp_path $T/nginx/tmp/body;
    proxy_temp_path $T/nginx/tmp/proxy;
    fastcgi_temp_path $T/nginx/tmp/fastcgi;
    uwsgi_temp_path $T/nginx/tmp/uwsgi;
    scgi_temp_path $T/nginx/tmp/scgi;
    sendfile on;
    keepalive_timeout 120s;
    keepalive_requests 1000000;
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 60s;
    open_file_cache_min_uses 1;
    open_file_cache_errors on;

    # (a) the answer as a static file, and the images (sendfile)
    server {
        listen 127.0.0.1:$P_NGA backlog=4096;
        server_name bench;
        location = / {
            root $T/nginx/www;
            default_type application/json;
            try_files /answer.json =404;
        }
        location /firmware/ {
            root $T/data/public;
            default_type application/octet-stream;
        }
    }
    # (b) the answer from memory
    server {
        listen 127.0.0.1:$P_NGB backlog=4096;
        server_name bench;
        location = / {
            default_type application/json;
            return 200 '$ANSWER';
        }
    }
    # (a) again, with the kernel send buffer capped like nofussd --sndbuf 65536
    server {
        listen 127.0.0.1:$P_NGS backlog=4096 sndbuf=65536;
        server_name bench;
        location = / {
            root $T/nginx/www;
            default_type application/json;
            try_files /answer.json =404;
        }
        location /firmware/ {
            root $T/data/public;
            default_type application/octet-stream;
        }
    }
}
EOF
nginx -t -q -p "$T/nginx/" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" 2>"$T/logs/nginx-t.err" ||
	die "nginx config: $(cat "$T/logs/nginx-t.err")"

# ---- starting and stopping servers --------------------------------------------

wait_port() { # PORT PID
	local i
	for i in $(seq 100); do
		kill -0 "$2" 2>/dev/null || return 1
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# start_nofussd NAME DATA PORT [OPTION...]: sets SPID
start_nofussd() {
	local name=$1 data=$2 port=$3
	shift 3
	taskset -c "$SCPU" "$NF" -d "$data" -l 127.0.0.1 -p "$port" \
		--check-log "$T/logs/checks-$name.log" -q "$@" 2>"$T/logs/nofussd-$name.err" &
	SPID=$!
	PIDS+=("$SPID")
	wait_port "$port" "$SPID" || die "nofussd ($name) did not start: $(cat "$T/logs/nofussd-$name.err")"
}

# start_nginx NAME: sets SPID (the master)
start_nginx() {
	local name=$1
	taskset -c "$SCPU" nginx -p "$T/nginx/" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" \
		2>"$T/logs/nginx-$name.err" &
	SPID=$!
	PIDS+=("$SPID")
	wait_port "$P_NGA" "$SPID" && wait_port "$P_NGB" "$SPID" ||
		die "nginx did not start: $(cat "$T/logs/nginx-$name.err" "$T/nginx/error.log")"
}

# stop_server PID NAME: TERM (twice for nofussd's grace), KILL as a last resort
stop_server() {
	local pid=$1 name=$2 i status
	kill -0 "$pid" 2>/dev/null || {
		wait "$pid" 2>/dev/null
		status=$?
		forget "$pid"
		note "$name had already exited (status $status) when it was to be stopped"
		return
	}
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		[ "$i" = 20 ] && kill -TERM "$pid" 2>/dev/null
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		note "$name did not stop within 5 s of SIGTERM: killed"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	status=$?
	forget "$pid"
	[ "$status" = 0 ] || [ "$status" = 143 ] || note "$name exited with status $status"
	if [ -s "$T/logs/$name.err" ]; then
		note "$name wrote to stderr: $(head -c 400 "$T/logs/$name.err" | tr '\n' ' ')"
	fi
}

# ---- wrk ------------------------------------------------------------------------

rss_kb() { # PID...: the sum of VmRSS
	local total=0 p v
	for p in "$@"; do
		v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
		total=$((total + ${v:-0}))
	done
	echo "$total"
}
tree_pids() { # PID: it and its children (nginx: master and worker)
	# shellcheck disable=SC2046 # a list of pids, split on purpose
	echo "$1" $(ps -o pid= --ppid "$1" 2>/dev/null)
}
sock_mem() {
	awk '/^TCP:/ {for (i = 1; i < NF; i++) if ($i == "mem") print $(i + 1)}' /proc/net/sockstat
}
ticks() { # PID...: CPU time (user + system, clock ticks) of these processes
	local total=0 p v
	for p in "$@"; do
		v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null)
		total=$((total + ${v:-0}))
	done
	echo "$total"
}
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
# CPU time of this shell's finished children (wrk, helpers) in ticks, into
# CHILD_TICKS. "times" must run in this shell, not in a $(...) subshell.
children_ticks() {
	times >"$T/times.txt"
	CHILD_TICKS=$(awk -v hz="$HZ" 'NR == 2 {
		t = 0
		for (i = 1; i <= 2; i++) { split($i, p, "m"); sub(/s$/, "", p[2]); t += p[1] * 60 + p[2] }
		printf "%d", t * hz }' "$T/times.txt")
}
HZ=$(getconf CLK_TCK)
NCPU=$(nproc)

# Other processes' share of all CPUs over the last second, in %, while none
# of ours is busy (between runs).
other_now() {
	local b0 b1
	b0=$(busy_ticks)
	sleep 1
	b1=$(busy_ticks)
	echo $(((b1 - b0) * 100 / (HZ * NCPU)))
}
# On a shared machine, wait until other processes calm down before a run
# (bounded: BENCH_QUIET_BUDGET seconds in all, for waits and re-runs).
QUIET_LEFT=$QUIET_BUDGET
wait_quiet() {
	local o t0
	while [ "$QUIET_LEFT" -gt 0 ]; do
		t0=$SECONDS
		o=$(other_now)
		[ "$o" -lt "$MAX_OTHER" ] && return 0
		QUIET_LEFT=$((QUIET_LEFT - (SECONDS - t0) - 1))
		sleep 1
	done
	return 1
}

WRK_REQS_NOFUSSD=0
# wrk_once "SERVER PIDS" URL OUT [WRK OPTION...]: one wrk run; sets RPS and
# OTHER, the CPU processes other than the server and wrk used meanwhile (%
# of all CPUs: all CPUs' busy time less the server's and wrk's).
wrk_once() {
	local spids=$1 url=$2 out=$3 w i s0 s1 b0 b1 c0 t0 t1 wt reqs
	shift 3
	s0=$(ticks $spids)
	children_ticks
	c0=$CHILD_TICKS
	b0=$(busy_ticks)
	t0=$(date +%s.%N)
	taskset -c "$CCPU" wrk -t1 -d"${DUR}s" "$@" "$url" >"$out" 2>&1 &
	w=$!
	PIDS+=("$w")
	for i in $(seq $(((DUR + 60) * 10))); do # until wrk has exited, bounded
		kill -0 "$w" 2>/dev/null || break
		[ "$(awk '{print $3}' "/proc/$w/stat" 2>/dev/null)" = Z ] && break
		sleep 0.1
	done
	[ "$i" -lt $(((DUR + 60) * 10)) ] || kill -TERM "$w" 2>/dev/null
	wait "$w" 2>/dev/null
	forget "$w"
	b1=$(busy_ticks)
	s1=$(ticks $spids)
	children_ticks
	wt=$((CHILD_TICKS - c0))
	t1=$(date +%s.%N)
	OTHER=$(awk -v b="$((b1 - b0))" -v o="$((s1 - s0 + wt))" -v t0="$t0" -v t1="$t1" \
		-v hz="$HZ" -v n="$NCPU" 'BEGIN {x = (b - o) / ((t1 - t0) * hz * n) * 100; if (x < 0) x = 0; printf "%.0f", x}')
	RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
	reqs=$(awk '/requests in/ {print $1}' "$out")
	if [[ "$url" == "http://127.0.0.1:$P_NF/" ]]; then
		WRK_REQS_NOFUSSD=$((WRK_REQS_NOFUSSD + ${reqs:-0}))
	fi
}

# run_wrk KEY "SERVER PIDS" URL [WRK OPTION...]: records KEY (req/s) and
# other.KEY. A run disturbed by other processes is run again (at most twice,
# within the quiet budget). KEY "" = warm-up.
run_wrk() {
	local key=$1 spids=$2 url=$3 out errs non2xx tr attempt t0
	shift 3
	for attempt in 1 2 3; do
		out=$T/logs/wrk.${key:-warmup}.$attempt.txt
		[ -n "$key" ] && wait_quiet
		t0=$SECONDS
		wrk_once "$spids" "$url" "$out" "$@"
		[ -n "$key" ] || return 0
		[ "$OTHER" -lt "$MAX_OTHER" ] && break
		[ "$attempt" -lt 3 ] && [ "$QUIET_LEFT" -gt 0 ] || break
		QUIET_LEFT=$((QUIET_LEFT - (SECONDS - t0)))
		say "  $key: ${RPS:-?} /s, disturbed (other processes: ${OTHER}% CPU): again"
	done
	put "$key" "${RPS:-nan}"
	put "other.$key" "$OTHER"
	[ "$attempt" = 1 ] || put "tries.$key" "$attempt"
	errs=$(grep -m1 'Socket errors' "$out" | sed 's/^ *//')
	non2xx=$(grep -m1 'Non-2xx' "$out" | sed 's/^ *//')
	[ -z "$errs$non2xx" ] || put "err.$key" "$errs${non2xx:+; }$non2xx"
	[ -n "$RPS" ] || put "err.$key" "wrk printed no rate: $(tr '\n' ' ' <"$out" | head -c 300)"
	if [[ "$key" == dl.* ]]; then
		tr=$(awk '/^Transfer\/sec:/ {v=$2; u=v; sub(/[0-9.]+/, "", u); sub(/[A-Za-z]+$/, "", v);
			m = (u=="GB") ? 1024 : (u=="MB") ? 1 : (u=="KB") ? 1/1024 : 1/1048576; print v*m}' "$out")
		put "dlmib.${key#dl.}" "${tr:-nan}"
	fi
	say "  $key: ${RPS:-?} /s (other processes: ${OTHER}% CPU)"
}

# ---- 1-4: throughput ------------------------------------------------------------

say "server.sh: $DUR s per run, $ROUNDS round(s); temporary folder $T"
start_nofussd nofussd "$T/data" "$P_NF"
PID_NF=$SPID
start_nofussd nofussd10k "$T/data10k" "$P_NF10K"
PID_NF10K=$SPID
start_nginx nginx
PID_NG=$SPID

U_NF=http://127.0.0.1:$P_NF/
U_NF10K=http://127.0.0.1:$P_NF10K/
U_NGA=http://127.0.0.1:$P_NGA/
U_NGB=http://127.0.0.1:$P_NGB/

# Every server must give the same answer bytes, and the same image.
for u in "$U_NF" "$U_NF10K" "$U_NGA" "$U_NGB"; do
	curl -s --max-time 5 "${CHECK_HDRS[@]}" "$u" -o "$T/got.json" \
		-w '%{http_code} %{size_header} %{size_download} %{content_type}\n' >"$T/got.meta"
	read -r code hsize bsize ctype <"$T/got.meta"
	cmp -s "$T/got.json" "$T/answer.json" ||
		note "answer from $u differs from the expected $(wc -c <"$T/answer.json") bytes: $(head -c 200 "$T/got.json")"
	[ "$code" = 200 ] || note "answer from $u has status $code"
	case "$u" in
	"$U_NF") S_NF="$hsize+$bsize ($ctype)" ;;
	"$U_NGA") S_NGA="$hsize+$bsize ($ctype)" ;;
	"$U_NGB") S_NGB="$hsize+$bsize ($ctype)" ;;
	esac
done
CURL_CHECKS_NF=1
note "check answer, head+body bytes: nofussd $S_NF; nginx static $S_NGA; nginx return-200 $S_NGB"
for u in "http://127.0.0.1:$P_NF/firmware/bench-1m.bin" "http://127.0.0.1:$P_NGA/firmware/bench-1m.bin"; do
	curl -s --max-time 10 "$u" -o "$T/got.bin"
	cmp -s "$T/got.bin" "$IMAGE" || note "image from $u differs from bench-1m.bin"
done

NG_PIDS=$(tree_pids "$PID_NG")
pids_for() { # URL: the pids of the server behind it
	case "$1" in
	*":$P_NF/"*) echo "$PID_NF" ;;
	*":$P_NF10K/"*) echo "$PID_NF10K" ;;
	*) echo "$NG_PIDS" ;;
	esac
}
DUR_SAVED=$DUR
DUR=1
say "warm-up (1 s each)"
for u in "$U_NF" "$U_NF10K" "$U_NGA" "$U_NGB"; do
	run_wrk "" "$(pids_for "$u")" "$u" -c50 "${CHECK_HDRS[@]}"
done
for u in "http://127.0.0.1:$P_NF/firmware/bench-1m.bin" "http://127.0.0.1:$P_NGA/firmware/bench-1m.bin"; do
	run_wrk "" "$(pids_for "$u")" "$u" -c100
done
DUR=$DUR_SAVED

say "1, 4: checks, keep-alive, 50 connections"
for r in $(seq "$ROUNDS"); do
	run_wrk "ka.nofussd.$r" "$PID_NF" "$U_NF" -c50 "${CHECK_HDRS[@]}"
	run_wrk "ka.nofussd10k.$r" "$PID_NF10K" "$U_NF10K" -c50 "${CHECK_HDRS[@]}"
	run_wrk "ka.nginx_a.$r" "$NG_PIDS" "$U_NGA" -c50 "${CHECK_HDRS[@]}"
	run_wrk "ka.nginx_b.$r" "$NG_PIDS" "$U_NGB" -c50 "${CHECK_HDRS[@]}"
done
say "2: checks, Connection: close, 50 connections"
for r in $(seq "$ROUNDS"); do
	run_wrk "close.nofussd.$r" "$PID_NF" "$U_NF" -c50 "${CHECK_HDRS[@]}" -H "Connection: close"
	run_wrk "close.nginx_a.$r" "$NG_PIDS" "$U_NGA" -c50 "${CHECK_HDRS[@]}" -H "Connection: close"
	run_wrk "close.nginx_b.$r" "$NG_PIDS" "$U_NGB" -c50 "${CHECK_HDRS[@]}" -H "Connection: close"
done
say "3: 1 MiB downloads, 100 connections"
for r in $(seq "$ROUNDS"); do
	run_wrk "dl.nofussd.$r" "$PID_NF" "http://127.0.0.1:$P_NF/firmware/bench-1m.bin" -c100
	run_wrk "dl.nginx_a.$r" "$NG_PIDS" "http://127.0.0.1:$P_NGA/firmware/bench-1m.bin" -c100
done

sleep 1.5 # nofussd flushes its check log at least once a second
put checklog.lines "$(wc -l <"$T/logs/checks-nofussd.log")"
put checklog.requests "$((WRK_REQS_NOFUSSD + CURL_CHECKS_NF))"
stop_server "$PID_NF" nofussd-nofussd
stop_server "$PID_NF10K" nofussd-nofussd10k
stop_server "$PID_NG" nginx-nginx

# ---- 5: memory -------------------------------------------------------------------

settle() { # let closed connections leave the kernel before the next scenario
	local i
	for i in $(seq 30); do
		[ "$(awk '/^TCP:/ {print $3}' /proc/net/sockstat)" -lt 100 ] && break
		sleep 0.5
	done
	sleep 1
}

# hold_scenario SCEN NAME PID PORT MODE N: N held connections from as many
# holdconns processes as the open-files limit needs; RSS and TCP memory
# sampled while they are held; PROBES checks sent meanwhile.
hold_scenario() {
	local scen=$1 name=$2 pid=$3 port=$4 mode=$5 n=$6
	local per nproc i cnt left hp=() outs=() base sb rss sm maxrss=0 maxsock=0 t_end
	local req=$T/req/check.http extra=()
	if [ "$mode" = slow ]; then
		req=$T/req/download.http
		extra=(-b 4096 -R "$SLOW_RATE")
	fi
	sleep 0.5
	# shellcheck disable=SC2046 # a list of pids, split on purpose
	base=$(rss_kb $(tree_pids "$pid"))
	sb=$(sock_mem)
	per=$((NOFILE - 100))
	nproc=$(((n + per - 1) / per))
	left=$n
	for i in $(seq "$nproc"); do
		cnt=$(((left + nproc - i) / (nproc - i + 1)))
		left=$((left - cnt))
		outs+=("$T/logs/hold.$scen.$name.$i.out")
		taskset -c "$CCPU" "$HC" -p "$port" -r "$req" -m "$mode" -n "$cnt" -H "$HOLD" -S 60 \
			"${extra[@]}" >"${outs[-1]}" 2>&1 &
		hp+=($!)
		PIDS+=($!)
	done
	# Wait for every client to report its connections ready (bounded).
	for i in $(seq 700); do
		[ "$(cat "${outs[@]}" 2>/dev/null | grep -c '^held')" -ge "$nproc" ] && break
		sleep 0.1
	done
	sleep 1
	sample() {
		# shellcheck disable=SC2046 # a list of pids, split on purpose
		rss=$(rss_kb $(tree_pids "$pid"))
		sm=$(sock_mem)
		[ "$rss" -gt "$maxrss" ] && maxrss=$rss
		[ "${sm:-0}" -gt "$maxsock" ] && maxsock=$sm
	}
	sample
	taskset -c "$CCPU" "$HC" -p "$port" -r "$T/req/check.http" -m probe -n "$PROBES" -T 5 \
		-e "$T/answer.json" >"$T/logs/probe.$scen.$name.out" 2>&1
	sample
	t_end=$((SECONDS + HOLD + 15))
	while [ "$SECONDS" -lt "$t_end" ]; do
		local alive=0
		for i in "${hp[@]}"; do kill -0 "$i" 2>/dev/null && alive=1; done
		[ "$alive" = 1 ] || break
		sample
		sleep 0.5
	done
	for i in "${hp[@]}"; do
		kill -0 "$i" 2>/dev/null && kill -TERM "$i" 2>/dev/null
		wait "$i" 2>/dev/null
		forget "$i"
	done
	kill -0 "$pid" 2>/dev/null || note "$name died during the $scen scenario"
	put "mem.$scen.$name.base_kb" "$base"
	put "mem.$scen.$name.rss_kb" "$maxrss"
	put "mem.$scen.$name.sock_before" "$sb"
	put "mem.$scen.$name.sock_max" "$maxsock"
	put "mem.$scen.$name.held" "$(cat "${outs[@]}" | awk '/^held/ {for (i = 2; i <= NF; i++) {split($i, kv, "="); s[kv[1]] += kv[2]; if (kv[1] == "setup_s" && kv[2] > t) t = kv[2]}}
		END {printf "held %d/%d in %.1f s", s["ok"], s["n"], t}')"
	put "mem.$scen.$name.end" "$(cat "${outs[@]}" | awk '/^end/ {for (i = 2; i <= NF; i++) {split($i, kv, "="); s[kv[1]] += kv[2]}}
		END {printf "at the end %d open, %d closed by the server, %d downloads completed", s["open"], s["server_closed"], s["completed"]}')"
	put "mem.$scen.$name.probe" "$(sed -n 's/^probe /checks meanwhile: /p' "$T/logs/probe.$scen.$name.out" | head -1)"
	if [ "$mode" = slow ]; then
		put "mem.$scen.$name.end" "$(cat "${outs[@]}" | awk '/^end/ {for (i = 2; i <= NF; i++) {split($i, kv, "="); s[kv[1]] += kv[2]}; k++}
			END {printf "at the end %d open, %d closed by the server, %d completed, %.1f KB/s per download", s["open"], s["server_closed"], s["completed"], s["rate_Bps_per_conn"] / k / 1024}')"
	fi
	say "  $scen $name: RSS $((base / 1024)) -> $((maxrss / 1024)) MB; TCP mem $sb -> $maxsock pages; $(cat "$T/logs/probe.$scen.$name.out" | head -1)"
}

MEM_OPTS=(--max-connections 16384 --idle-timeout 120)
say "5a: $IDLE_N idle keep-alive connections"
settle
start_nofussd mem-idle "$T/data" "$P_M1" "${MEM_OPTS[@]}"
hold_scenario idle nofussd "$SPID" "$P_M1" idle "$IDLE_N"
stop_server "$SPID" nofussd-mem-idle
settle
start_nginx mem-idle
hold_scenario idle nginx "$SPID" "$P_NGA" idle "$IDLE_N"
stop_server "$SPID" nginx-mem-idle
settle
start_nofussd mem-idle-2k "$T/data" "$P_M4" "${MEM_OPTS[@]}" --memory-limit 2048
hold_scenario idle nofussd_mem2k "$SPID" "$P_M4" idle "$IDLE_N"
stop_server "$SPID" nofussd-mem-idle-2k

say "5b: $SLOW_N slow downloads"
settle
start_nofussd mem-slow "$T/data" "$P_M2" "${MEM_OPTS[@]}"
hold_scenario slow nofussd "$SPID" "$P_M2" slow "$SLOW_N"
stop_server "$SPID" nofussd-mem-slow
settle
start_nofussd mem-slow-sndbuf "$T/data" "$P_M3" "${MEM_OPTS[@]}" --sndbuf 65536
hold_scenario slow nofussd_sndbuf "$SPID" "$P_M3" slow "$SLOW_N"
stop_server "$SPID" nofussd-mem-slow-sndbuf
settle
start_nginx mem-slow
hold_scenario slow nginx "$SPID" "$P_NGA" slow "$SLOW_N"
stop_server "$SPID" nginx-mem-slow
settle
start_nginx mem-slow-sndbuf
hold_scenario slow nginx_sndbuf "$SPID" "$P_NGS" slow "$SLOW_N"
stop_server "$SPID" nginx-mem-slow-sndbuf

if [ -s "$T/nginx/error.log" ] && grep -qv '\[notice\]' "$T/nginx/error.log"; then
	note "nginx error.log: $(grep -v '\[notice\]' "$T/nginx/error.log" | head -3 | tr '\n' ' ' | head -c 400)"
fi

put info.load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
put info.quiet_used "$((QUIET_BUDGET - (QUIET_LEFT > 0 ? QUIET_LEFT : 0)))"
python3 "$HERE/helpers.py" table "$RES"
exit 0
