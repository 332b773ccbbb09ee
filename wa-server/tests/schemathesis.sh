#!/usr/bin/env bash
# Schema-driven fuzzing of the HTTP API: schemathesis (PyPI) reads /openapi.json from a
# running `wa-server --sandbox` and sends generated requests to every operation; the run
# fails on any 5xx (check `not_a_server_error`), on responses that break the spec's status
# codes, content types or response schemas, and on any schema-valid request the server
# rejects (`positive_data_acceptance`: the spec says exactly what the server accepts; the
# served document lists the --webhook-allowed-hosts in the webhook URL pattern). Webhook URLs are restricted to 127.0.0.1 (allowed with --allow-private-targets,
# since loopback is a non-public target) so generated webhooks never target
# another host; the SSE streams (endless by design) are excluded.
# schemathesis is pinned and installed in a venv under target/ci-tools (ci_tools.sh).
# Uses $WA_SERVER_BIN if set, else builds it. The JUnit report goes to
# $ARTIFACTS/schemathesis (default ARTIFACTS=target/artifacts).
set -euo pipefail
cd "$(dirname "$0")/../.."
source wa-server/tests/ci_tools.sh
ARTIFACTS="${ARTIFACTS:-$PWD/target/artifacts}"
MAX_EXAMPLES="${MAX_EXAMPLES:-40}"
# Per-operation check settings (which operations skip positive_data_acceptance, and why).
# The hooks give schemathesis files of the media types the multipart media sends list.
CONFIG="${SCHEMATHESIS_CONFIG:-$PWD/wa-server/tests/schemathesis.toml}"
HOOKS="$PWD/wa-server/tests/schemathesis_hooks.py"
mkdir -p "$ARTIFACTS/schemathesis"
PYTHON="$(ensure_venv)"
SCHEMATHESIS="$(dirname "$PYTHON")/schemathesis"
BIN="${WA_SERVER_BIN:-}"
if [ -z "$BIN" ]; then
    cargo build -q -p wa-server --bin wa-server
    BIN="$PWD/target/debug/wa-server"
fi
DATA="$(mktemp -d)"
OUT="$DATA/stdout"
KEY="schemathesis-admin-key-0123456789"
WA_API_KEY="$KEY" RUST_LOG="${RUST_LOG:-warn}" "$BIN" --sandbox --bind 127.0.0.1:0 \
    --data-dir "$DATA/wa" --webhook-allowed-hosts 127.0.0.1 --allow-private-targets --max-sessions 500 \
    --default-country-code 62 >"$OUT" &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
# The server prints {"listening": "http://127.0.0.1:PORT"} once bound (port 0: no clashes).
for _ in $(seq 1 600); do
    [ "$(wc -l <"$OUT")" -ge 1 ] && break
    kill -0 "$PID" 2>/dev/null || ci_die "wa-server exited before listening"
    sleep 0.1
done
[ "$(wc -l <"$OUT")" -ge 1 ] || ci_die "wa-server printed no listening address within 60 s"
BASE="$("$PYTHON" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["listening"])' "$OUT")" ||
    ci_die "unexpected first line from wa-server: $(head -c 300 "$OUT")"
echo "wa-server at $BASE"
# schemathesis keeps a cache in its working directory: run it in the temporary one.
(cd "$DATA" && SCHEMATHESIS_HOOKS="$HOOKS" "$SCHEMATHESIS" --config-file "$CONFIG" run "$BASE/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,positive_data_acceptance \
    --header "x-api-key: $KEY" \
    --exclude-path-regex '/events$' \
    --max-examples "$MAX_EXAMPLES" \
    --request-timeout 20 \
    --workers 1 \
    --seed 1 \
    --report junit --report-dir "$ARTIFACTS/schemathesis" \
    --generation-database none \
    --no-color)
# The server is still alive and ready after the run.
curl -fsS --max-time 10 "$BASE/ready" >/dev/null || ci_die "wa-server is not ready after the fuzz run"
kill -TERM "$PID"
wait "$PID"
trap - EXIT
rm -rf "$DATA"
echo "schemathesis: no server errors"
