#!/usr/bin/env bash
# Memory of the whole kiosk as PSS (proportional set size: shared pages divided among the processes that map
# them, so the sum is what the kiosk really costs, unlike summed RSS): the app process and every WebKit
# process under it, from /proc/PID/smaps_rollup. Measured idle (empty wall, painted) and with 2,000 people
# joined through the web join API (the wall laid out and settled). Figures, never pass/fail.
# Usage: tests/desktop-memory.sh [BIN]   (default target/debug/voicewall; runs itself under Xvfb)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-${VOICEWALL_BIN:-target/debug/voicewall}}")
PEOPLE=${PEOPLE:-2000}
if [[ "${VW_MEMORY_INNER:-}" != 1 ]]; then
  exec env VW_MEMORY_INNER=1 xvfb-run -a -s "-screen 0 1920x1080x24" "$0" "$BIN"
fi
TMP=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$TMP/voicewall.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT"
[storage]
data_dir = "$TMP/data"
[audio]
output = "null"
[admin]
token = "memory-admin-token"
[[walls]]
id = "main"
title = "内存测试"
[walls.web]
# 2,000 joins from one test client: lift the per-address limits (the join API's own defaults are per minute).
messages_per_minute = 1000000
messages_per_ip_per_minute = 1000000
new_devices_per_ip_per_minute = 1000000
TOML
matchbox-window-manager -use_titlebar no >/dev/null 2>&1 &
WM=$!
env -u VOICEWALL_BIN "$BIN" --config "$TMP/voicewall.toml" >"$TMP/app.log" 2>&1 &
APP=$!
cleanup() { kill "$APP" "$WM" 2>/dev/null || true; wait "$APP" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

tree() { # the app and all its descendants
  local p=$1; echo "$p"
  for c in $(pgrep -P "$p" || true); do tree "$c"; done
}
pss() { # "<label>": one line per process and the total, in MiB
  local total=0 label=$1
  printf '%-8s' "$label"
  for p in $(tree "$APP"); do
    local kb name
    kb=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
    name=$(cut -c1-15 "/proc/$p/comm" 2>/dev/null || echo gone)
    [[ "$name" == bwrap || "$name" == xdg-dbus-proxy ]] && continue
    total=$((total + ${kb:-0}))
    printf '  %s %.1f' "$name" "$(awk -v k="${kb:-0}" 'BEGIN{print k/1024}')"
  done
  printf '  | total PSS %.1f MiB\n' "$(awk -v k="$total" 'BEGIN{print k/1024}')"
}
wall_people() { curl -fsS -H "Authorization: Bearer memory-admin-token" "http://127.0.0.1:$PORT/api/walls/main" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["participants"]))'; }

for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
sleep 8   # painted and idle (the wall page loads in < 2 s; give WebKit time to settle its caches)
pss idle

python3 - "$PORT" "$PEOPLE" <<'PY'
import http.client, sys, urllib.parse, json, uuid
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
def get(p, headers={}):
    c.request("GET", p, headers=headers); r = c.getresponse(); return r, r.read()
r, body = get("/api/walls/main", {"authorization": "Bearer memory-admin-token"})
url = urllib.parse.urlparse(json.loads(body)["join"]["url"])
token = urllib.parse.parse_qs(url.query)["t"][0]
for i in range(n):
    r, _ = get(url.path + "?" + url.query)
    cookie = r.getheader("set-cookie").split(";")[0]
    b = "----vw" + uuid.uuid4().hex
    fields = {"token": token, "nickname": f"嘉宾{i:04d}", "avatar_mode": "generated"}
    data = "".join(f"--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n" for k, v in fields.items()) + f"--{b}--\r\n"
    c.request("POST", "/api/join/main/profile", body=data.encode(), headers={"content-type": f"multipart/form-data; boundary={b}", "cookie": cookie})
    r = c.getresponse(); r.read()
    if r.status >= 300: sys.exit(f"join {i}: {r.status}")
PY
for _ in $(seq 1 100); do [[ "$(wall_people)" == "$PEOPLE" ]] && break; sleep 0.2; done
sleep 15  # the wall lays out and settles 2,000 avatars
pss "$PEOPLE"
echo "(PSS from /proc/PID/smaps_rollup of $BIN and its WebKit processes, 1920x1080 Xvfb)"
