#!/usr/bin/env bash
# The .deb as a venue technician uses it: `apt-get install ./voicewall_….deb` on this machine, then the
# INSTALLED program: `voicewall --version`, `voicewall serve` against a temp config answering /healthz over
# HTTP and stopping cleanly on SIGTERM; the desktop entry and icons are in place; every shared library the
# binary loads resolves and belongs to a package the .deb depends on (directly or through its dependencies);
# then `apt-get remove`. Needs root (or sudo). Usage: tests/desktop-package.sh path/to/voicewall_….deb
set -euo pipefail
cd "$(dirname "$0")/.."
DEB=$(realpath "${1:?usage: $0 path/to/voicewall_….deb}")
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
fail() { echo "desktop-package: FAIL: $*"; exit 1; }

if dpkg-query -W -f='${Status}' voicewall 2>/dev/null | grep -q "install ok installed"; then
  fail "voicewall is already installed on this machine; this test installs and removes it (apt-get remove voicewall first)"
fi
TMP=$(mktemp -d)
cleanup() {
  [[ -n "${APP:-}" ]] && kill -9 "$APP" 2>/dev/null || true
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq voicewall >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

echo "desktop-package: Depends: $(dpkg-deb -f "$DEB" Depends)"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$DEB" >"$TMP/apt.log" 2>&1 ||
  { cat "$TMP/apt.log"; fail "apt-get install $DEB"; }
BIN=$(command -v voicewall) || fail "no voicewall on PATH after install"
[[ "$BIN" == /usr/bin/voicewall ]] || fail "voicewall installed at $BIN, want /usr/bin/voicewall"
echo "desktop-package: installed $BIN"

want="voicewall $(dpkg-deb -f "$DEB" Version)"
got=$("$BIN" --version)
[[ "$got" == "$want" ]] || fail "--version says '$got', want '$want'"
echo "desktop-package: --version: $got"

# Desktop entry and icons.
desktop=/usr/share/applications/voicewall.desktop
[[ -f $desktop ]] || fail "no $desktop"
grep -qx 'Exec=voicewall' "$desktop" || fail "$desktop does not run voicewall: $(grep Exec "$desktop")"
grep -qx 'Icon=voicewall' "$desktop" || fail "$desktop has no Icon=voicewall"
for size in 32x32 128x128 256x256 512x512; do
  [[ -f /usr/share/icons/hicolor/$size/apps/voicewall.png ]] || fail "no $size icon"
done
echo "desktop-package: desktop entry and icons in place"

# Every library the binary loads resolves, and comes from a package the .deb's dependencies pull in.
ldd "$BIN" >"$TMP/ldd.txt"
if grep -q "not found" "$TMP/ldd.txt"; then cat "$TMP/ldd.txt"; fail "unresolved libraries"; fi
closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances voicewall 2>/dev/null | grep -v '^ ' | sed 's/:.*//' | sort -u)
missing=()
while read -r lib; do
  pkg=$(dpkg -S "$lib" 2>/dev/null | head -n1 | cut -d: -f1) || true
  [[ -z "$pkg" ]] && pkg=$(dpkg -S "$(realpath "$lib")" 2>/dev/null | head -n1 | cut -d: -f1) || true
  [[ -z "$pkg" ]] && continue   # the dynamic loader's own vdso etc.
  grep -qx "$pkg" <<<"$closure" || missing+=("$lib ($pkg)")
done < <(awk '/=>/ {print $3} !/=>/ && /^\s*\// {print $1}' "$TMP/ldd.txt")
((${#missing[@]} == 0)) || fail "libraries from packages the .deb does not depend on: ${missing[*]}"
echo "desktop-package: $(wc -l <"$TMP/ldd.txt") shared libraries, all from the .deb's dependency closure"

# `voicewall serve` from the installed binary, against a temp config.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$TMP/voicewall.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
[storage]
data_dir = "$TMP/data"
[audio]
output = "null"
[[walls]]
id = "main"
[walls.web]
TOML
"$BIN" check-config "$TMP/voicewall.toml"
env -u VOICEWALL_BIN "$BIN" serve --config "$TMP/voicewall.toml" >"$TMP/serve.log" 2>&1 &
APP=$!
for _ in $(seq 1 200); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >"$TMP/health.json" 2>/dev/null && break
  kill -0 "$APP" 2>/dev/null || { cat "$TMP/serve.log"; fail "serve exited early"; }
  sleep 0.1
done
grep -q '"status":"ok"' "$TMP/health.json" || { cat "$TMP/serve.log"; fail "/healthz did not answer ok"; }
echo "desktop-package: installed serve answers /healthz: $(head -c 200 "$TMP/health.json")"
kill -TERM "$APP"
wait "$APP" && code=0 || code=$?
APP=""
[[ $code -eq 0 ]] || fail "serve exited $code after SIGTERM"
grep -q "stopped cleanly" "$TMP/serve.log" || fail "no clean stop in the log"

$SUDO env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq voicewall >/dev/null
[[ ! -e /usr/bin/voicewall ]] || fail "/usr/bin/voicewall still there after apt-get remove"
echo "desktop-package: removed; 1 passed, 0 failed"
