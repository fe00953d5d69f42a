#!/usr/bin/env bash
# scripts/setup.sh (which scripts/demo.sh runs first) must never clean a user's in-tree build:
# in a source tree with ./config.status it stops with a message naming the way out, and
# leaves config.status in place and `make distclean` unrun.
set -u
src=${HC_SRCDIR:?HC_SRCDIR unset (run through make check)}
tmp=$(mktemp -d /tmp/hc-setup.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/scripts"
cp "$src/scripts/setup.sh" "$tmp/scripts/"
: >"$tmp/configure.ac"; printf '#!/bin/sh\n' >"$tmp/configure"; chmod +x "$tmp/configure"
echo "# the user's configuration" >"$tmp/config.status"
printf 'distclean:\n\ttouch distclean-ran\n\trm -f config.status\n' >"$tmp/Makefile"

HC_SETUP_NO_PKGS=1 bash "$tmp/scripts/setup.sh" >"$tmp/out" 2>&1; rc=$?
cat "$tmp/out"
[ "$rc" != 0 ] || { echo "FAIL: setup.sh succeeded in a tree configured in-tree"; exit 1; }
[ -f "$tmp/config.status" ] || { echo "FAIL: setup.sh removed the user's config.status"; exit 1; }
[ ! -e "$tmp/distclean-ran" ] || { echo "FAIL: setup.sh ran make distclean on the user's build"; exit 1; }
grep -q "make distclean" "$tmp/out" || { echo "FAIL: no message saying how to proceed"; exit 1; }
[ ! -d "$tmp/build" ] || { echo "FAIL: setup.sh went on to build"; exit 1; }
echo "setup.sh: stops on an in-tree configuration and keeps it"
