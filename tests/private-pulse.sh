# Sourced by the audio scripts: a private PulseAudio daemon in $TMP (no sink: the caller loads one), with
# ALSA's default device going to it through the pulse plugin, as on a desktop (a private ~/.asoundrc in
# $TMP: run the app with HOME="$TMP"). Needs TMP and OUT; sets PA (the daemon's pid).
export PULSE_SERVER="unix:$TMP/pulse.sock"
export PULSE_RUNTIME_PATH="$TMP/rt" XDG_RUNTIME_DIR="$TMP/rt" HOME="${HOME:-/root}"
mkdir -p "$TMP/rt"
pulseaudio -n --daemonize=no --exit-idle-time=-1 --disallow-exit \
  -L "module-native-protocol-unix socket=$TMP/pulse.sock auth-anonymous=1" >"$OUT/pulse.log" 2>&1 &
PA=$!
for _ in $(seq 1 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
cat > "$TMP/.asoundrc" <<ASOUND
pcm.!default { type pulse }
ctl.!default { type pulse }
ASOUND
