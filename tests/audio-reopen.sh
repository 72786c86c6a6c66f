#!/usr/bin/env bash
# Audio device loss and reopen, for real: a private PulseAudio daemon whose only sink is a null sink, reached
# through ALSA's pulse plugin as on a desktop. The sink is unloaded ("unplugged") and loaded again
# ("plugged back") while voicewall runs:
#  1. `voicewall serve`: /healthz audio goes ok → lost → reopened, with no restart;
#  2. `voicewall play` of a 12 s tone: the sink is unplugged at ~3 s and back at ~6 s; the play still ends
#     on time ("done", no hang) and the sound after the replug is recorded from the new sink's monitor.
# Usage: tests/audio-reopen.sh [BIN]   (default target/debug/voicewall; build it with
# `cargo test -p voicewall --no-run`)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-${VOICEWALL_BIN:-target/debug/voicewall}}")
OUT=target/test-output/audio-reopen
mkdir -p "$OUT"
TMP=$(mktemp -d)
. tests/private-pulse.sh
APP=
cleanup() { [[ -n "$APP" ]] && kill "$APP" 2>/dev/null; kill $PA 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
plug() { pactl load-module module-null-sink sink_name=vw >"$TMP/module"; pactl set-default-sink vw; }
unplug() { pactl unload-module "$(cat "$TMP/module")"; }
plug
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$TMP/v.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
[audio]
output = "default"
[storage]
data_dir = "$TMP/data"
TOML
fail=0
check() { if eval "$2"; then echo "audio-reopen: ok $1"; else echo "audio-reopen: FAIL $1"; fail=$((fail+1)); fi; }
audio() { curl -s "http://127.0.0.1:$PORT/healthz" | python3 -c 'import sys, json; a = json.load(sys.stdin)["audio"]; print(a["state"] + " | " + a["detail"])'; }
# Wait (bounded) until /healthz audio is in state $1; prints the last answer.
wait_state() {
  local s=""
  for _ in $(seq 1 100); do s=$(audio 2>/dev/null || true); [[ "$s" == "$1 "* ]] && break; sleep 0.2; done
  echo "$s"
}

# 1. serve: ok → lost → reopened.
HOME="$TMP" "$BIN" serve --config "$TMP/v.toml" >"$OUT/serve.log" 2>&1 &
APP=$!
s=$(wait_state ok); echo "  healthz: $s"; check "serve opens the device" '[[ "$s" == ok* ]]'
unplug
s=$(wait_state lost); echo "  healthz after unplug: $s"; check "healthz says lost after the unplug" '[[ "$s" == lost* ]]'
plug
s=$(wait_state reopened); echo "  healthz after replug: $s"; check "healthz says reopened after the replug" '[[ "$s" == reopened* ]]'
kill -TERM "$APP"; wait "$APP" 2>/dev/null || true; APP=

# 2. play through an unplug/replug.
python3 - "$TMP/tone.wav" <<'PY'
import sys, wave, struct, math
rate = 48000; n = rate * 12
w = wave.open(sys.argv[1], "wb"); w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)
w.writeframes(b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(n)))
PY
start=$(date +%s.%N)
HOME="$TMP" timeout 40 "$BIN" play --config "$TMP/v.toml" "$TMP/tone.wav" >"$OUT/play.log" 2>&1 &
PLAY=$!
sleep 3; unplug; sleep 3; plug
parec -d vw.monitor --file-format=wav --rate=48000 --channels=1 "$OUT/after-replug.wav" &
REC=$!
rc=0; wait $PLAY || rc=$?
took=$(python3 -c "import time; print(f'{time.time() - $start:.1f}')")
sleep 0.3; kill -INT $REC; wait $REC 2>/dev/null || true
echo "  play: exit $rc after ${took} s; log:"; sed 's/^/    /' "$OUT/play.log"
check "play ends (no hang) with done" '[[ $rc -eq 0 ]] && grep -q "^done" "$OUT/play.log"'
check "play takes about the tone's 12 s" 'python3 -c "import sys; sys.exit(0 if 11 <= $took <= 20 else 1)"'
got=$(python3 - "$OUT/after-replug.wav" <<'PY'
import sys, wave, struct, math
w = wave.open(sys.argv[1]); n = w.getnframes(); rate = w.getframerate()
data = struct.unpack("<%dh" % n, w.readframes(n))
win = rate // 50
levels = [math.sqrt(sum(x * x for x in data[i:i + win]) / win) / 32768 for i in range(0, len(data) - win, win)]
print(f"{sum(1 for l in levels if l > 0.01) / 50:.2f}")
PY
)
echo "  sound recorded after the replug: ${got} s"
check "the tone sounds again after the replug (>= 2 s of it)" 'python3 -c "import sys; sys.exit(0 if $got >= 2 else 1)"'
echo "audio-reopen: $fail failed"
[[ $fail -eq 0 ]]
