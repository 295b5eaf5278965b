#!/usr/bin/env bash
# tests/arduino/run.sh - the Arduino library (scripts/arduino-lib.sh) on the
# ESP8266 Arduino core's own host emulation, against the real nofussd.
#
# The esp8266/Arduino repository builds sketches natively (tests/host): the
# real ESP8266HTTPClient, WiFiClient and Updater run over host sockets. This
# script copies what that build needs from a checkout of it into a temporary
# folder, applies emulation.patch there (a flash held in memory that outlives
# a restart, the eboot command kept after it, a 4 MB layout with a 1000 KB
# filesystem, no LittleFS/SdFat, which are submodules), assembles the
# library, builds the library's example sketch twice (versions 0.0.9 and
# 0.1.0; the server URL, device and interval prepended as #defines, the
# sketch itself unchanged) and hands over to run.py, which plays eboot and
# the device's power switch and checks the updates end to end. With
# NOFUSS_ORIGINAL set to a checkout of the original NoFUSS client, its basic
# example is built against the library too (it must compile unchanged).
#
# Usage: tests/arduino/run.sh [ESP8266_CORE_DIR]   (or ESP8266_CORE_DIR=...)
# Without a checkout it prints SKIPPED and exits 0, so that a machine without
# one stays green. Env: NOFUSSD (default build/server/nofussd),
# NOFUSS_ARDUINO_KEEP=1 keeps the work folder, NOFUSS_ORIGINAL as above.
# Exit: 0 passed or skipped, 1 failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CORE=${1:-${ESP8266_CORE_DIR:-}}

if [ -z "$CORE" ] || [ ! -f "$CORE/tests/host/Makefile" ] ||
	[ ! -f "$CORE/cores/esp8266/Updater.cpp" ]; then
	echo "SKIPPED: no ESP8266 Arduino core checkout (pass its path or set ESP8266_CORE_DIR)"
	exit 0
fi
CORE=$(cd "$CORE" && pwd)
NOFUSSD=${NOFUSSD:-$ROOT/build/server/nofussd}
if [ ! -x "$NOFUSSD" ]; then
	echo "arduino: no nofussd at $NOFUSSD (build it, or set NOFUSSD)" >&2
	exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nofuss-arduino.XXXXXX")
if [ "${NOFUSS_ARDUINO_KEEP:-0}" = 1 ]; then
	echo "arduino: work folder kept: $WORK"
else
	trap 'rm -rf "$WORK"' EXIT
fi

echo "== ESP8266 Arduino core: $CORE ($(git -C "$CORE" rev-parse HEAD 2>/dev/null || echo 'not a git checkout'))"
EMU=$WORK/esp8266
mkdir -p "$EMU/tools/sdk" "$EMU/tests"
cp -r "$CORE/cores" "$CORE/libraries" "$CORE/bootloaders" "$EMU/"
cp -r "$CORE/tools/sdk/include" "$CORE/tools/sdk/lwip2" "$EMU/tools/sdk/"
if [ -d "$CORE/tools/sdk/ssl" ]; then cp -r "$CORE/tools/sdk/ssl" "$EMU/tools/sdk/"; fi
cp -r "$CORE/tests/host" "$EMU/tests/"
rm -rf "$EMU/tests/host/bin" "$EMU/tests/host/bin32"
(cd "$EMU" && patch -p1 --quiet --no-backup-if-mismatch <"$HERE/emulation.patch")

"$ROOT/scripts/arduino-lib.sh" "$WORK/lib" >/dev/null
LIB=$WORK/lib/libnofuss
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# sketch NAME SOURCE [VERSION]: builds SOURCE as $WORK/sketch/NAME/basic/basic.ino
# after the #defines the run needs (with VERSION: one check an hour, so one
# per boot), into $WORK/NAME.bin.
sketch() {
	local dir=$WORK/sketch/$1/basic
	mkdir -p "$dir"
	{
		echo "#define NOFUSS_SERVER \"http://127.0.0.1:$PORT/\""
		if [ -n "${3:-}" ]; then
			echo "#define NOFUSS_INTERVAL 3600000"
			echo "#define VERSION \"$3\""
		fi
		echo "#line 1 \"basic.ino\""
		cat "$2"
	} >"$dir/basic.ino"
	make -C "$EMU/tests/host" -j2 FORCE32=0 ULIBDIRS="$LIB" \
		USERCSOURCES="$(echo "$LIB"/src/core/*.c)" "$dir/basic" >"$WORK/build-$1.log" 2>&1 || {
		tail -n 40 "$WORK/build-$1.log" >&2
		echo "arduino: building $1 failed (log above)" >&2
		exit 1
	}
	cp -L "$EMU/tests/host/bin/basic/basic" "$WORK/$1.bin" # the Makefile's link to the last build
}

echo "== building the example (0.0.9 and 0.1.0) on the emulation; the first build takes minutes"
sketch old "$LIB/examples/basic/basic.ino" 0.0.9
sketch new "$LIB/examples/basic/basic.ino" 0.1.0
if warnings=$(grep -A3 -E "libnofuss/src/[^ :]*:[0-9]+:[0-9]+: (warning|error)" "$WORK/build-old.log"); then
	echo "$warnings" >&2
	echo "arduino: the library does not build cleanly" >&2
	exit 1
fi
echo "ok: the library's example builds (no warning in the library's sources)"
if [ -n "${NOFUSS_ORIGINAL:-}" ]; then
	sketch original "$NOFUSS_ORIGINAL/examples/basic/basic.cpp"
	echo "ok: the original NoFUSS client's examples/basic/basic.cpp builds unchanged against the library"
fi

python3 "$HERE/run.py" --nofussd "$NOFUSSD" --work "$WORK" --port "$PORT" \
	--old "$WORK/old.bin" --new "$WORK/new.bin"
