#!/usr/bin/env bash
# Install the Debian packages the test suite drives as real parts; called by `make test`.
#
# Idempotent and quick when everything is present (no apt call at all). As root it installs what is
# missing; as another user it only says what is missing and exits 0, and the tests needing it fail
# with their own message. Prints one line saying what it did.
set -euo pipefail

# "package:command" -- the package is counted present when its command is found (see has_command).
PACKAGES=(
    # systemd-analyze verifies the unit files in systemd/ (tests/test_systemd.py).
    "systemd:systemd-analyze"
    # Debian's chromium joins rooms through the phone web client, driven by Playwright (tests/test_web_*.py).
    "chromium:chromium"
    # ffprobe checks recorded media files.
    "ffmpeg:ffprobe"
    # nft sets up the kernel NAT of the test "homes" (tvapp.testing.homes, tests/test_homes*.py).
    "nftables:nft"
    # ip makes the network namespaces that tests put screens in, behind tvapp.testing.netem (tests/test_netem.py).
    "iproute2:ip"
    # coturn is the real TURN server the TURN tests start (tvapp.testing.coturn, tests/test_turn_coturn.py).
    "coturn:turnserver"
    # nginx terminates TLS in front of the core with the config README.md shows (tests/test_reverse_proxy.py).
    "nginx-light:nginx"
    # firefox-esr is the second browser engine, driven over WebDriver BiDi (tvapp.testing.firefox, tests/test_firefox.py).
    "firefox-esr:firefox-esr"
    # node runs the JavaScript SDK's unit tests (node --test tests/js/) and npm packs it (tests/test_web_sdk_package.py).
    "nodejs:node"
    "npm:npm"
)

# Also look in the sbin directories: they are not on an ordinary user's PATH (iproute2's tc lives there).
has_command() {
    command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/sbin/$1" ]]
}

missing_packages() {
    local entry
    for entry in "${PACKAGES[@]}"; do
        has_command "${entry#*:}" || echo "${entry%%:*}"
    done
}

mapfile -t missing < <(missing_packages)

if ((${#missing[@]} == 0)); then
    echo "install-system-deps: all present (${PACKAGES[*]%%:*}), nothing to do"
    exit 0
fi

if ((EUID != 0)); then
    echo "install-system-deps: missing ${missing[*]}; not root, so not installing:" \
        "as root run \`apt-get install --no-install-recommends ${missing[*]}\` (the tests needing them will fail)"
    exit 0
fi

# apt's progress output goes to a log that is shown only when the installation fails.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-system-deps: failed to install ${missing[*]}" >&2
    exit 1
fi
mapfile -t still_missing < <(missing_packages)
if ((${#still_missing[@]} != 0)); then
    echo "install-system-deps: installed ${missing[*]} but the command of ${still_missing[*]}" \
        "is still not found: fix PACKAGES in $0" >&2
    exit 1
fi
echo "install-system-deps: installed ${missing[*]}"
