#!/usr/bin/env bash
# Audio end to end: real sound through a real-time sink. Starts a private PulseAudio daemon with a null
# sink, plays fixture files with `voicewall play` on the default device (rodio → ALSA → PulseAudio), records
# the sink's monitor with parec, and checks the recording's duration and that it is not silence.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VOICEWALL_BIN:-target/debug/voicewall}
OUT=target/test-output/audio
mkdir -p "$OUT"
TMP=$(mktemp -d)
export PULSE_SERVER="unix:$TMP/pulse.sock"
export PULSE_RUNTIME_PATH="$TMP/rt" XDG_RUNTIME_DIR="$TMP/rt" HOME="${HOME:-/root}"
mkdir -p "$TMP/rt"
pulseaudio -n --daemonize=no --exit-idle-time=-1 --disallow-exit \
  -L "module-native-protocol-unix socket=$TMP/pulse.sock auth-anonymous=1" \
  -L "module-null-sink sink_name=vw" >"$OUT/pulse.log" 2>&1 &
PA=$!
trap 'kill $PA 2>/dev/null || true; rm -rf "$TMP"' EXIT
for _ in $(seq 1 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
pactl set-default-sink vw
# ALSA's default device goes to PulseAudio (the alsa pulse plugin), as on a desktop: a private ~/.asoundrc.
cat > "$TMP/.asoundrc" <<ASOUND
pcm.!default { type pulse }
ctl.!default { type pulse }
ASOUND

cat > "$TMP/v.toml" <<TOML
[audio]
output = "default"
[storage]
data_dir = "$TMP/data"
TOML

pass=0; fail=0
for f in tests/fixtures/audio/hello.amr tests/fixtures/audio/hello.ogg tests/fixtures/audio/hello.m4a; do
  want=$("$BIN" probe "$f" | sed -n 's/.*duration=\([0-9.]*\).*/\1/p')
  rec="$OUT/$(basename "$f").wav"
  parec -d vw.monitor --file-format=wav --rate=48000 --channels=1 "$rec" &
  REC=$!
  sleep 0.5
  HOME="$TMP" "$BIN" play --config "$TMP/v.toml" "$f" >"$OUT/play.log" 2>&1 || { cat "$OUT/play.log"; }
  sleep 0.5
  kill -INT $REC; wait $REC 2>/dev/null || true
  stats=$(sox "$rec" -n stat 2>&1 || true)
  got=$(echo "$stats" | awk '/Length \(seconds\)/ {print $3}')
  rms=$(echo "$stats" | awk '/RMS     amplitude/ {print $3}')
  if python3 -c "import sys; w=float('$want'); g=float('${got:-0}'); r=float('${rms:-0}'); sys.exit(0 if g >= w and r > 0.005 else 1)"; then
    echo "audio-e2e: ok $f: ${want}s file → ${got}s recorded, rms ${rms}"
    pass=$((pass+1))
  else
    echo "audio-e2e: FAIL $f: want ≥ ${want}s of sound, recorded ${got:-?}s rms ${rms:-?}"
    cat "$OUT/play.log"
    fail=$((fail+1))
  fi
done
echo "audio-e2e: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
