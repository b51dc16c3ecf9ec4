#!/usr/bin/env bash
# Installs the front-end packages from the npm registry and copies what the pages load into
# static/vendor/. Re-runs only when package-lock.json changes (Makefile stamp).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
mkdir -p static/vendor
cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js
cp node_modules/@picocss/pico/css/pico.min.css static/vendor/pico.min.css
cp node_modules/chart.js/dist/chart.umd.min.js static/vendor/chart.umd.min.js
