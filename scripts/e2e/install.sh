#!/usr/bin/env bash
# Installs the third-party BitTorrent clients the e2e harness drives, and
# `openssl` (the CLI makes the test CA of the https:// cases).
# Idempotent: installs only missing Debian packages; runs `apt-get update`
# only when something is missing.
set -euo pipefail

PACKAGES=(python3-libtorrent rtorrent aria2 transmission-cli transmission-daemon openssl)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "e2e install: all present (${PACKAGES[*]})"
    exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
echo "e2e install: installing ${missing[*]}"
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
/usr/bin/python3 -c 'import libtorrent' || { echo "python3-libtorrent not importable by /usr/bin/python3" >&2; exit 1; }
command -v openssl >/dev/null || { echo "openssl installed but not on PATH" >&2; exit 1; }
echo "e2e install: done"
