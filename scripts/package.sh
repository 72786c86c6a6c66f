#!/usr/bin/env bash
# Build the Debian package: the release binary (one cargo build), then the Tauri bundler
# (`tauri bundle`, npm @tauri-apps/cli v2: a prebuilt binary, no Rust build of its own) wraps it with
# the desktop entry, the icons (src-tauri/icons/, made from icons/voicewall.svg) and the dependencies
# listed in src-tauri/tauri.conf.json. Prints the .deb's path on the last line.
# Usage: scripts/package.sh        then: sudo apt-get install ./target/release/bundle/deb/voicewall_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --package
cargo build --release -p voicewall
rm -rf target/release/bundle/deb
# CI=true: the bundler does not prompt or try to sign anything.
CI=true npx --no-install tauri bundle --bundles deb >&2
deb=$(ls target/release/bundle/deb/voicewall_*.deb)
echo "package: built $deb" >&2
dpkg-deb -f "$deb" Package Version Architecture Depends Recommends >&2
echo "$deb"
