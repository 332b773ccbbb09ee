#!/usr/bin/env python3
"""The pairing page in a real headless browser (Debian's chromium driven by Playwright).

Starts `wa-server --sandbox` on 127.0.0.1:0 with a fresh data directory, creates a session,
makes a signed pairing link, opens it in chromium and checks: the page shows a QR image
with a countdown, the "simulate scan" button (sandbox phone) links the device, and the page
then shows "Connected" without a reload; a forged link shows the friendly HTML error page;
and a second server whose WhatsApp endpoint is a closed port shows "Cannot reach WhatsApp,
retrying in N s" with the reason. Screenshots go to --out (test artifacts).

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
import socket
import urllib.request

KEY = "browser-test-admin-key-0123456789"


def start_server(binary, data, extra):
    env = dict(os.environ, WA_API_KEY=KEY, RUST_LOG="warn")
    server = subprocess.Popen(
        [binary, "--bind", "127.0.0.1:0", "--data-dir", data] + extra,
        stdout=subprocess.PIPE, env=env, text=True)
    line = server.stdout.readline()
    if not line:
        raise AssertionError(f"wa-server exited before listening (code {server.wait(timeout=10)})")
    return server, json.loads(line)["listening"]


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


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
    data_down = tempfile.mkdtemp(prefix="wa-server-browser-down-")
    server, base = start_server(args.bin, data, ["--sandbox"])
    # A server whose WhatsApp endpoint is a closed port (the upstream is down).
    down, base_down = start_server(args.bin, data_down, [
        "--wa-url", f"ws://127.0.0.1:{closed_port()}/ws/chat",
        "--wa-trust-root", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="])
    try:
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

            # A forged (or expired) link: a friendly page, not raw JSON.
            resp = page.goto(base + "/sessions/browser/pair?token=1900000000.forged", timeout=30000)
            assert resp.status == 401, resp.status
            page.wait_for_selector("#error-page[data-code=invalid_link]", timeout=10000)
            title = page.inner_text("h1")
            assert title == "This link has expired", title
            page.screenshot(path=os.path.join(args.out, "pairing-page-invalid-link.png"))
            print("ok: a forged link shows the HTML error page")

            # WhatsApp unreachable: the reason and the retry countdown, not "Connecting..."
            code, created = api(base_down, "POST", "/api/sessions", {"id": "down"})
            assert code == 201, created
            code, link = api(base_down, "POST", "/api/sessions/down/pair-link?ttl_seconds=600")
            assert code == 200, link
            page.goto(base_down + link["path"], timeout=30000)
            page.wait_for_function(
                "() => document.getElementById('retry').style.display === 'block'"
                " && document.getElementById('retry-text').textContent"
                ".startsWith('Cannot reach WhatsApp, retrying')",
                timeout=30000)
            reason = page.inner_text("#retry-reason")
            assert reason.startswith("Reason: cannot connect"), reason
            assert page.get_attribute("#status", "data-status") == "connecting"
            page.screenshot(path=os.path.join(args.out, "pairing-page-upstream-down.png"))
            print("ok: an unreachable WhatsApp shows the reason and the retry countdown")
            browser.close()
        info = wait_status(base, "browser", "connected")
        assert info["jid"], info
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, "graceful shutdown exits 0"
        down.send_signal(signal.SIGTERM)
        assert down.wait(timeout=30) == 0, "graceful shutdown exits 0"
        print("4 passed, 0 failed")
    finally:
        for proc in (server, down):
            if proc.poll() is None:
                proc.kill()
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(data_down, ignore_errors=True)


if __name__ == "__main__":
    main()
