#!/usr/bin/env python3
"""The pairing page in a real headless browser (Debian's chromium driven by Playwright).

Starts `wa-server --sandbox` on 127.0.0.1:0 with a fresh data directory, creates a session,
makes a signed pairing link, opens it in chromium and checks: the page shows a QR image
with a countdown, the "simulate scan" button (sandbox phone) links the device, and the page
then shows "Connected" without a reload. Screenshots go to --out (test artifacts).

Run by wa-server/tests/pairing_page.sh (which installs chromium and playwright). Every wait
is bounded; any failure raises, the script exits non-zero and the server is killed.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

KEY = "browser-test-admin-key-0123456789"


def api(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("x-api-key", KEY)
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_status(base, sid, want, timeout=60):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        code, last = api(base, "GET", f"/api/sessions/{sid}")
        if code == 200 and last.get("status") == want:
            return last
        time.sleep(0.1)
    raise AssertionError(f"session {sid} never reached {want}: {last}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("chromium not installed")
    from playwright.sync_api import sync_playwright

    data = tempfile.mkdtemp(prefix="wa-server-browser-")
    env = dict(os.environ, WA_API_KEY=KEY, RUST_LOG="warn")
    server = subprocess.Popen(
        [args.bin, "--sandbox", "--bind", "127.0.0.1:0", "--data-dir", data],
        stdout=subprocess.PIPE, env=env, text=True)
    try:
        line = server.stdout.readline()
        if not line:
            raise AssertionError(f"wa-server exited before listening (code {server.wait(timeout=10)})")
        base = json.loads(line)["listening"]
        code, created = api(base, "POST", "/api/sessions", {"id": "browser"})
        assert code == 201, created
        wait_status(base, "browser", "qr")
        code, link = api(base, "POST", "/api/sessions/browser/pair-link?ttl_seconds=600")
        assert code == 200, link
        url = base + link["path"]
        with sync_playwright() as p:
            # Playwright already passes --no-sandbox (we may run as root), --no-first-run and
            # --disable-background-networking; the machine has no network beyond loopback.
            browser = p.chromium.launch(
                executable_path=chromium, headless=True, timeout=60000,
                args=["--disable-gpu", "--disable-quic", "--disable-component-update",
                      "--disable-sync"])
            page = browser.new_page(viewport={"width": 600, "height": 820})
            page.goto(url, timeout=30000)
            page.wait_for_function(
                "() => { const i = document.getElementById('qr');"
                " return i && i.style.display === 'block' && i.complete && i.naturalWidth > 100; }",
                timeout=30000)
            page.wait_for_function(
                "() => document.getElementById('countdown').textContent.startsWith('Refreshes in')",
                timeout=10000)
            assert page.get_attribute("#status", "data-status") == "qr"
            page.screenshot(path=os.path.join(args.out, "pairing-page-qr.png"))
            print("ok: the page shows a QR image with a countdown")
            page.click("#simulate")
            page.wait_for_selector("#connected", state="visible", timeout=30000)
            assert page.get_attribute("#status", "data-status") == "connected"
            assert not page.is_visible("#qr")
            text = page.inner_text("#connected")
            assert text.startswith("Connected"), text
            page.screenshot(path=os.path.join(args.out, "pairing-page-connected.png"))
            print("ok: the page shows 'connected' after the sandbox scan")
            browser.close()
        info = wait_status(base, "browser", "connected")
        assert info["jid"], info
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, "graceful shutdown exits 0"
        print("2 passed, 0 failed")
    finally:
        if server.poll() is None:
            server.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
