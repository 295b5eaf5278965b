#!/usr/bin/env bash
# Installs every Debian package that nofuss needs to build, test and benchmark.
# Idempotent: packages already present are left alone, and apt-get is only
# called when something is missing. Nothing is downloaded from anywhere but
# Debian's archive.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev
  # libraries
  libmicrohttpd-dev libjansson-dev libssl-dev libinih-dev libcurl4-openssl-dev
  libmosquitto-dev libsqlite3-dev libpq-dev libcmocka-dev
  # tests and benchmarks (postgresql: the fleet store's PostgreSQL tests)
  mosquitto mosquitto-clients nginx wrk valgrind curl python3 procps postgresql
  # the web page's browser test (docs/WEB.md section 7)
  chromium chromium-driver python3-selenium
  # device core size on the ESP8266 CPU
  gcc-xtensa-lx106 picolibc-xtensa-lx106-elf
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
