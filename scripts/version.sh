#!/bin/sh
# Prints the libhcpg version (MAJOR.MINOR.PATCH) from libhcpg/include/hydracache/version.h,
# the one place it is written; configure.ac's AC_INIT calls it (autoreconf runs in the top
# source directory).  autoconf caches its output: after changing version.h run autoreconf -fi
# (tests/unit/check_version fails until configure and version.h agree).
h=$(dirname "$0")/../libhcpg/include/hydracache/version.h
v=""
for part in MAJOR MINOR PATCH; do
  n=$(sed -n "s/^#define HC_VERSION_${part} \([0-9][0-9]*\)\$/\1/p" "$h")
  [ -n "$n" ] || { echo "version.sh: no HC_VERSION_${part} in $h" >&2; exit 1; }
  v="${v:+$v.}$n"
done
printf '%s' "$v"
