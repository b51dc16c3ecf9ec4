#!/usr/bin/env bash
# The benchmarks' load generator for single-event requests: wrk, from Debian (installed as root).
set -euo pipefail
command -v wrk >/dev/null && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 || {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
else
  echo "wrk is not installed; the single-event phase will use a slower Python client" >&2
fi
