#!/usr/bin/env bash
# tests/arduino/port-size.sh - the ESP8266 port and the NoFUSSClient class
# compiled for the ESP8266 CPU with Debian's xtensa-lx106-elf-g++, against
# the headers of an ESP8266 Arduino core checkout; prints their sizes beside
# the core's.
#
# Debian's cross compiler has picolibc and no C++ library for the lx106,
# while the Arduino core's headers want the ESP8266 toolchain's newlib
# (<sys/pgmspace.h>), its <xtensa/config/core-isa.h> constants and a C++
# library (<functional>, <memory>). So this compiles only (nothing is
# linked) with stand-ins made here: the host's libstdc++ headers (its
# configuration without threads), a <sys/pgmspace.h> that declares the _P
# functions as plain ones, and the three memory-map constants. The objects
# are real lx106 code of our sources; the inline code of the headers comes
# from the host's libstdc++, so the figures are close, not exact, to what
# the ESP8266 toolchain makes.
#
# Usage: tests/arduino/port-size.sh ESP8266_CORE_DIR   (or ESP8266_CORE_DIR=...)
# Prints SKIPPED and exits 0 without a checkout or a cross compiler; exits 1
# when a source does not compile.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CORE=${1:-${ESP8266_CORE_DIR:-}}
CROSS=xtensa-lx106-elf
SPECS=/usr/lib/xtensa-lx106-elf/picolibc.specs
CXXINC=$(ls -d /usr/include/c++/* 2>/dev/null | sort -V | tail -n 1)
CXXCONF=/usr/include/$(gcc -dumpmachine 2>/dev/null)/c++/$(basename "${CXXINC:-none}")

if [ -z "$CORE" ] || [ ! -f "$CORE/cores/esp8266/Arduino.h" ]; then
	echo "SKIPPED: no ESP8266 Arduino core checkout (pass its path or set ESP8266_CORE_DIR)"
	exit 0
fi
if ! command -v "$CROSS-g++" >/dev/null || [ ! -f "$SPECS" ] || [ -z "$CXXINC" ] ||
	[ ! -f "$CXXCONF/bits/c++config.h" ]; then
	echo "SKIPPED: needs $CROSS-g++, picolibc-xtensa-lx106-elf and the host's libstdc++ headers"
	exit 0
fi

OUT=$(mktemp -d "${TMPDIR:-/tmp}/nofuss-port-size.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
"$ROOT/scripts/arduino-lib.sh" "$OUT/lib" >/dev/null
LIB=$OUT/lib/libnofuss

# The stand-ins.
mkdir -p "$OUT/shim/bits" "$OUT/shim/sys"
sed 's/^#define _GLIBCXX_HAS_GTHREADS 1$//' "$CXXCONF/bits/c++config.h" >"$OUT/shim/bits/c++config.h"
printf '#ifndef _GLIBCXX_OS_DEFINES\n#define _GLIBCXX_OS_DEFINES 1\n#define __NO_CTYPE 1\n#endif\n' \
	>"$OUT/shim/bits/os_defines.h"
echo '#include <bits/gthr-single.h>' >"$OUT/shim/bits/gthr-default.h"
{
	echo '#pragma once'
	echo '#include <stdarg.h>'
	echo '#include <stdint.h>'
	echo '#include <stdio.h>'
	echo '#include <string.h>'
	echo '#define PROGMEM __attribute__((section(".irom.text")))'
	echo '#define PGM_P const char *'
	echo '#define PGM_VOID_P const void *'
	echo '#define PSTR(s) (s)'
	for t in byte:uint8_t word:uint16_t dword:uint32_t float:float; do
		echo "#define pgm_read_${t%%:*}(a) (*(const ${t#*:} *)(a))"
		echo "#define pgm_read_${t%%:*}_near(a) pgm_read_${t%%:*}(a)"
		echo "#define pgm_read_${t%%:*}_far(a) pgm_read_${t%%:*}(a)"
	done
	echo '#define pgm_read_ptr(a) (*(const void *const *)(a))'
	echo '#define pgm_read_ptr_near(a) pgm_read_ptr(a)'
	echo '#ifdef __cplusplus'
	echo 'extern "C" {'
	echo '#endif'
	for f in "void *memcpy_P(void *, const void *, size_t)" "int memcmp_P(const void *, const void *, size_t)" \
		"void *memccpy_P(void *, const void *, int, size_t)" "void *memmem_P(const void *, size_t, const void *, size_t)" \
		"const void *memchr_P(const void *, int, size_t)" "char *strcpy_P(char *, const char *)" \
		"char *strncpy_P(char *, const char *, size_t)" "char *strcat_P(char *, const char *)" \
		"char *strncat_P(char *, const char *, size_t)" "int strcmp_P(const char *, const char *)" \
		"int strncmp_P(const char *, const char *, size_t)" "int strcasecmp_P(const char *, const char *)" \
		"int strncasecmp_P(const char *, const char *, size_t)" "size_t strlen_P(const char *)" \
		"size_t strnlen_P(const char *, size_t)" "char *strstr_P(const char *, const char *)" \
		"int printf_P(const char *, ...)" "int sprintf_P(char *, const char *, ...)" \
		"int snprintf_P(char *, size_t, const char *, ...)" "int vsnprintf_P(char *, size_t, const char *, va_list)"; do
		echo "$f;"
	done
	echo '#ifdef __cplusplus'
	echo '}'
	echo '#endif'
} >"$OUT/shim/sys/pgmspace.h"

# The Arduino core's platform.txt flags for a generic ESP8266 module.
FLAGS=(-Os -g0 -mlongcalls -mtext-section-literals -ffunction-sections -fdata-sections
	-falign-functions=4 -U__STRICT_ANSI__ -D__ets__ -DICACHE_FLASH -DNONOSDK22x_190703=1
	-DF_CPU=80000000L -DLWIP_OPEN_SRC -DTCP_MSS=536 -DLWIP_FEATURES=1 -DLWIP_IPV6=0
	-DARDUINO=10819 -DARDUINO_ESP8266_GENERIC -DARDUINO_ARCH_ESP8266 -DESP8266 -DFLASHMODE_DOUT
	-DMMU_IRAM_SIZE=0x8000 -DXCHAL_INSTRAM0_VADDR=0x40000000 -DXCHAL_INSTRAM1_VADDR=0x40100000
	-DXCHAL_INSTROM0_VADDR=0x40200000
	"-I$CORE/tools/sdk/include" "-I$CORE/tools/sdk/lwip2/include" "-I$CORE/cores/esp8266"
	"-I$CORE/variants/generic" "-I$CORE/libraries/ESP8266WiFi/src"
	"-I$CORE/libraries/ESP8266HTTPClient/src" "-I$LIB/src")
compile() { # compile SOURCE OBJECT COMPILER [flags...]
	local src=$1 obj=$2 cc=$3
	shift 3
	"$cc" "--specs=$SPECS" "$@" "${FLAGS[@]}" -c "$src" -o "$obj" 2>"$obj.log" || {
		cat "$obj.log" >&2
		echo "port-size: $(basename "$src") does not compile" >&2
		exit 1
	}
	if grep -E "^$LIB/src/[^:]*:[0-9]+:[0-9]+: warning" "$obj.log" >&2; then
		echo "port-size: warnings in $(basename "$src")" >&2
		exit 1
	fi
}
CXX=(-std=gnu++17 -fno-exceptions -fno-rtti -Wall -Wextra -isystem "$OUT/shim" -isystem "$CXXINC"
	-isystem "$CXXCONF")
compile "$LIB/src/nofuss_esp8266.cpp" "$OUT/port.o" "$CROSS-g++" "${CXX[@]}"
compile "$LIB/src/NoFUSSClient.cpp" "$OUT/class.o" "$CROSS-g++" "${CXX[@]}"
for f in client answer strerror; do
	compile "$LIB/src/core/$f.c" "$OUT/$f.o" "$CROSS-gcc" -std=c11 -Wall -Wextra
done

echo "libnofuss on the ESP8266 CPU ($("$CROSS-gcc" -dumpversion), -Os, against $CORE" \
	"$(git -C "$CORE" rev-parse --short HEAD 2>/dev/null || true))"
printf '%-32s %7s %7s %7s\n' object text data bss
for o in port:"nofuss_esp8266.o (the port)" class:"NoFUSSClient.o (the API)" client:core/client.o \
	answer:core/answer.o strerror:core/strerror.o; do
	read -r text data bss < <("$CROSS-size" -B "$OUT/${o%%:*}.o" | awk 'NR == 2 { print $1, $2, $3 }')
	printf '%-32s %7d %7d %7d\n' "${o#*:}" "$text" "$data" "$bss"
done
echo "(objects before linking: each function in its own section, the linker drops what is"
echo " unused; the port's text includes HTTPClient's inline destructor; the API's bss is the"
echo " global NoFUSSClient: the core's and the port's state)"
