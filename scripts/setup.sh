#!/usr/bin/env bash
# Install what Voicewall needs on Debian/Ubuntu, only what is missing: system packages, npm packages.
# Usage: scripts/setup.sh [--test]   (--test adds what the tests need: Chromium, Xvfb, PulseAudio, zbar, audio tools)
set -euo pipefail
cd "$(dirname "$0")/.."

RUN_PKGS=(build-essential pkg-config cmake libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev
  libayatana-appindicator3-dev libsoup-3.0-dev libasound2-dev libopus-dev libopencore-amrnb-dev
  x11-xserver-utils)
TEST_PKGS=(xvfb xauth imagemagick matchbox-window-manager zbar-tools pulseaudio pulseaudio-utils
  chromium libasound2-plugins nodejs npm espeak-ng sox libsox-fmt-all procps curl)

pkgs=("${RUN_PKGS[@]}")
if [[ "${1:-}" == "--test" ]]; then pkgs+=("${TEST_PKGS[@]}"); fi

missing=()
for p in "${pkgs[@]}"; do
  # nodejs/npm may come from elsewhere (nvm, NodeSource): a working command is enough.
  if [[ "$p" == nodejs ]] && command -v node >/dev/null; then continue; fi
  if [[ "$p" == npm ]] && command -v npm >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "setup: Rust is missing. Install it with rustup (https://rustup.rs), then run this again." >&2
  exit 1
fi

if [[ "${1:-}" == "--test" ]] && [[ ! -d node_modules/playwright-core ]]; then
  echo "setup: npm install"
  npm install --no-audit --no-fund --loglevel=error
fi
