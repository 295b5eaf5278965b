#!/usr/bin/env bash
# bench/core-size.sh - what the device core costs on an ESP8266.
#
# Cross-compiles the core for the ESP8266's CPU with Debian's
# xtensa-lx106-elf-gcc (picolibc), as a port would build it, and prints:
#   - text (.text + .literal + .rodata, what xtensa-lx106-elf-size calls
#     text), data and bss of each object; the core is client.o + answer.o,
#     strerror.o is listed apart (a device that never prints errors does not
#     link it);
#   - the targets: core text <= 3072 bytes (the budget; with resumable
#     downloads and the signature hook it measured 2856 in December 2026),
#     static RAM (data + bss) <= 256 bytes, no heap (the objects reference
#     no malloc/calloc/realloc/free);
#   - sizeof(struct nf_client), the one caller-owned state, on the ESP8266
#     and on this host;
#   - each function's stack frame (-fstack-usage) and the deepest call
#     chains through the core, summed by hand from the frames.
# It is a measurement, not a test: it exits 0 whenever it ran, PASS or MISS,
# and 1 only when it could not measure (no cross compiler, a build error).
#
# Usage: bench/core-size.sh        (a second; objects in a temporary folder)
#        CORE_SIZE_KEEP=1 bench/core-size.sh   keeps that folder
# Needs: gcc-xtensa-lx106 and picolibc-xtensa-lx106-elf (scripts/bootstrap.sh
# installs them), gcc for the host figure.
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CROSS=xtensa-lx106-elf
SPECS=/usr/lib/xtensa-lx106-elf/picolibc.specs
TARGET_TEXT=3072
TARGET_RAM=256

for tool in "$CROSS-gcc" "$CROSS-size" "$CROSS-nm"; do
	if ! command -v "$tool" >/dev/null; then
		echo "core-size: $tool not found (apt-get install gcc-xtensa-lx106 picolibc-xtensa-lx106-elf)" >&2
		exit 1
	fi
done
if [ ! -f "$SPECS" ]; then
	echo "core-size: $SPECS not found (apt-get install picolibc-xtensa-lx106-elf)" >&2
	exit 1
fi

OUT=$(mktemp -d "${TMPDIR:-/tmp}/nofuss-core-size.XXXXXX")
if [ "${CORE_SIZE_KEEP:-0}" = 1 ]; then
	echo "core-size: objects kept in $OUT" >&2
else
	trap 'rm -rf "$OUT"' EXIT
fi

CFLAGS=(-std=c11 -Os -mlongcalls "--specs=$SPECS" -ffunction-sections -fdata-sections
	-fstack-usage "-I$ROOT/include" "-I$ROOT/core")

compile() { # compile NAME [extra flags...]: core/NAME.c -> $OUT/NAME.o (+ NAME.su)
	local name=$1
	shift
	(cd "$OUT" && "$CROSS-gcc" "${CFLAGS[@]}" "$@" -c "$ROOT/core/$name.c" -o "$OUT/$name.o") || {
		echo "core-size: cannot compile core/$name.c" >&2
		exit 1
	}
}

# size OBJ -> "text data bss" (Berkeley format: text includes .literal and .rodata)
sizes() { "$CROSS-size" -B "$1" | awk 'NR == 2 { print $1, $2, $3 }'; }
# rodata OBJ -> bytes of .rodata* (part of text above)
rodata() { "$CROSS-size" -A "$1" | awk '$1 ~ /^\.rodata/ { s += $2 } END { print s + 0 }'; }

verdict() { # verdict VALUE LIMIT
	if [ "$1" -le "$2" ]; then echo PASS; else echo MISS; fi
}

for name in client answer strerror; do
	compile "$name"
done

echo "nofuss device core on the ESP8266 ($("$CROSS-gcc" -dumpversion), -Os -mlongcalls,"
echo "picolibc, -ffunction-sections -fdata-sections)"
echo
printf '%-12s %7s %9s %7s %7s\n' object text '(rodata)' data bss
total_text=0 total_data=0 total_bss=0 total_ro=0
for name in client answer strerror; do
	read -r text data bss < <(sizes "$OUT/$name.o")
	ro=$(rodata "$OUT/$name.o")
	label="$name.o"
	if [ "$name" = strerror ]; then
		printf '%-12s %7s %9s %7s %7s\n' '-----------' ------- --------- ------- -------
		printf '%-12s %7d %9s %7d %7d\n' "core" "$total_text" "($total_ro)" "$total_data" "$total_bss"
		label="strerror.o*"
	else
		total_text=$((total_text + text)) total_data=$((total_data + data))
		total_bss=$((total_bss + bss)) total_ro=$((total_ro + ro))
	fi
	printf '%-12s %7d %9s %7d %7d\n' "$label" "$text" "($ro)" "$data" "$bss"
done
echo "* optional: nf_strerror() only; not counted in the core"
echo

# The same sources as one section per file (no -ffunction-sections): each
# function then shares one literal pool, so the objects are smaller, but
# the linker can no longer drop unused functions. For comparison only.
flat=0
for name in client answer; do
	(cd "$OUT" && "$CROSS-gcc" "${CFLAGS[@]}" -fno-function-sections -fno-data-sections \
		-c "$ROOT/core/$name.c" -o "$OUT/flat-$name.o") || exit 1
	read -r text _ < <(sizes "$OUT/flat-$name.o")
	flat=$((flat + text))
done
rm -f "$OUT"/flat-*.su

