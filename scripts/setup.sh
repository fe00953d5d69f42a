#!/usr/bin/env bash
# Idempotent setup for a fresh Debian 12 machine: installs the Debian packages the project
# needs (only those missing), then builds everything with Autotools in build/plain.
#   bash scripts/setup.sh            # packages + autoreconf + configure + make (build/plain)
#   HC_SETUP_NO_BUILD=1 bash ...     # packages only
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PKGS=(build-essential autoconf automake libtool pkg-config check libpq-dev
      postgresql-15 postgresql-client-15 postgresql-server-dev-15
      libmicrohttpd-dev libjansson-dev xxd chromium chromium-driver valgrind gnuplot-nox clang libclang-rt-14-dev)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "${HC_SETUP_NO_BUILD:-}" = 1 ] && exit 0

# Builds go out of tree (build/plain here; scripts/test.sh adds build/asan and build/tsan),
# so several configurations can live side by side.  An in-tree configuration would block them.
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
  autoreconf -fi >/dev/null 2>&1
fi
if [ -f config.status ]; then make distclean >/dev/null 2>&1 || rm -f config.status; fi
mkdir -p build/plain
if [ ! -f build/plain/Makefile ] || [ configure -nt build/plain/config.status ]; then
  (cd build/plain && ../../configure -q --with-actuator)
fi
make -C build/plain -j"$(nproc)" >/dev/null
echo "setup: build ok (build/plain)"
