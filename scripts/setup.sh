#!/usr/bin/env bash
# Install what Voicewall needs on Debian/Ubuntu, only what is missing: system packages, npm packages.
# fonts-noto-cjk: the default wall is zh-CN; without a CJK font every Chinese string renders as boxes.
# Usage: scripts/setup.sh [--test | --package]
#   --test adds what the tests need: Chromium, Xvfb, PulseAudio, zbar, audio tools, the packaging tools,
#   python3-venv (Debian's python3 has no ensurepip without it; scripts/schemathesis.sh makes a venv)
#   --package adds what scripts/package.sh needs: Node/npm for the Tauri bundler (npm @tauri-apps/cli)
set -euo pipefail
cd "$(dirname "$0")/.."

RUN_PKGS=(build-essential pkg-config cmake libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev
  libayatana-appindicator3-dev libsoup-3.0-dev libasound2-dev libopus-dev libopencore-amrnb-dev
  x11-xserver-utils fonts-noto-cjk)
TEST_PKGS=(xvfb xauth imagemagick matchbox-window-manager zbar-tools pulseaudio pulseaudio-utils
  chromium libasound2-plugins nodejs npm espeak-ng sox libsox-fmt-all procps curl webkit2gtk-driver x11-utils
  python3 python3-venv)
PACKAGE_PKGS=(nodejs npm)

pkgs=("${RUN_PKGS[@]}")
if [[ "${1:-}" == "--test" ]]; then pkgs+=("${TEST_PKGS[@]}" "${PACKAGE_PKGS[@]}"); fi
if [[ "${1:-}" == "--package" ]]; then pkgs+=("${PACKAGE_PKGS[@]}"); fi

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

# The desktop end-to-end test's WebDriver server for Tauri apps (in front of WebKitWebDriver).
if [[ "${1:-}" == "--test" ]] && ! command -v tauri-driver >/dev/null; then
  echo "setup: cargo install tauri-driver"
  cargo install tauri-driver --locked --version '^2' --quiet
fi

if [[ "${1:-}" == "--test" || "${1:-}" == "--package" ]] &&
  [[ ! -d node_modules/playwright-core || ! -x node_modules/.bin/tauri ]]; then
  echo "setup: npm install"
  npm install --no-audit --no-fund --loglevel=error
fi
