#!/usr/bin/env bash
# scripts/arduino-lib.sh - assembles the Arduino library `libnofuss` (the
# drop-in NoFUSSClient for the ESP8266) from the tree, and zips it.
#
# Nothing of the library is kept by hand apart from the tree: the core's
# sources (core/*.c, core/*.h) and public headers (include/nofuss/client.h,
# port.h) are copied as they are, with the ESP8266 port and its example
# (ports/esp8266/), into the layout the Arduino IDE and PlatformIO install
# as is:
#
#   libnofuss/library.properties, library.json   version from CMakeLists.txt
#   libnofuss/README.md                          docs/ESP8266.md
#   libnofuss/src/NoFUSSClient.{h,cpp}, nofuss_esp8266.{h,cpp}
#   libnofuss/src/nofuss/{client,port}.h         found as "nofuss/client.h"
#   libnofuss/src/core/*.{c,h}                   the core, unchanged
#   libnofuss/examples/basic/basic.ino
#
# and libnofuss-VERSION.zip beside it (one top folder, files in name order,
# fixed dates: the same tree gives the same zip).
#
# Usage: scripts/arduino-lib.sh [OUT_DIR]     (default: build/arduino)
# Prints the library folder and the zip's path. Needs python3 (zipfile).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/build/arduino}
NAME=libnofuss
VERSION=$(sed -n 's/^project(nofuss VERSION \([0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")
if [ -z "$VERSION" ]; then
	echo "arduino-lib: no version in CMakeLists.txt's project()" >&2
	exit 1
fi

LIB=$OUT/$NAME
rm -rf "$LIB"
mkdir -p "$LIB/src/nofuss" "$LIB/src/core" "$LIB/examples"

for f in library.properties library.json; do
	sed "s/@VERSION@/$VERSION/" "$ROOT/ports/esp8266/$f.in" >"$LIB/$f"
done
cp "$ROOT/docs/ESP8266.md" "$LIB/README.md"
cp "$ROOT"/ports/esp8266/*.h "$ROOT"/ports/esp8266/*.cpp "$LIB/src/"
cp "$ROOT/include/nofuss/client.h" "$ROOT/include/nofuss/port.h" "$LIB/src/nofuss/"
cp "$ROOT"/core/*.c "$ROOT"/core/*.h "$LIB/src/core/"
cp -r "$ROOT/ports/esp8266/examples/." "$LIB/examples/"

ZIP=$OUT/$NAME-$VERSION.zip
python3 - "$OUT" "$NAME" "$ZIP" <<'EOF'
import os, sys, zipfile
out, name, path = sys.argv[1:]
files = []
for top, dirs, names in os.walk(os.path.join(out, name)):
    dirs.sort()
    files += [os.path.join(top, n) for n in sorted(names)]
with zipfile.ZipFile(path + ".tmp", "w", zipfile.ZIP_DEFLATED) as z:
    for f in files:
        info = zipfile.ZipInfo(os.path.relpath(f, out), (2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(f, "rb") as src:
            z.writestr(info, src.read())
os.replace(path + ".tmp", path)
EOF
echo "$LIB"
echo "$ZIP"
