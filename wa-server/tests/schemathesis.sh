#!/usr/bin/env bash
# Schema-driven fuzzing of the HTTP API: schemathesis (PyPI) reads /openapi.json from a
# running `wa-server --sandbox` and sends generated requests to every operation; the run
# fails on any 5xx (check `not_a_server_error`) and on responses that break the spec's
# status codes. Webhook URLs are restricted to 127.0.0.1 so generated webhooks never target
# another host; the SSE streams (endless by design) are excluded.
# Uses $WA_SERVER_BIN if set, else builds it. Reports go to $ARTIFACTS.
set -euo pipefail
cd "$(dirname "$0")/../.."
ARTIFACTS="${ARTIFACTS:-$PWD/target/wa-server-artifacts}"
MAX_EXAMPLES="${MAX_EXAMPLES:-40}"
mkdir -p "$ARTIFACTS"
command -v schemathesis >/dev/null 2>&1 || python3 -m pip install -q schemathesis
BIN="${WA_SERVER_BIN:-}"
if [ -z "$BIN" ]; then
    cargo build -q -p wa-server --bin wa-server
    BIN="$PWD/target/debug/wa-server"
fi
DATA="$(mktemp -d)"
OUT="$DATA/stdout"
KEY="schemathesis-admin-key-0123456789"
WA_API_KEY="$KEY" RUST_LOG="${RUST_LOG:-warn}" "$BIN" --sandbox --bind 127.0.0.1:0 \
    --data-dir "$DATA/wa" --webhook-allowed-hosts 127.0.0.1 --max-sessions 500 \
    --default-country-code 62 >"$OUT" &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 1 600); do
    [ -s "$OUT" ] && break
    sleep 0.1
done
BASE="$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["listening"])' "$OUT")"
echo "wa-server at $BASE"
# schemathesis keeps a cache in its working directory: run it in the temporary one.
(cd "$DATA" && schemathesis run "$BASE/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance \
    --header "x-api-key: $KEY" \
    --exclude-path-regex '/events$' \
    --max-examples "$MAX_EXAMPLES" \
    --request-timeout 20 \
    --workers 1 \
    --seed 1 \
    --report junit --report-dir "$ARTIFACTS" \
    --generation-database none \
    --no-color)
# The server is still alive and ready after the run.
curl -fsS "$BASE/ready" >/dev/null
kill -TERM "$PID"
wait "$PID"
trap - EXIT
rm -rf "$DATA"
echo "schemathesis: no server errors"
