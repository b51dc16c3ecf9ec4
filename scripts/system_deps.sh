#!/usr/bin/env bash
# Debian packages the platform needs beyond Python wheels: WeasyPrint's libraries (pango,
# harfbuzz with its subsetter, which makes PDFs 4-5x faster, fontconfig, a font), and Chromium for the browser tests (tests/portal/test_browser_*.py drive
# /usr/bin/chromium through Playwright; never `playwright install`). Installs what is
# missing when running as root; otherwise says what to install.
set -euo pipefail
packages=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 libfontconfig1 fonts-dejavu-core chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "missing system packages (install them with your package manager): ${missing[*]}" >&2
  exit 1
fi
