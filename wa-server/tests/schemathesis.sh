#!/usr/bin/env bash
# Schema-driven fuzzing of the HTTP API: schemathesis (PyPI) reads an OpenAPI document from a
# running `wa-server --sandbox` and sends generated requests to every operation.
#
# DIALECT picks the document (default: the native one):
#
# - unset or `native`: `/openapi.json`. The run fails on any 5xx (check `not_a_server_error`),
#   on responses that break the spec's status codes, content types or response schemas, and
#   on any schema-valid request the server rejects (`positive_data_acceptance`: the spec says
#   exactly what the server accepts; the served document lists the --webhook-allowed-hosts in
#   the webhook URL pattern). Webhook URLs are restricted to 127.0.0.1 (allowed with
#   --allow-private-targets, since loopback is a non-public target) so generated webhooks
#   never target another host; the SSE streams (endless by design) are excluded.
# - `evolution`: `/evolution/openapi.json` of a server started with `--evolution`, key in the
#   `apikey` header. An instance `fuzz` is created and paired through the sandbox phone first,
#   and schemathesis_evolution.toml makes most generated `{instance}` values name it, so the
#   requests reach the handlers rather than the instance guard's 404.
# - `waha`: `/waha/openapi.json` of a server started with `--waha`, key in `X-Api-Key`; a
#   session `fuzz` is created through the dialect and paired first, and
#   schemathesis_waha.toml binds most `{session}` values to it.
#
# The dialect runs check `not_a_server_error`, `status_code_conformance`,
# `content_type_conformance`, `response_schema_conformance` (every status and content type
# the server answers is documented, and each answer is the JSON the document describes:
# free-form objects or arrays for successes, the dialect's error body for errors) and
# `ignored_auth` (the documented 401 without or with a wrong key). Not
# `positive_data_acceptance`: a dialect document lists the fields the other server requires
# and their types, not every rule it checks (which numbers exist, which group ids are
# known, which file types a kind takes), so a schema-valid request may well be refused.
#
# schemathesis is pinned and installed in a venv under target/ci-tools (ci_tools.sh).
# Uses $WA_SERVER_BIN if set, else builds it. The JUnit report goes to
# $ARTIFACTS/schemathesis (native) or $ARTIFACTS/schemathesis-<dialect> (default
# ARTIFACTS=target/artifacts). MAX_EXAMPLES sets the examples per operation (default 40).
set -euo pipefail
cd "$(dirname "$0")/../.."
source wa-server/tests/ci_tools.sh
ARTIFACTS="${ARTIFACTS:-$PWD/target/artifacts}"
MAX_EXAMPLES="${MAX_EXAMPLES:-40}"
KEY="schemathesis-admin-key-0123456789"
DIALECT="${DIALECT:-native}"
# The hooks give schemathesis files of the media types the multipart media sends list.
HOOKS="$PWD/wa-server/tests/schemathesis_hooks.py"
case "$DIALECT" in
native)
    # Per-operation check settings (which operations skip positive_data_acceptance, and why).
    CONFIG="${SCHEMATHESIS_CONFIG:-$PWD/wa-server/tests/schemathesis.toml}"
    DIALECT_FLAGS=()
    SCHEMA_PATH="/openapi.json"
    CHECKS="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,positive_data_acceptance"
    AUTH_HEADER="x-api-key: $KEY"
    REPORT_DIR="$ARTIFACTS/schemathesis"
    # The SSE streams are endless by design.
    EXCLUDE=(--exclude-path-regex '/events$')
    ;;
evolution | waha)
    # Binds the instance (session) path parameter to the paired `fuzz` most of the time.
    CONFIG="${SCHEMATHESIS_CONFIG:-$PWD/wa-server/tests/schemathesis_$DIALECT.toml}"
    DIALECT_FLAGS=("--$DIALECT")
    SCHEMA_PATH="/$DIALECT/openapi.json"
    # The checks are in the configuration file (one operation turns one off there, which
    # a --checks option would override).
    CHECKS=""
    if [ "$DIALECT" = evolution ]; then AUTH_HEADER="apikey: $KEY"; else AUTH_HEADER="X-Api-Key: $KEY"; fi
    REPORT_DIR="$ARTIFACTS/schemathesis-$DIALECT"
    EXCLUDE=()
    ;;
