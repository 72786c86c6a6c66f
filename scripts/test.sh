#!/usr/bin/env bash
# One command on a fresh Debian/Ubuntu machine: install what is missing, then run every check and test:
# fmt, clippy (warnings denied), all Rust tests, schemathesis against the live API, the browser tests (real Chromium), the audio end-to-end
# test (PulseAudio null sink), the desktop smoke test (the real window under Xvfb), the desktop end-to-end
# test (tauri-driver + WebKitWebDriver), then the .deb: built once in the release profile, installed with
# apt-get, the installed program run, removed.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
mkdir -p target/test-output
step() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

step setup
scripts/setup.sh --test

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test"
cargo test --workspace --no-fail-fast 2>&1 | tee target/test-output/cargo-test.log
# The binary the browser, audio and desktop tests drive: `cargo test` built it (src-tauri/tests/cli.rs runs
# it) with the same features, so a separate `cargo build -p voicewall` would only re-resolve features
# without dev-dependencies and rebuild shared crates for nothing.
[[ -x target/debug/voicewall ]] || cargo build -p voicewall

step "fuzz corpus replay (cargo-fuzz, nightly)" && scripts/fuzz-replay.sh 2>&1 | tee target/test-output/fuzz-replay.log

step "schemathesis against the OpenAPI description (live server)"
scripts/schemathesis.sh 2>&1 | tee target/test-output/schemathesis.log

step "browser tests (Chromium)"
node --test --test-concurrency=1 tests/browser/ 2>&1 | tee target/test-output/browser-test.log

step "audio end-to-end (PulseAudio null sink)"
tests/audio-e2e.sh

step "desktop smoke (Xvfb)"
tests/desktop-smoke.sh

step "desktop end-to-end (tauri-driver + WebKitWebDriver, Xvfb)"
tests/desktop-e2e.sh

step "package: .deb (release build), apt-get install, run the installed program, remove"
deb=$(scripts/package.sh | tail -n1)
tests/desktop-package.sh "$deb"

step "all tests passed"
