#!/usr/bin/env bash
# Replays every fuzz target over its committed corpus (fuzz/corpus/<target>/) and nothing else:
# no new inputs are generated (-runs=0), so the run is deterministic and short. A crash, a panic,
# a timeout (> 25 s on one input) or an input using more than 2 GiB fails the script.
# Needs the nightly toolchain; installs it (minimal profile) and cargo-fuzz if they are missing.
#
# Fuzzing for real (one target at a time, the machine is shared):
#   nice -n 19 cargo +nightly fuzz run -s none -a <target> fuzz/corpus/<target> -- -max_total_time=600
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# -s none: the code under test is Rust (memory-safe outside a few FFI calls into Debian's
# uninstrumented codec libraries), so AddressSanitizer would only slow the cold build; -a keeps
# debug assertions (integer overflow panics) on, as in the fuzzing runs.
FLAGS=(-s none -a)
cargo +nightly fuzz build "${FLAGS[@]}"

artifacts="target/test-output/fuzz-artifacts"
mkdir -p "$artifacts"
for target in $(cargo +nightly fuzz list); do
    corpus="fuzz/corpus/$target"
    printf '\n--- %s: %s inputs\n' "$target" "$(find "$corpus" -type f | wc -l)"
    log="$artifacts/$target.log"
    status=0
    cargo +nightly fuzz run "${FLAGS[@]}" "$target" "$corpus" -- \
        -runs=0 -timeout=25 -rss_limit_mb=2048 -artifact_prefix="$artifacts/$target-" \
        >"$log" 2>&1 || status=$?
    grep -E 'INITED|Done [0-9]+ runs|ERROR|panicked|SUMMARY|Test unit written' "$log" || true
    if [ "$status" -ne 0 ]; then
        echo "fuzz replay failed for $target: see $log (the input is in $artifacts/)" >&2
        exit 1
    fi
done
echo "fuzz replay: every corpus input ran clean"
