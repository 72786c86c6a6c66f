#!/usr/bin/env bash
# Desktop smoke test: the real `voicewall` binary (Tauri window) under Xvfb with a window manager and a
# temporary config. Waits for /healthz, screenshots the screen, asserts the wall painted (not blank),
# decodes the QR code from the screenshot and checks it encodes the wall's join URL, then quits with
# SIGTERM and checks the clean shutdown. Prints launch → painted time and the app's idle RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VOICEWALL_BIN:-target/debug/voicewall}
OUT=target/test-output/desktop
mkdir -p "$OUT"
[[ -x "$BIN" ]] || { echo "desktop-smoke: $BIN missing (cargo build -p voicewall)"; exit 1; }

if [[ -z "${DISPLAY:-}" || "${VW_SMOKE_INNER:-}" != 1 ]]; then
  exec env VW_SMOKE_INNER=1 xvfb-run -a -s "-screen 0 1280x720x24" "$0" "$@"
fi

TMP=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$TMP/voicewall.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT"
[storage]
data_dir = "$TMP/data"
[audio]
output = "null"
[admin]
token = "smoke-admin-token"
[[walls]]
id = "main"
title = "Smoke Test Wall"
locale = "en"
[walls.web]
TOML

matchbox-window-manager -use_titlebar no >/dev/null 2>&1 &
WM=$!
cleanup() { kill "$WM" 2>/dev/null || true; [[ -n "${APP:-}" ]] && kill -9 "$APP" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

t0=$(date +%s.%N)
"$BIN" --config "$TMP/voicewall.toml" >"$OUT/app.log" 2>&1 &
APP=$!

for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$APP" 2>/dev/null || { echo "desktop-smoke: app exited early"; cat "$OUT/app.log"; exit 1; }
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "desktop-smoke: /healthz never answered"; exit 1; }
# A display route: the operator's Bearer token (the kiosk window has its own display credential).
JOIN_URL=$(curl -fsS -H "Authorization: Bearer smoke-admin-token" "http://127.0.0.1:$PORT/api/walls/main" | python3 -c 'import json,sys; print(json.load(sys.stdin)["join"]["url"])')

painted=""
for i in $(seq 1 120); do
  import -window root "$OUT/wall.png" 2>/dev/null || true
  if [[ -s "$OUT/wall.png" ]]; then
    stddev=$(convert "$OUT/wall.png" -colorspace Gray -format '%[fx:standard_deviation]' info:)
    # Every QR on the screen: on a first run the console's address is one too, beside the join QR.
    qr=$(zbarimg -q --raw "$OUT/wall.png" 2>/dev/null || true)
    if grep -Fxq "$JOIN_URL" <<<"$qr" && python3 -c "import sys; sys.exit(0 if float('$stddev') > 0.05 else 1)"; then
      painted=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")
      break
    fi
  fi
  sleep 0.25
done
if [[ -z "$painted" ]]; then
  echo "desktop-smoke: FAIL: the wall never painted a scannable QR (last stddev=${stddev:-?}, qr=${qr:-none}, want $JOIN_URL)"
  tail -n 30 "$OUT/app.log"
  exit 1
fi
echo "desktop-smoke: wall painted, QR decodes to $JOIN_URL"
echo "desktop-smoke: launch → wall painted: ${painted} s"

# Size of the full window in the screenshot: fullscreen means the page covers the screen.
read -r W H < <(identify -format '%w %h\n' "$OUT/wall.png") || true
echo "desktop-smoke: screen ${W}x${H}"

sleep 3
rss_kb=0
for pid in $APP $(pgrep -P "$APP" || true) $(pgrep -f WebKitWebProcess || true) $(pgrep -f WebKitNetworkProcess || true); do
  r=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  rss_kb=$((rss_kb + ${r:-0}))
done
app_rss=$(awk '/VmRSS/ {print $2}' "/proc/$APP/status")
echo "desktop-smoke: idle RSS: app ${app_rss} KiB; app + WebKit processes ${rss_kb} KiB"

kill -TERM "$APP"
for _ in $(seq 1 100); do kill -0 "$APP" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$APP" 2>/dev/null; then echo "desktop-smoke: FAIL: still running 10 s after SIGTERM"; exit 1; fi
wait "$APP" && code=0 || code=$?
APP=""
grep -q "store flushed; stopped cleanly" "$OUT/app.log" || { echo "desktop-smoke: FAIL: no clean shutdown in the log"; tail -n 30 "$OUT/app.log"; exit 1; }
echo "desktop-smoke: SIGTERM → clean shutdown (exit $code)"
[[ $code -eq 0 ]] || { echo "desktop-smoke: FAIL: exit code $code"; exit 1; }
echo "desktop-smoke: 1 passed, 0 failed"
