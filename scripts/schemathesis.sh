#!/usr/bin/env bash
# schemathesis against a live `voicewall serve`: the API's OpenAPI description (GET /api/openapi.json)
# drives generated requests (valid and invalid) at every documented operation, as the operator (admin
# Bearer). Fails on a 5xx, on a status, content type or body the description does not allow.
# The server: target/debug/voicewall (or $VOICEWALL_BIN), a temp data dir, the null audio output, one
# web wall "main". schemathesis is installed with pip into target/schemathesis-venv (python3-venv on
# Debian: scripts/setup.sh --test). Options: SCHEMATHESIS_MAX_EXAMPLES (default 25) per operation.
# Report: target/test-output/schemathesis/ (JUnit), the server's log beside it.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${VOICEWALL_BIN:-target/debug/voicewall}
[[ -x "$BIN" ]] || { echo "schemathesis: $BIN is missing; build it (cargo build -p voicewall)" >&2; exit 1; }
OUT=target/test-output/schemathesis
mkdir -p "$OUT"

VENV=target/schemathesis-venv
if [[ ! -x "$VENV/bin/st" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet 'schemathesis>=4.32,<5'
fi

TOKEN="schemathesis-admin-token"
TMP=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$TMP/voicewall.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT"
[storage]
data_dir = "$TMP/data"
[audio]
output = "null"
[admin]
token = "$TOKEN"
[[walls]]
id = "main"
title = "schemathesis"
locale = "en"
[walls.web]
TOML
"$BIN" serve --config "$TMP/voicewall.toml" >"$OUT/server.log" 2>&1 &
SERVER=$!
cleanup() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

# The event streams never end (Server-Sent Events): they are left out, the rest is tested.
status=0
"$VENV/bin/st" run "http://127.0.0.1:$PORT/api/openapi.json" \
  --header "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --exclude-path-regex '/events$' \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" \
  --request-timeout 20 --workers 1 --seed 18 --no-color \
  --report junit --report-dir "$OUT" || status=$?
if ! kill -0 "$SERVER" 2>/dev/null; then
  echo "schemathesis: the server died; see $OUT/server.log" >&2
  exit 1
fi
exit "$status"
