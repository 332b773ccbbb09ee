#!/usr/bin/env bash
# The pairing page in headless chromium (see browser/pairing_page.py). Installs what it
# needs: Debian's chromium (apt) and Playwright (pip; it drives the system chromium, no
# browser download). Screenshots land in $ARTIFACTS (default target/wa-server-artifacts).
# Uses $WA_SERVER_BIN if set (the Rust wrapper passes its own build), else builds it.
set -euo pipefail
cd "$(dirname "$0")/../.."
ARTIFACTS="${ARTIFACTS:-$PWD/target/wa-server-artifacts}"
if ! command -v chromium >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
python3 -c "import playwright" 2>/dev/null || python3 -m pip install -q playwright
BIN="${WA_SERVER_BIN:-}"
if [ -z "$BIN" ]; then
    cargo build -q -p wa-server --bin wa-server
    BIN="$PWD/target/debug/wa-server"
fi
python3 wa-server/tests/browser/pairing_page.py --bin "$BIN" --out "$ARTIFACTS"
echo "screenshots: $ARTIFACTS/pairing-page-qr.png $ARTIFACTS/pairing-page-connected.png"
