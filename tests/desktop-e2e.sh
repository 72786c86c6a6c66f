#!/usr/bin/env bash
# End-to-end test of the REAL desktop binary through WebDriver: tauri-driver (cargo install tauri-driver)
# in front of WebKitWebDriver (apt webkit2gtk-driver), under Xvfb with a window manager (matchbox).
# The steps are in tests/desktop-e2e.mjs: launch, fullscreen, the QR on screen decodes to the join URL, a
# guest joining through the web join API appears in the real window, a killed WebKit web process comes back,
# SIGTERM quits cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${VOICEWALL_BIN:-target/debug/voicewall}")
[[ -x "$BIN" ]] || { echo "desktop-e2e: $BIN missing (cargo build -p voicewall)"; exit 1; }
command -v tauri-driver >/dev/null || { echo "desktop-e2e: tauri-driver missing (cargo install tauri-driver --locked --version ^2)"; exit 1; }
command -v WebKitWebDriver >/dev/null || { echo "desktop-e2e: WebKitWebDriver missing (apt-get install webkit2gtk-driver)"; exit 1; }

if [[ "${VW_E2E_INNER:-}" != 1 ]]; then
  exec env VW_E2E_INNER=1 xvfb-run -a -s "-screen 0 1280x720x24" "$0" "$@"
fi

OUT=target/test-output/desktop-e2e
mkdir -p "$OUT"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DRIVER_PORT=$(free_port)
NATIVE_PORT=$(free_port)

matchbox-window-manager -use_titlebar no >/dev/null 2>&1 &
WM=$!
env -u VOICEWALL_BIN tauri-driver --port "$DRIVER_PORT" --native-port "$NATIVE_PORT" >"$OUT/tauri-driver.log" 2>&1 &
DRIVER=$!
cleanup() { kill "$DRIVER" "$WM" 2>/dev/null || true; }
trap cleanup EXIT

# VOICEWALL_BIN is the tools' variable, not the app's: keep it out of the app's environment.
env -u VOICEWALL_BIN VW_E2E_BIN="$BIN" DRIVER_URL="http://127.0.0.1:$DRIVER_PORT" OUT="$OUT" \
  node tests/desktop-e2e.mjs
