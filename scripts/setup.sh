#!/usr/bin/env bash
# Idempotent setup for a fresh Debian 12 machine: installs the Debian packages the project
# needs (only those missing), then builds everything with Autotools in build/plain.
#   bash scripts/setup.sh            # packages + autoreconf + configure + make (build/plain)
#   HC_SETUP_NO_BUILD=1 bash ...     # packages only
#   HC_SETUP_NO_PKGS=1 bash ...      # build only (no apt; e.g. not Debian, packages at hand)
# It never touches a build of yours: if this source tree is configured in-tree (which blocks
# out-of-tree builds like build/plain), it stops and says so instead of cleaning it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PKGS=(build-essential autoconf automake libtool pkg-config check libpq-dev
      postgresql-15 postgresql-client-15 postgresql-server-dev-15
      libmicrohttpd-dev libjansson-dev locales xxd chromium chromium-driver valgrind gnuplot-nox clang libclang-rt-14-dev)

missing=()
[ "${HC_SETUP_NO_PKGS:-}" = 1 ] && PKGS=()
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
# so several configurations can live side by side.  An in-tree configuration would block them,
# and it is the user's: say so and stop, never distclean it.
if [ -f config.status ]; then
  echo "setup: $(pwd) is configured in-tree (./config.status): that blocks the out-of-tree" >&2
  echo "setup: build in build/plain. setup will not delete your build; to let it proceed," >&2
  echo "setup: run 'make distclean' in $(pwd) yourself, then run setup again." >&2
  exit 1
fi
if [ ! -x configure ] || [ configure.ac -nt configure ] \
   || [ libhcpg/include/hydracache/version.h -nt configure ]; then  # AC_INIT reads the version
  autoreconf -fi >/dev/null 2>&1
fi
mkdir -p build/plain
if [ ! -f build/plain/Makefile ] || [ configure -nt build/plain/config.status ]; then
  (cd build/plain && ../../configure -q --with-actuator --enable-werror)
fi
make -C build/plain -j"$(nproc)" >/dev/null
echo "setup: build ok (build/plain)"
