#!/usr/bin/env bash
# The pairing page in headless chromium (see browser/pairing_page.py). Installs what it
# needs (ci_tools.sh): Debian's chromium (apt) and Playwright (pinned, in a venv under
# target/ci-tools; it drives the system chromium, no browser download).
# Screenshots: $ARTIFACTS/pairing-page-*.png (QR, connected, each language, the error pages,
# the upstream-down state, the pairing-code flow, the QR refresh cap) and axe-core reports $ARTIFACTS/axe-*.json
# (default ARTIFACTS=target/artifacts); axe-core is pinned in browser/package-lock.json. Uses $WA_SERVER_BIN if set (the Rust wrapper
# tests/scripts.rs passes its own build), else builds it.
set -euo pipefail
cd "$(dirname "$0")/../.."
source wa-server/tests/ci_tools.sh
ARTIFACTS="${ARTIFACTS:-$PWD/target/artifacts}"
mkdir -p "$ARTIFACTS"
SHOTS="pairing-page-qr.png pairing-page-connected.png pairing-page-invalid-link.png pairing-page-upstream-down.png
pairing-page-lang-en.png pairing-page-lang-id.png pairing-page-lang-pt-BR.png pairing-page-lang-es.png
pairing-page-error-no-token.png pairing-page-error-invalid-link-id.png pairing-page-error-not-found-es.png
pairing-page-code-form.png pairing-page-code-shown.png pairing-page-code-connected.png pairing-page-branded.png
pairing-page-qr-limit.png"
for shot in $SHOTS; do rm -f "$ARTIFACTS/$shot"; done
ensure_chromium
PYTHON="$(ensure_venv)"
AXE="$(ensure_axe)"
BIN="${WA_SERVER_BIN:-}"
if [ -z "$BIN" ]; then
    cargo build -q -p wa-server --bin wa-server
    BIN="$PWD/target/debug/wa-server"
fi
rm -f "$ARTIFACTS"/axe-*.json
"$PYTHON" wa-server/tests/browser/pairing_page.py --bin "$BIN" --out "$ARTIFACTS" --axe "$AXE"
for shot in $SHOTS; do
    [ -s "$ARTIFACTS/$shot" ] || ci_die "screenshot $ARTIFACTS/$shot is missing"
done
echo "screenshots in $ARTIFACTS: $SHOTS"
