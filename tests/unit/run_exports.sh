#!/usr/bin/env bash
# libpq's exports discipline for libhcpg.so: every dynamic symbol the shared library defines
# is public API, named hc_<name>.  Private cross-module functions are hc__<name> and hidden
# (-fvisibility=hidden, HC_EXTERN only on public declarations); anything else exported (a
# missing `static`, a helper without the prefix, a bundled library) fails here.
#   run_exports.sh [LIB]   (default: $HC_BUILDDIR/libhcpg/.libs/libhcpg.so)
# Before checking the library it checks itself on a small library that exports one bad name.
set -u -o pipefail
lib=${1:-${HC_BUILDDIR:?HC_BUILDDIR unset (run through make check)}/libhcpg/.libs/libhcpg.so}
command -v nm >/dev/null || { echo "FAIL: nm not found (binutils)"; exit 1; }
case "${HC_INSTRUMENTED:-}" in
  *coverage*) echo "SKIP: coverage build: libgcov adds its own symbols"; exit 77 ;;
esac

# Names the linker defines in every shared object.
LINKER_NAMES='^(_init|_fini|_edata|_end|__bss_start)$'

# Prints the defined dynamic symbols of $1 that are not public hc_ names (hc__ private
# names included); fails when nm cannot read $1, so an unreadable library never passes.
foreign_symbols() {
  local syms
  syms=$(nm -D --defined-only "$1") || { echo "FAIL: nm -D cannot read $1" >&2; return 1; }
  printf '%s\n' "$syms" | awk 'NF {print $NF}' | sed 's/@.*//' \
    | { grep -Ev "$LINKER_NAMES" || true; } | { grep -Ev '^hc_[a-z0-9]' || true; } | LC_ALL=C sort -u
}

tmp=$(mktemp -d /tmp/hc-exports.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
printf 'int hc_ok(void) { return 1; }\nint hc__private(void) { return 2; }\nint helper(void) { return 3; }\nint hc_x_data = 4, Hc_y = 5, hcz = 6;\n' >"$tmp/bad.c"
if ${CC:-cc} -shared -fPIC -o "$tmp/bad.so" "$tmp/bad.c" 2>"$tmp/cc.log"; then
  got=$(foreign_symbols "$tmp/bad.so" | tr '\n' ' ')
  want="Hc_y hc__private hcz helper "
  [ "$got" = "$want" ] || { echo "FAIL: self-check found '$got', expected '$want'"; exit 1; }
  echo 'not a library' >"$tmp/junk.so"
  if foreign_symbols "$tmp/junk.so" >/dev/null 2>&1; then
    echo "FAIL: self-check: an unreadable library passed"; exit 1
  fi
else
  cat "$tmp/cc.log"; echo "FAIL: cannot build the self-check library"; exit 1
fi

la="${HC_BUILDDIR:-}/libhcpg/libhcpg.la"
if [ $# = 0 ] && [ -f "$la" ] && grep -q "^dlname=''" "$la"; then
  echo "SKIP: static-only build (--disable-shared): no shared library to check"; exit 77
fi
[ -f "$lib" ] || { echo "FAIL: $lib not found (shared library not built?)"; exit 1; }
bad=$(foreign_symbols "$lib") || exit 1
n=$(nm -D --defined-only "$lib" | awk '{print $NF}' | grep -c '^hc_[a-z0-9]')
[ "$n" -gt 0 ] || { echo "FAIL: $lib exports no public hc_ symbol"; exit 1; }
if [ -n "$bad" ]; then
  echo "FAIL: $lib exports symbols outside the public hc_ namespace:"
  echo "$bad" | sed 's/^/  /'
  exit 1
fi
echo "exports: $n public hc_ symbols, nothing else"