*) ci_die "unknown DIALECT=$DIALECT (native, evolution or waha)" ;;
esac
[ -f "$CONFIG" ] || ci_die "$CONFIG is missing"
mkdir -p "$REPORT_DIR"
PYTHON="$(ensure_venv)"
SCHEMATHESIS="$(dirname "$PYTHON")/schemathesis"
BIN="${WA_SERVER_BIN:-}"
if [ -z "$BIN" ]; then
    cargo build -q -p wa-server --bin wa-server
    BIN="$PWD/target/debug/wa-server"
fi
DATA="$(mktemp -d)"
OUT="$DATA/stdout"
WA_API_KEY="$KEY" RUST_LOG="${RUST_LOG:-warn}" "$BIN" --sandbox --bind 127.0.0.1:0 \
    --data-dir "$DATA/wa" --webhook-allowed-hosts 127.0.0.1 --allow-private-targets --max-sessions 500 \
    --default-country-code 62 "${DIALECT_FLAGS[@]}" >"$OUT" &
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
echo "wa-server at $BASE, document $SCHEMA_PATH"
curl -fsS --max-time 10 -o /dev/null "$BASE$SCHEMA_PATH" || ci_die "wa-server does not serve $SCHEMA_PATH"
# api METHOD PATH HEADER [BODY]: a JSON request; prints the body, fails on a non-2xx answer.
api() {
    curl -fsS --max-time 20 -X "$1" -H "$3" -H 'content-type: application/json' \
        ${4:+--data "$4"} "$BASE$2" || ci_die "$1 $2 failed"
}
if [ "$DIALECT" != native ]; then
    # The instance (session) the generated requests name: created through the dialect,
    # paired through the sandbox phone (native route), then connected.
    if [ "$DIALECT" = evolution ]; then
        api POST /evolution/instance/create "$AUTH_HEADER" '{"instanceName":"fuzz"}' >/dev/null
        # Logout and delete name this one (schemathesis_evolution.toml).
        api POST /evolution/instance/create "$AUTH_HEADER" '{"instanceName":"fuzz-spare"}' >/dev/null
    else
        api POST /waha/api/sessions "$AUTH_HEADER" '{"name":"fuzz"}' >/dev/null
        # Delete, logout and stop name this one (schemathesis_waha.toml).
        api POST /waha/api/sessions "$AUTH_HEADER" '{"name":"fuzz-spare"}' >/dev/null
    fi
    for _ in $(seq 1 100); do
        curl -fsS --max-time 10 -X POST -H "x-api-key: $KEY" -H 'content-type: application/json' \
            --data '{}' "$BASE/api/sessions/fuzz/sandbox/scan" >/dev/null 2>&1 && break
        sleep 0.2
    done
    for _ in $(seq 1 100); do
        api GET /api/sessions/fuzz "x-api-key: $KEY" | grep -q '"connected"' && break
        sleep 0.2
    done
    api GET /api/sessions/fuzz "x-api-key: $KEY" | grep -q '"connected"' || ci_die "the fuzz session did not connect"
fi
# schemathesis keeps a cache in its working directory: run it in the temporary one.
(cd "$DATA" && SCHEMATHESIS_HOOKS="$HOOKS" "$SCHEMATHESIS" --config-file "$CONFIG" run "$BASE$SCHEMA_PATH" \
    ${CHECKS:+--checks "$CHECKS"} \
    --header "$AUTH_HEADER" \
    "${EXCLUDE[@]}" \
    --max-examples "$MAX_EXAMPLES" \
    --request-timeout 20 \
    --workers 1 \
    --seed 1 \
    --report junit --report-dir "$REPORT_DIR" \
    --generation-database none \
    --no-color)
# The server is still alive and ready after the run.
curl -fsS --max-time 10 "$BASE/ready" >/dev/null || ci_die "wa-server is not ready after the fuzz run"
kill -TERM "$PID"
wait "$PID"
trap - EXIT
rm -rf "$DATA"
echo "schemathesis ($DIALECT): no server errors"
