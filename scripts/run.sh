#!/usr/bin/env bash
# One command on a fresh Debian/Ubuntu machine: install what is missing, build, open the kiosk.
# With no config file it writes a commented default one and starts the built-in web join wall.
# Extra arguments go to voicewall (e.g. `scripts/run.sh serve --config my.toml`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -p voicewall --features demo
exec target/release/voicewall "$@"