ram=$((total_data + total_bss))
heap=$("$CROSS-nm" -u "$OUT/client.o" "$OUT/answer.o" "$OUT/strerror.o" |
	awk '$1 == "U" && $2 ~ /^(malloc|calloc|realloc|free|strdup|strndup)$/ { print $2 }' | sort -u |
	tr '\n' ' ')
echo "targets"
printf '  %-44s %6d <= %-5d %s\n' "core text (client + answer)" "$total_text" "$TARGET_TEXT" \
	"$(verdict "$total_text" "$TARGET_TEXT")"
printf '  %-44s %6d <= %-5d %s\n' "core static RAM (data + bss)" "$ram" "$TARGET_RAM" \
	"$(verdict "$ram" "$TARGET_RAM")"
if [ -z "$heap" ]; then
	printf '  %-44s %6s    %-5s %s\n' "heap (malloc/calloc/realloc/free referenced)" none "" PASS
else
	printf '  %-44s %s MISS\n' "heap (malloc/calloc/realloc/free referenced)" "$heap"
fi
echo "  for comparison: core text without -ffunction-sections: $flat bytes"
echo "  note: the ESP8266 Arduino core keeps .rodata in DRAM unless it is PROGMEM;"
echo "        counted that way the core's static RAM is $((ram + total_ro)) bytes" \
	"($(verdict $((ram + total_ro)) "$TARGET_RAM")), strerror.o adds $(rodata "$OUT/strerror.o")"
echo "  undefined symbols (what a port and libc provide):" \
	"$("$CROSS-nm" -u "$OUT/client.o" "$OUT/answer.o" | awk '$1 == "U" { print $2 }' | sort -u |
		tr '\n' ' ')"
echo

# sizeof(struct nf_client): a zero-filled array of that size, read back with nm -S.
cat >"$OUT/probe.c" <<'EOF'
#include "nofuss/client.h"
char probe_nf_client[sizeof(struct nf_client)];
char probe_nf_request[sizeof(struct nf_request)];
EOF
probe_sizes() { # probe_sizes CC NM -> "client request"
	(cd "$OUT" && "$1" -std=c11 -Os -fno-common "-I$ROOT/include" -c probe.c -o "probe-$1.o") || exit 1
	local c r
	c=$("$2" -S "$OUT/probe-$1.o" | awk '$4 == "probe_nf_client" { print $2 }')
	r=$("$2" -S "$OUT/probe-$1.o" | awk '$4 == "probe_nf_request" { print $2 }')
	echo "$((16#${c:-0})) $((16#${r:-0}))"
}
read -r esp_client esp_request < <(probe_sizes "$CROSS-gcc" "$CROSS-nm")
echo "memory"
printf '  %-44s %6d bytes (caller-owned: static or on a stack)\n' \
	"sizeof(struct nf_client), ESP8266" "$esp_client"
if command -v gcc >/dev/null && command -v nm >/dev/null; then
	read -r host_client _ < <(probe_sizes gcc nm)
	printf '  %-44s %6d bytes\n' "sizeof(struct nf_client), this host ($(uname -m))" "$host_client"
fi
printf '  %-44s %6d bytes\n' "sizeof(struct nf_request), ESP8266" "$esp_request"
echo

# Stack: every frame from the .su files, largest first.
cat "$OUT"/client.su "$OUT"/answer.su "$OUT"/strerror.su >"$OUT/all.su"
echo "stack frames (-fstack-usage; static inline helpers are inside their callers)"
awk -F'\t' '{ n = split($1, p, ":"); printf "  %-32s %4d  %s\n", p[n], $2, $3 }' "$OUT/all.su" |
	sort -k2,2nr -k1,1
echo

# The deepest paths through the core, by hand: the names are the functions
# as compiled (end_check, end_image and resume_image are inlined into
# nf_client_response_end, request_image and image_done into advance,
# message into its callers, hex4/put_utf8 into read_string). advance calls itself at most once: a
# request_image whose URL does not fit ends the check. A name starting with
# @ is the port's or the application's frame, not counted here.
frame() { awk -F'\t' -v f="$1" '{ n = split($1, p, ":") } p[n] == f { print $2; found = 1 }
	END { if (!found) print 0 }' "$OUT/all.su" | head -n 1; }
echo "call chains (sum of the core's frames; + the port's frames marked @)"
deepest=0
while read -r chain; do
	[ -z "$chain" ] && continue
	sum=0 shown=""
	for fn in $chain; do
		if [ "${fn#@}" != "$fn" ]; then
			shown="$shown -> $fn"
			continue
		fi
		f=$(frame "$fn")
		sum=$((sum + f))
		shown="$shown -> $fn($f)"
	done
	[ "$sum" -gt "$deepest" ] && deepest=$sum
	printf '  %4d  %s\n' "$sum" "${shown# -> }"
done <<'EOF'
nf_client_handle nf_client_begin build_url
nf_client_handle nf_client_begin advance @on_message
nf_client_handle @nf_port_http_get nf_client_response_end nf_answer_parse read_string
nf_client_handle @nf_port_http_get nf_client_response_end advance build_url
nf_client_handle @nf_port_http_get nf_client_response_end advance advance @on_message
nf_client_handle @nf_port_http_get nf_client_response_end @nf_port_flash_abort
nf_client_handle @nf_port_http_get nf_client_response_begin image_failed @nf_port_flash_abort
nf_client_handle @nf_port_http_get nf_client_response_data image_failed @nf_port_flash_abort
nf_client_handle @nf_port_http_get nf_client_response_data @nf_port_flash_write
EOF
echo "  deepest: $deepest bytes of the core's own stack, plus nf_port_http_get's frame (and"
echo "  what its HTTP client uses below it) and the message callback's"
exit 0
