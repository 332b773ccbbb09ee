//! The session resource (issue 14, feature 3) and the pairing page for customers (feature 4)
//! against the embedded sandbox: name, metadata and settings at create time, PUT and PATCH,
//! all kept across a server restart; the paged, filtered list; `is_connected`, `me` and
//! counters; the forced QR (on an unpaired and on a paired session); the session's
//! `webhook_events` filter and `reject_calls`; the pairing page in four languages with branding, its
//! phone-number form, and the QR refresh cap that stops a session's QR loop server-side.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Api, Receiver, eventually, serve};
use wa_sandbox::{Sandbox, SandboxConfig};
use wa_server::{AppState, Branding, ServerConfig, Upstream};

const KEY: &str = "session-resource-admin-key-0123456789";

fn config(dir: &std::path::Path) -> ServerConfig {
    support::sandbox_config(dir, KEY)
}

/// A request with the admin key and an optional JSON body: status, JSON, headers.
async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .header("x-api-key", KEY);
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
    )
}

/// GET a page with headers: status, body.
async fn page(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = reqwest::Client::new().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

#[tokio::test]
async fn name_metadata_settings_list_force_qr_and_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = AppState::start(config(dir.path())).await.expect("start");
    let base = serve(&state).await;
    let api = Api::new(base.clone(), Some(KEY));
    let receiver = Receiver::start(false).await;

    // Create with name, metadata, settings (webhooks get only `connection` events).
    let (status, created) = api
        .post(
            "/api/sessions",
            &json!({
                "id": "crm-1",
                "name": "Toko Budi",
                "metadata": { "crm_id": 42, "tags": ["vip"] },
                "settings": { "ignore_groups": true, "reject_calls": true,
                              "webhook_events": ["connection"],
                              "branding": { "name": "Toko Budi", "color": "#123456" } },
                "webhooks": [{ "url": receiver.url() }]
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let s = &created["session"];
    assert_eq!(s["name"], "Toko Budi");
    assert_eq!(s["metadata"]["crm_id"], 42);
    assert_eq!(s["settings"]["ignore_groups"], true);
    assert_eq!(s["settings"]["reject_calls"], true);
    assert_eq!(s["settings"]["auto_download_media"], true, "default");
    assert_eq!(s["is_connected"], false);
    assert!(s["me"].is_null());
    assert_eq!(s["counters"]["messages_sent"], 0);

    // Refused: bad name, oversized metadata, unknown event type, bad colour, unknown field.
    for (body, code) in [
        (json!({ "name": "" }), "invalid_body"),
        (
            json!({ "metadata": { "x": "y".repeat(9000) } }),
            "invalid_body",
        ),
        (
            json!({ "settings": { "webhook_events": ["nope"] } }),
            "invalid_body",
        ),
        (
            json!({ "settings": { "branding": { "color": "red" } } }),
            "invalid_body",
        ),
        (
            json!({ "settings": { "auto_reply": true } }),
            "invalid_body",
        ),
    ] {
        let (status, err, _) = call(
            &base,
            reqwest::Method::PATCH,
            "/api/sessions/crm-1",
            Some(&body),
        )
        .await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (422, Some(code)),
            "{body}"
        );
    }

    // PATCH merges settings, replaces metadata, keeps what is absent.
    let (status, patched, _) = call(
        &base,
        reqwest::Method::PATCH,
        "/api/sessions/crm-1",
        Some(&json!({ "metadata": { "crm_id": 43 }, "settings": { "auto_mark_read": true } })),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["name"], "Toko Budi");
    assert_eq!(patched["metadata"], json!({ "crm_id": 43 }));
    assert_eq!(patched["settings"]["auto_mark_read"], true);
    assert_eq!(patched["settings"]["ignore_groups"], true, "merged");

    // Webhooks got `connection` events only (the session's filter), never `qr`.
    api.wait_status("crm-1", "qr").await;
    eventually("a connection event", || {
        receiver
            .received()
            .iter()
            .any(|r| r.envelope["type"] == "connection")
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        receiver
            .received()
            .iter()
            .all(|r| r.envelope["type"] == "connection"),
        "{:?}",
        receiver
            .received()
            .iter()
            .map(|r| r.envelope["type"].clone())
            .collect::<Vec<_>>()
    );

    // PUT replaces all three.
    let (status, put, _) = call(
        &base,
        reqwest::Method::PUT,
        "/api/sessions/crm-1",
        Some(
            &json!({ "name": "Toko Budi Jaya", "metadata": { "crm_id": 44 },
                      "settings": { "auto_download_media": false, "reject_calls": true } }),
        ),
    )
    .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["name"], "Toko Budi Jaya");
    assert_eq!(put["settings"]["ignore_groups"], false, "reset by PUT");
    assert_eq!(put["settings"]["auto_download_media"], false);

    // The list: pages of 2 with a cursor, and a status filter.
    for id in ["crm-2", "crm-3", "crm-4"] {
        let (status, _) = api.post("/api/sessions", &json!({ "id": id })).await;
        assert_eq!(status, 201);
    }
    let (status, page1, headers) =
        call(&base, reqwest::Method::GET, "/api/sessions?limit=2", None).await;
    assert_eq!(status, 200);
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|s| s["id"].as_str().expect("id").to_owned())
            .collect()
    };
    assert_eq!(ids(&page1), ["crm-1", "crm-2"]);
    let cursor = headers["x-next-cursor"]
        .to_str()
        .expect("cursor")
        .to_owned();
    let (_, page2, headers) = call(
        &base,
        reqwest::Method::GET,
        &format!("/api/sessions?limit=2&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(ids(&page2), ["crm-3", "crm-4"]);
    assert!(headers.get("x-next-cursor").is_none(), "last page");
    for id in ["crm-2", "crm-3", "crm-4"] {
        api.wait_status(id, "qr").await;
    }
    let (_, qr_only, _) = call(&base, reqwest::Method::GET, "/api/sessions?status=qr", None).await;
    assert_eq!(ids(&qr_only).len(), 4);
    let (_, none, _) = call(
        &base,
        reqwest::Method::GET,
        "/api/sessions?status=connected",
        None,
    )
    .await;
    assert!(ids(&none).is_empty());
    let (status, _, _) = call(&base, reqwest::Method::GET, "/api/sessions?limit=0", None).await;
    assert_eq!(status, 400);
    let (status, _, _) = call(
        &base,
        reqwest::Method::GET,
        "/api/sessions?status=sleeping",
        None,
    )
    .await;
    assert_eq!(status, 400);

    // Forced QR on an unpaired session: a new QR, different from the one shown.
    let (_, before) = api.get("/api/sessions/crm-1/qr").await;
    let (status, forced) = api.post("/api/sessions/crm-1/qr/force", &json!({})).await;
    assert_eq!(status, 200, "{forced}");
    assert_ne!(forced["qr"], before["qr"]);
    assert!(forced["png_base64"].as_str().is_some_and(|p| !p.is_empty()));

    // Paired: `is_connected`, `me`; then a forced QR logs it out and shows a fresh QR.
    let (status, scan) = api
        .post("/api/sessions/crm-1/sandbox/scan", &json!({}))
        .await;
    assert_eq!(status, 200, "{scan}");
    let info = api.wait_status("crm-1", "connected").await;
    assert_eq!(info["is_connected"], true);
    let phone = scan["phone"].as_str().expect("phone");
    assert_eq!(info["me"]["phone"], phone);
    assert!(
        info["me"]["jid"]
            .as_str()
            .is_some_and(|j| j.starts_with(phone))
    );
    assert!(
        info["counters"]["qr_codes"]
            .as_u64()
            .is_some_and(|n| n >= 2)
    );
    let (status, forced) = api
        .post("/api/sessions/crm-1/qr/force?wait_seconds=30", &json!({}))
        .await;
    assert_eq!(status, 200, "{forced}");
    let info = api.wait_status("crm-1", "qr").await;
    assert!(info["me"].is_null(), "logged out: {info}");

    // Restart the server: name, metadata and settings are still there.
    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");
    drop(state);
    // The data directory is free once every handle of the old state is gone (the HTTP
    // server's router and the background tasks end after the shutdown).
    let mut tries = 0;
    let state = loop {
        match AppState::start(config(dir.path())).await {
            Ok(state) => break state,
            Err(wa_server::StartError::DataDirInUse { .. }) if tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("restart: {e:?}"),
        }
    };
    let base = serve(&state).await;
    let (status, again, _) = call(&base, reqwest::Method::GET, "/api/sessions/crm-1", None).await;
    assert_eq!(status, 200);
    assert_eq!(again["name"], "Toko Budi Jaya");
    assert_eq!(again["metadata"], json!({ "crm_id": 44 }));
    assert_eq!(again["settings"]["auto_download_media"], false);
    assert_eq!(again["settings"]["reject_calls"], true);
    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");
}

#[tokio::test]
async fn pairing_page_languages_branding_and_phone_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config(dir.path());
    config.branding = Branding {
        name: Some("Acme CRM".to_owned()),
        logo_url: Some("https://cdn.example.com/acme.png".to_owned()),
        color: None,
    };
    let state = AppState::start(config).await.expect("start");
    let base = serve(&state).await;
    let api = Api::new(base.clone(), Some(KEY));
    let (status, _) = api
        .post(
            "/api/sessions",
            &json!({ "id": "page", "settings": { "branding": { "color": "#0b5394" } } }),
        )
        .await;
    assert_eq!(status, 201);
    api.wait_status("page", "qr").await;
    let (_, link) = api.post("/api/sessions/page/pair-link", &json!({})).await;
    let url = format!("{base}{}", link["path"].as_str().expect("path"));

    for (query, header, lang, words) in [
        ("", "", "en", "Open WhatsApp on your phone"),
        ("", "id-ID,id;q=0.9", "id", "Buka WhatsApp di ponsel Anda"),
        (
            "",
            "pt-BR,pt;q=0.9,en;q=0.5",
            "pt-BR",
            "Abra o WhatsApp no seu celular",
        ),
        ("", "es-419,es;q=0.9", "es", "Abre WhatsApp en tu teléfono"),
        ("&lang=id", "es", "id", "Pindai kode QR"),
        ("&lang=pt-BR", "", "pt-BR", "Escaneie o código QR"),
    ] {
        let headers: Vec<(&str, &str)> = if header.is_empty() {
            vec![]
        } else {
            vec![("accept-language", header)]
        };
        let (status, html) = page(&format!("{url}{query}"), &headers).await;
        assert_eq!(status, 200);
        assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{lang}");
        assert!(html.contains(words), "{lang}: {words}");
        // Server branding (name, logo) with the session's colour.
        assert!(html.contains("Acme CRM"));
        assert!(html.contains("src=\"https://cdn.example.com/acme.png\""));
        assert!(html.contains("--accent: #0b5394"));
        assert!(!html.contains("{{"), "every placeholder filled");
    }

    // The error page speaks the language too.
    let (status, html) = page(
        &format!("{base}/sessions/page/pair?token=1900000000.forged"),
        &[("accept", "text/html"), ("accept-language", "pt-BR")],
    )
    .await;
    assert_eq!(status, 401);
    assert!(html.contains("Este link expirou"), "{html}");

    // The phone-number form of the page, with the link's token only.
    let sb = state.sandbox().expect("sandbox");
    let phone = sb.create_account("15550009876").expect("account");
    let token = url.split("token=").nth(1).expect("token");
    let resp = reqwest::Client::new()
        .post(format!("{base}/sessions/page/pair/code?token={token}"))
        .header("content-type", "application/json")
        .body(json!({ "phone": "+1 555 000 9876" }).to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    let code: Value = serde_json::from_slice(&resp.bytes().await.expect("body")).expect("json");
    let code = code["code"].as_str().expect("code").to_owned();
    phone.enter_code(&code).expect("the phone accepts the code");
    api.wait_status("page", "connected").await;
    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");
}

#[tokio::test]
async fn the_qr_loop_stops_at_the_refresh_cap_until_a_new_code_is_asked_for() {
    // A sandbox with short QR windows: 1 s for the first, 1 s for each refresh.
    let sb = Sandbox::start(
        SandboxConfig::default()
            .with_seed(3)
            .with_qr_windows(Duration::from_secs(1), Duration::from_secs(1)),
    )
    .await
    .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config(dir.path());
    config.upstream = Upstream::Custom {
        url: sb.ws_url().to_owned(),
        trust_root: sb.trust_root(),
    };
    config.qr_max_refreshes = Some(1);
    let state = AppState::start(config).await.expect("start");
    let base = serve(&state).await;
    let api = Api::new(base.clone(), Some(KEY));
    let (status, _) = api.post("/api/sessions", &json!({ "id": "capped" })).await;
    assert_eq!(status, 201);
    // First QR + 1 refresh, then the session stops by itself.
    let stopped = api.wait_status("capped", "stopped").await;
    assert!(
        stopped["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("qr_refresh_limit")),
        "{stopped}"
    );
    assert_eq!(stopped["counters"]["qr_codes"], 2);
    // It stays stopped: no more QRs are issued.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, still) = api.get("/api/sessions/capped").await;
    assert_eq!(still["status"], "stopped");
    assert_eq!(still["counters"]["qr_codes"], 2);
    // The page's "new code" button (restart) starts a new round.
    let (_, link) = api.post("/api/sessions/capped/pair-link", &json!({})).await;
    let path = link["path"].as_str().expect("path");
    let restart = path.replacen("/pair?", "/pair/restart?", 1);
    let resp = reqwest::Client::new()
        .post(format!("{base}{restart}"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 202);
    api.wait_status("capped", "qr").await;
    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");
}

#[tokio::test]
async fn the_reject_calls_setting_rejects_calls_of_that_session_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No --auto-reject-calls: only the session's setting rejects.
    let state = AppState::start(config(dir.path())).await.expect("start");
    let base = serve(&state).await;
    let api = Api::new(base, Some(KEY));
    let hook = Receiver::start(false).await;
    let sb = state.sandbox().expect("sandbox");
    const CALLER: &str = "15550007777";
    sb.create_account(CALLER).expect("caller account");
    let mut users = Vec::new();
    for (id, reject) in [("rejects", true), ("rings", false)] {
        let (status, created) = api
            .post(
                "/api/sessions",
                &json!({ "id": id, "settings": { "reject_calls": reject },
                         "webhooks": [{ "url": hook.url(), "events": ["call"] }] }),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        api.wait_status(id, "qr").await;
        let (status, scan) = api
            .post(&format!("/api/sessions/{id}/sandbox/scan"), &json!({}))
            .await;
        assert_eq!(status, 200, "{scan}");
        let info = api.wait_status(id, "connected").await;
        users.push(info["me"]["phone"].as_str().expect("phone").to_owned());
    }
    for (user, rejected) in users.iter().zip([true, false]) {
        let call_id = sb
            .router()
            .place_call(CALLER, user, false)
            .expect("call placed");
        let call = eventually("the call webhook", || {
            hook.received()
                .into_iter()
                .map(|r| r.envelope)
                .find(|e| e["type"] == "call" && e["data"]["call_id"] == call_id.as_str())
        })
        .await;
        assert_eq!(call["data"]["auto_rejected"], rejected, "{call}");
    }
    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");
}
