#!/usr/bin/env python3
"""The pairing page in a real headless browser (Debian's chromium driven by Playwright).

Starts `wa-server --sandbox` on 127.0.0.1:0 with a fresh data directory, creates a session,
makes a signed pairing link, opens it in chromium and checks: the page shows a QR image
with a countdown, the "simulate scan" button (sandbox phone) links the device, and the page
then shows "Connected" without a reload; a forged link shows the friendly HTML error page;
and a second server whose WhatsApp endpoint is a closed port shows "Cannot reach WhatsApp,
retrying in N s" with the reason. Then (issue 14, feature 4): the page in each language
(`?lang=` and the browser's Accept-Language), the error pages in the person's language, the
phone-number pairing-code flow (the sandbox phone types the code shown), the operator's
branding, the QR refresh cap (a third server with --qr-max-refreshes 0: the page says the
code expired and offers "new code", which brings a new QR), and axe-core (--axe, pinned by
npm) on every one of those pages: no serious or critical violation. Screenshots and axe reports (axe-NAME.json) go to --out (test artifacts).

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


LANG_WORDS = {
    "en": ("Link a device to WhatsApp", "Open WhatsApp on your phone"),
    "id": ("Tautkan perangkat ke WhatsApp", "Buka WhatsApp di ponsel Anda"),
    "pt-BR": ("Conecte um aparelho ao WhatsApp", "Abra o WhatsApp no seu celular"),
    "es": ("Vincula un dispositivo a WhatsApp", "Abre WhatsApp en tu teléfono"),
}


def axe_check(page, axe_path, out, name):
    """Runs axe-core on the page; saves the violations; fails on serious or critical ones."""
    page.add_script_tag(path=axe_path)
    violations = page.evaluate(
        "async () => (await axe.run(document, { resultTypes: ['violations'] })).violations"
        ".map(v => ({ id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ')) }))")
    with open(os.path.join(out, f"axe-{name}.json"), "w") as f:
        json.dump(violations, f, indent=2)
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not serious, f"axe-core: serious violations on {name}: {json.dumps(serious, indent=2)}"
    print(f"ok: axe-core finds no serious violation on {name} ({len(violations)} minor)")


def wait_qr(page):
    page.wait_for_function(
        "() => { const i = document.getElementById('qr');"
        " return i && i.style.display === 'block' && i.complete && i.naturalWidth > 100; }",
        timeout=30000)


def control(url, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, json.loads(resp.read() or b"null")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--axe", required=True, help="path of axe.min.js (axe-core)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("chromium not installed")
    from playwright.sync_api import sync_playwright

    data = tempfile.mkdtemp(prefix="wa-server-browser-")
    data_down = tempfile.mkdtemp(prefix="wa-server-browser-down-")
    data_capped = tempfile.mkdtemp(prefix="wa-server-browser-capped-")
    server, base = start_server(args.bin, data, [
        "--sandbox", "--brand-name", "Acme CRM", "--brand-color", "#0b5394"])
    # A server whose WhatsApp endpoint is a closed port (the upstream is down).
    down, base_down = start_server(args.bin, data_down, [
        "--wa-url", f"ws://127.0.0.1:{closed_port()}/ws/chat",
        "--wa-trust-root", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="])
    # A server whose sessions show one QR and no refresh (--qr-max-refreshes 0): its
    # session stops when that QR expires (the sandbox's first QR window, 60 s), by the time
    # the other pages are done, and the page then asks for a new code.
    capped, base_capped = start_server(args.bin, data_capped, ["--sandbox", "--qr-max-refreshes", "0"])
    try:
        code, created = api(base_capped, "POST", "/api/sessions", {"id": "capped"})
        assert code == 201, created
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
            axe_check(page, args.axe, args.out, "qr")
            page.click("#simulate")
            page.wait_for_selector("#connected", state="visible", timeout=30000)
            assert page.get_attribute("#status", "data-status") == "connected"
            assert not page.is_visible("#qr")
            text = page.inner_text("#connected")
            assert text.startswith("Connected"), text
            page.screenshot(path=os.path.join(args.out, "pairing-page-connected.png"))
            print("ok: the page shows 'connected' after the sandbox scan")
            axe_check(page, args.axe, args.out, "connected")

            # A forged (or expired) link: a friendly page, not raw JSON.
            resp = page.goto(base + "/sessions/browser/pair?token=1900000000.forged", timeout=30000)
            assert resp.status == 401, resp.status
            page.wait_for_selector("#error-page[data-code=invalid_link]", timeout=10000)
            title = page.inner_text("h1")
            assert title == "This link has expired", title
            page.screenshot(path=os.path.join(args.out, "pairing-page-invalid-link.png"))
            print("ok: a forged link shows the HTML error page")
            axe_check(page, args.axe, args.out, "error-invalid-link")

            # Each language, by ?lang= (the browser asks for English).
            code, created = api(base, "POST", "/api/sessions", {"id": "langs"})
            assert code == 201, created
            wait_status(base, "langs", "qr")
            code, link = api(base, "POST", "/api/sessions/langs/pair-link?ttl_seconds=600")
            assert code == 200, link
            for lang, (heading, step) in LANG_WORDS.items():
                page.goto(base + link["path"] + "&lang=" + lang, timeout=30000)
                wait_qr(page)
                assert page.get_attribute("html", "lang") == lang, lang
                # Branded by the server flags: the heading names the operator.
                h1 = page.inner_text("h1")
                assert "Acme CRM" in h1, h1
                assert step in page.inner_text("#steps"), lang
                assert page.get_attribute("nav a[aria-current]", "data-lang") == lang
                page.screenshot(path=os.path.join(args.out, f"pairing-page-lang-{lang}.png"))
                axe_check(page, args.axe, args.out, f"lang-{lang}")
            print("ok: the page speaks en, id, pt-BR and es (?lang=)")

            # The browser's language (Accept-Language) without ?lang=, and the error pages.
            for locale, lang in (("id-ID", "id"), ("pt-BR", "pt-BR"), ("es-MX", "es")):
                ctx = browser.new_context(locale=locale, viewport={"width": 600, "height": 820})
                p2 = ctx.new_page()
                p2.goto(base + link["path"], timeout=30000)
                wait_qr(p2)
                assert p2.get_attribute("html", "lang") == lang, (locale, p2.get_attribute("html", "lang"))
                if lang == "id":
                    resp = p2.goto(base + "/sessions/langs/pair?token=1900000000.forged", timeout=30000)
                    assert resp.status == 401
                    p2.wait_for_selector("#error-page[data-code=invalid_link]", timeout=10000)
                    assert p2.inner_text("h1") == "Tautan ini sudah kedaluwarsa", p2.inner_text("h1")
                    p2.screenshot(path=os.path.join(args.out, "pairing-page-error-invalid-link-id.png"))
                    axe_check(p2, args.axe, args.out, "error-invalid-link-id")
                if lang == "es":
                    resp = p2.goto(base + "/sessions/nosuch/pair", timeout=30000)
                    assert resp.status in (401, 404), resp.status
                    p2.wait_for_selector("#error-page", timeout=10000)
                    resp = p2.goto(base + "/sessions/langs/pair/nothing-here", timeout=30000)
                    assert resp.status == 404, resp.status
                    p2.wait_for_selector("#error-page[data-code=not_found]", timeout=10000)
                    assert p2.inner_text("h1") == "Página no encontrada", p2.inner_text("h1")
                    p2.screenshot(path=os.path.join(args.out, "pairing-page-error-not-found-es.png"))
                    axe_check(p2, args.axe, args.out, "error-not-found-es")
                ctx.close()
            print("ok: Accept-Language picks the language; error pages follow it")
            resp = page.goto(base + "/sessions/langs/pair", timeout=30000)
            assert resp.status == 401, resp.status
            page.wait_for_selector("#error-page[data-code=auth_required]", timeout=10000)
            page.screenshot(path=os.path.join(args.out, "pairing-page-error-no-token.png"))
            axe_check(page, args.axe, args.out, "error-no-token")
            print("ok: a link without its token shows the HTML error page")

            # Per-session branding over the server's, with a logo.
            code, body = api(base, "PATCH", "/api/sessions/langs", {"settings": {"branding": {
                "name": "Toko Budi", "color": "#6a1b9a",
                "logo_url": "data:image/gif;base64,R0lGODlhAQABAAAAACw="}}})
            assert code == 422, body  # data: URLs are refused (http/https only)
            code, body = api(base, "PATCH", "/api/sessions/langs", {"settings": {"branding": {
                "name": "Toko Budi", "color": "#6a1b9a"}}})
            assert code == 200, body
            page.goto(base + link["path"] + "&lang=id", timeout=30000)
            wait_qr(page)
            assert "Toko Budi" in page.inner_text("h1")
            accent = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()")
            assert accent == "#6a1b9a", accent
            page.screenshot(path=os.path.join(args.out, "pairing-page-branded.png"))
            axe_check(page, args.axe, args.out, "branded")
            print("ok: per-session branding")

            # The pairing-code flow: the person types their number, the page shows the code,
            # the (sandbox) phone types it, the page says connected.
            code, sandbox = api(base, "GET", "/api/sandbox")
            assert code == 200, sandbox
            number = "15550004321"
            control(sandbox["control_url"], "POST", "/accounts", {"phone": number})
            code, created = api(base, "POST", "/api/sessions", {"id": "bycode"})
            assert code == 201, created
            wait_status(base, "bycode", "qr")
            code, link = api(base, "POST", "/api/sessions/bycode/pair-link?ttl_seconds=600")
            assert code == 200, link
            page.goto(base + link["path"] + "&lang=pt-BR", timeout=30000)
            wait_qr(page)
            page.wait_for_selector("#phone-section", state="visible", timeout=10000)
            page.fill("#phone", "+1 555 000 4321")
            page.screenshot(path=os.path.join(args.out, "pairing-page-code-form.png"))
            axe_check(page, args.axe, args.out, "code-form")
            page.click("#phone-submit")
            page.wait_for_selector("#pair-code-box", state="visible", timeout=30000)
            pair_code = page.inner_text("#pair-code").strip()
            assert len(pair_code) == 9 and pair_code[4] == "-", pair_code
            page.screenshot(path=os.path.join(args.out, "pairing-page-code-shown.png"))
            axe_check(page, args.axe, args.out, "code-shown")
            control(sandbox["control_url"], "POST", f"/accounts/{number}/code", {"code": pair_code})
            page.wait_for_selector("#connected", state="visible", timeout=30000)
            assert page.get_attribute("#status", "data-status") == "connected"
            page.screenshot(path=os.path.join(args.out, "pairing-page-code-connected.png"))
            print("ok: the pairing-code flow links the device from the page")

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
            axe_check(page, args.axe, args.out, "upstream-down")

            # The QR refresh cap: the session stopped its QR loop; the page says so and
            # offers "new code", which starts a new round of QR codes.
            stopped = wait_status(base_capped, "capped", "stopped", timeout=150)
            assert stopped["last_error"].startswith("qr_refresh_limit"), stopped
            code, link = api(base_capped, "POST", "/api/sessions/capped/pair-link?ttl_seconds=600")
            assert code == 200, link
            page.goto(base_capped + link["path"] + "&lang=en", timeout=30000)
            page.wait_for_selector("#status[data-qr-limit=true][data-status=stopped]", timeout=30000)
            page.wait_for_selector("#restart", state="visible", timeout=10000)
            assert not page.is_visible("#qr")
            assert page.inner_text("#restart").strip() != ""
            page.screenshot(path=os.path.join(args.out, "pairing-page-qr-limit.png"))
            axe_check(page, args.axe, args.out, "qr-limit")
            page.click("#restart")
            wait_qr(page)
            assert page.get_attribute("#status", "data-status") == "qr"
            print("ok: at the QR refresh cap the page asks for a new code, which brings a new QR")
            browser.close()
        info = wait_status(base, "browser", "connected")
        assert info["jid"], info
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, "graceful shutdown exits 0"
        down.send_signal(signal.SIGTERM)
        assert down.wait(timeout=30) == 0, "graceful shutdown exits 0"
        capped.send_signal(signal.SIGTERM)
        assert capped.wait(timeout=30) == 0, "graceful shutdown exits 0"
        print("10 passed, 0 failed")
    finally:
        for proc in (server, down, capped):
            if proc.poll() is None:
                proc.kill()
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(data_down, ignore_errors=True)
        shutil.rmtree(data_capped, ignore_errors=True)


if __name__ == "__main__":
    main()
