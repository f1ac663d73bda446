#!/usr/bin/env bash
# Installs what the e2e harness drives:
#  - Debian: the third-party BitTorrent clients, `openssl` (the CLI makes the
#    test CA of the https:// and wss:// cases), and for the `ws` group
#    `chromium` (driven by playwright-core; nothing downloads a browser),
#    `libnss3-tools` (certutil: the test CA goes into Chromium's NSS database)
#    and `iproute2` (`ip link set lo up` in the run's own network namespace).
#  - npm, for the `ws` group: the packages pinned in scripts/e2e/browser/
#    (package.json + package-lock.json: playwright-core, webtorrent for its
#    browser bundle, bittorrent-tracker for the reference tracker), with
#    `npm ci --ignore-scripts` into a cache dir outside the repo:
#    E2E_NODE_DIR, default ${XDG_CACHE_HOME:-~/.cache}/riptide-e2e/node.
# Idempotent: installs only missing Debian packages (`apt-get update` only
# then) and runs `npm ci` only when the pinned lockfile changed or the cache
# lacks a package. Needs no stdin (CI=true works).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

PACKAGES=(python3-libtorrent rtorrent aria2 transmission-cli transmission-daemon openssl
          chromium libnss3-tools iproute2)
# Node.js (>= 20, for playwright-core) is on this machine kind; Debian's only when absent.
command -v node >/dev/null || PACKAGES+=(nodejs)
command -v npm >/dev/null || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "e2e install: all present (${PACKAGES[*]})"
else
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    echo "e2e install: installing ${missing[*]}"
    $SUDO apt-get update -qq >/dev/null
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi
/usr/bin/python3 -c 'import libtorrent' || { echo "python3-libtorrent not importable by /usr/bin/python3" >&2; exit 1; }
for cmd in openssl chromium certutil ip unshare node npm; do
    command -v "$cmd" >/dev/null || { echo "e2e install: $cmd not on PATH after install" >&2; exit 1; }
done
node_major=$(node -p 'process.versions.node.split(".")[0]')
if ((node_major < 20)); then
    echo "e2e install: node $(node --version) is too old for playwright-core (needs >= 20)" >&2
    exit 1
fi

# ---------------------------------------------------------------- npm packages of the ws group
node_dir=${E2E_NODE_DIR:-${XDG_CACHE_HOME:-${HOME:?}/.cache}/riptide-e2e/node}
src="$here/browser"
want=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)
stamp="$node_dir/.riptide-lock-sha256"
need=(playwright-core/index.mjs webtorrent/dist/webtorrent.min.js bittorrent-tracker/server.js)
have=1
[[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] || have=0
for f in "${need[@]}"; do [[ -f "$node_dir/node_modules/$f" ]] || have=0; done
if ((have)); then
    echo "e2e install: npm packages present in $node_dir"
else
    echo "e2e install: npm ci --ignore-scripts into $node_dir"
    mkdir -p "$node_dir"
    rm -f "$stamp"
    cp "$src/package.json" "$src/package-lock.json" "$node_dir/"
    # --ignore-scripts: no package may run an install step (playwright's would fetch a
    # browser); webtorrent's native node dependencies stay unbuilt: only its browser
    # bundle is used. webtorrent declares node >= 22 for its node side: not enforced.
    (cd "$node_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
        --engine-strict=false </dev/null)
    for f in "${need[@]}"; do
        [[ -f "$node_dir/node_modules/$f" ]] || { echo "e2e install: $f missing after npm ci" >&2; exit 1; }
    done
    echo "$want" >"$stamp"
fi
echo "e2e install: done"
