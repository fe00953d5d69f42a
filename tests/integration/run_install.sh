#!/usr/bin/env bash
# Installs the library as a user would (`make install` into a temporary prefix), then builds
# examples/quickstart.c OUT OF TREE with exactly the README's line
#     cc quickstart.c $(pkg-config --cflags --libs hcpg)
# against that installed prefix (hcpg.pc found through PKG_CONFIG_PATH), and runs it against
# the test database (with-pg.sh provides it).  Catches a .pc that does not link (libpq must be
# in Requires: the public headers expose PGconn/PGresult), headers missing from the install,
# and an install that writes outside its prefix or an uninstall that leaves files behind.
set -u
build=${HC_BUILDDIR:?HC_BUILDDIR unset (run through make check)}
src=${HC_SRCDIR:?HC_SRCDIR unset (run through make check)}
line='cc quickstart.c $(pkg-config --cflags --libs hcpg)'

# Instrumented builds (sanitizers, coverage) make a library a plain `cc` line cannot link.
if [ -n "${HC_INSTRUMENTED:-}" ]; then
  echo "SKIP: instrumented build ($HC_INSTRUMENTED): the library needs the same flags to link"
  exit 77
fi
command -v pkg-config >/dev/null || { echo "FAIL: pkg-config not found"; exit 1; }
grep -qF "$line" "$src/README.md" || { echo "FAIL: README.md no longer shows: $line"; exit 1; }

tmp=$(mktemp -d /tmp/hc-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# A make of its own (not the jobserver of the make running this test); the build is up to
# date, so it only copies files.  prefix= on the command line: hcpg.pc is written by make
# with the directories of this install.
if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$build" install prefix="$tmp/prefix" \
     >"$tmp/install.log" 2>&1; then
  cat "$tmp/install.log"; echo "FAIL: make install prefix=$tmp/prefix"; exit 1
fi
pc="$tmp/prefix/lib/pkgconfig/hcpg.pc"
[ -f "$pc" ] || { echo "FAIL: $pc not installed"; exit 1; }
echo "--- installed hcpg.pc"; cat "$pc"
grep -q "^prefix=$tmp/prefix\$" "$pc" || { echo "FAIL: hcpg.pc does not name the install prefix"; exit 1; }

# make install writes the prefix only (the extension goes into the server's directories only
# through make install-extension), and make uninstall takes all of it away: a staged install
# (DESTDIR) shows every file it writes.
stage="$tmp/stage"
# make in the build under test, outside the test harness's make: make_in DESTDIR TARGET [VAR=...]
make_in() { local d=$1; shift; env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$build" "$@" DESTDIR="$d" >>"$tmp/install.log" 2>&1; }
make_staged() { make_in "$stage" "$1" prefix=/hc-prefix; }
make_staged install || { cat "$tmp/install.log"; echo "FAIL: make install DESTDIR=$stage"; exit 1; }
outside=$(find "$stage" -type f ! -path "$stage/hc-prefix/*")
[ -z "$outside" ] || { echo "$outside"; echo "FAIL: make install wrote outside its prefix"; exit 1; }
[ -f "$stage/hc-prefix/lib/pkgconfig/hcpg.pc" ] || { echo "FAIL: DESTDIR install has no hcpg.pc"; exit 1; }
make_staged uninstall || { cat "$tmp/install.log"; echo "FAIL: make uninstall DESTDIR=$stage"; exit 1; }
left=$(find "$stage" -type f)
[ -z "$left" ] || { echo "$left"; echo "FAIL: make uninstall left files behind"; exit 1; }

# The extension goes in only through its own target, which honours DESTDIR too: files land
# under DESTDIR + the server's directories, nowhere else, and uninstall-extension removes them.
if grep -q '^all-local: extension' "$build/Makefile"; then
  pgc=$(sed -n 's/^PG_CONFIG = //p' "$build/Makefile")
  estage="$tmp/estage"
  make_ext() { make_in "$estage" "$1"; }
  make_ext install-extension || { cat "$tmp/install.log"; echo "FAIL: make install-extension DESTDIR=$estage"; exit 1; }
  so="$estage$("$pgc" --pkglibdir)/hydracache.so"
  ctl="$estage$("$pgc" --sharedir)/extension/hydracache.control"
  [ -f "$so" ] && [ -f "$ctl" ] || { find "$estage" -type f; echo "FAIL: install-extension did not stage $so and $ctl"; exit 1; }
  ls "$estage$("$pgc" --sharedir)"/extension/hydracache--*.sql >/dev/null 2>&1 \
    || { echo "FAIL: install-extension staged no SQL scripts"; exit 1; }
  make_ext uninstall-extension || { cat "$tmp/install.log"; echo "FAIL: make uninstall-extension DESTDIR=$estage"; exit 1; }
  left=$(find "$estage" -type f)
  [ -z "$left" ] || { echo "$left"; echo "FAIL: uninstall-extension left files behind"; exit 1; }
  echo "install-extension / uninstall-extension honour DESTDIR"
fi

mkdir "$tmp/app"
cp "$src/examples/quickstart.c" "$tmp/app/"
cd "$tmp/app" || exit 1
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
echo "--- $line"
if ! eval "$line" >"$tmp/cc.log" 2>&1; then
  cat "$tmp/cc.log"; echo "FAIL: the README's link line does not build quickstart.c"; exit 1
fi
# the installed library, not the build tree's (no rpath in a pkg-config link line)
out=$(LD_LIBRARY_PATH="$tmp/prefix/lib" ./a.out "$HC_TEST_DSN dbname=$HC_TEST_DB") || {
  echo "$out"; echo "FAIL: the out-of-tree quickstart failed"; exit 1; }
echo "$out"
LD_LIBRARY_PATH="$tmp/prefix/lib" ldd ./a.out | grep -q "$tmp/prefix/lib/libhcpg.so" \
  || { echo "FAIL: a.out does not use the installed libhcpg.so"; exit 1; }
echo "$out" | grep -Eq '^reload +name=zaphod ' || { echo "FAIL: no reload line"; exit 1; }
echo "install: the README's link line builds and runs quickstart.c against the installed prefix"
