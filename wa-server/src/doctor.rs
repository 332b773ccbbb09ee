//! Start-up checks ("doctor"): the versions in use, the data directory's ownership,
//! permissions and writability, and whether the WhatsApp endpoint is reachable. `wa-server`
//! logs them at every start (a failed check is a warning, never fatal) and prints them as
//! JSON with `--doctor` (exit status 1 when a check failed).

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{ServerConfig, Upstream};

/// The WebSocket URL `config` connects sessions to, when known before start (`None` for
/// the embedded sandbox, which picks its port when it starts).
pub fn configured_upstream(config: &ServerConfig) -> Option<String> {
    match &config.upstream {
        Upstream::WhatsApp => Some(wa_engine::DEFAULT_URL.to_owned()),
        Upstream::Custom { url, .. } => Some(url.clone()),
        #[cfg(feature = "sandbox")]
        Upstream::Sandbox => None,
    }
}

/// How long the reachability check waits for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `version`, `data_dir` or `upstream`.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was found, in words (no secrets).
    pub detail: String,
}

/// Every check, in order.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// True when every check passed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// Logs each check: `info` when it passed, `warn` when not.
    pub fn log(&self) {
        for c in &self.checks {
            if c.ok {
                tracing::info!(check = c.name, "doctor: {}", c.detail);
            } else {
                tracing::warn!(check = c.name, "doctor: {}", c.detail);
            }
        }
    }
}

/// The WhatsApp Web version the sessions announce (`UserAgent.appVersion`, wa-engine's
/// default device), dotted.
pub fn whatsapp_version() -> String {
    let [a, b, c] = wa_engine::conn::DeviceConfig::default().app_version;
    format!("{a}.{b}.{c}")
}

/// Runs the checks for `config`; `upstream_url` is the WebSocket URL sessions connect to
/// (`None` when it is not known yet: the embedded sandbox before it started).
pub async fn run(config: &ServerConfig, upstream_url: Option<&str>) -> Report {
    let mut checks = vec![Check {
        name: "version",
        ok: true,
        detail: format!(
            "wa-server {}, announcing WhatsApp Web {}",
            env!("CARGO_PKG_VERSION"),
            config
                .wa_version
                .map_or_else(whatsapp_version, |[a, b, c]| format!("{a}.{b}.{c}"))
        ),
    }];
    let dir = config.data_dir.clone();
    checks.push(
        tokio::task::spawn_blocking(move || data_dir(&dir))
            .await
            .unwrap_or_else(|_| Check {
                name: "data_dir",
                ok: false,
                detail: "the check task failed".to_owned(),
            }),
    );
    checks.push(match upstream_url {
        Some(url) => upstream(url).await,
        None => Check {
            name: "upstream",
            ok: true,
            detail: "embedded sandbox (started with the server)".to_owned(),
        },
    });
    Report { checks }
}

/// Owner, mode and writability of the data directory.
fn data_dir(dir: &Path) -> Check {
    let name = "data_dir";
    let shown = dir.display();
    let meta = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => {
            return Check {
                name,
                ok: false,
                detail: format!("{shown} is not a directory"),
            };
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Check {
                name,
                ok: true,
                detail: format!("{shown} does not exist yet: the server creates it (mode 0700)"),
            };
        }
        Err(e) => {
            return Check {
                name,
                ok: false,
                detail: format!("{shown}: {e}"),
            };
        }
    };
    let mut problems = Vec::new();
    let mut facts = Vec::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let mode = meta.permissions().mode() & 0o777;
        facts.push(format!("mode {mode:04o}"));
        if mode & 0o077 != 0 {
            problems.push(format!(
                "mode {mode:04o} lets other users in (want 0700: it holds secrets)"
            ));
        }
        let me = rustix::process::geteuid().as_raw();
        facts.push(format!("owner uid {}", meta.uid()));
        if meta.uid() != me {
            problems.push(format!(
                "owned by uid {}, the server runs as uid {me}",
                meta.uid()
            ));
        }
    }
    #[cfg(not(unix))]
    drop(meta);
    let probe = dir.join(format!(".doctor-{}", std::process::id()));
    match std::fs::write(&probe, b"probe") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            facts.push("writable".to_owned());
        }
        Err(e) => problems.push(format!("not writable: {e}")),
    }
    if problems.is_empty() {
        Check {
            name,
            ok: true,
            detail: format!("{shown}: {}", facts.join(", ")),
        }
    } else {
        Check {
            name,
            ok: false,
            detail: format!("{shown}: {}", problems.join("; ")),
        }
    }
}

/// Whether a TCP connection to the endpoint of `url` opens in time.
async fn upstream(url: &str) -> Check {
    let name = "upstream";
    let Some((host, port)) = host_port(url) else {
        return Check {
            name,
            ok: false,
            detail: "the WhatsApp endpoint URL does not parse".to_owned(),
        };
    };
    let started = Instant::now();
    let target = format!("{host}:{port}");
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect(target.as_str()),
    )
    .await
    {
        Ok(Ok(tcp)) => {
            let peer = tcp
                .peer_addr()
                .map_or_else(|_| String::new(), |a| format!(" ({})", a.ip()));
            Check {
                name,
                ok: true,
                detail: format!(
                    "WhatsApp endpoint {target}{peer} reachable in {} ms",
                    started.elapsed().as_millis()
                ),
            }
        }
        Ok(Err(e)) => Check {
            name,
            ok: false,
            detail: format!(
                "cannot reach the WhatsApp endpoint {target}: {e} (sessions will retry)"
            ),
        },
        Err(_) => Check {
            name,
            ok: false,
            detail: format!(
                "cannot reach the WhatsApp endpoint {target}: no answer in {} s (sessions will retry)",
                CONNECT_TIMEOUT.as_secs()
            ),
        },
    }
}

/// Host and port of a `ws://` or `wss://` URL.
fn host_port(url: &str) -> Option<(String, u16)> {
    let url = reqwest::Url::parse(url).ok()?;
    let default = match url.scheme() {
        "wss" | "https" => 443,
        "ws" | "http" => 80,
        _ => return None,
    };
    let host = url.host_str()?.to_owned();
    Some((host, url.port().unwrap_or(default)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_give_host_and_port() {
        assert_eq!(
            host_port(wa_engine::DEFAULT_URL),
            Some(("web.whatsapp.com".to_owned(), 443))
        );
        assert_eq!(
            host_port("ws://127.0.0.1:5222/ws/chat"),
            Some(("127.0.0.1".to_owned(), 5222))
        );
        assert_eq!(host_port("ftp://x/"), None);
    }

    #[test]
    fn the_announced_version_is_dotted() {
        assert_eq!(whatsapp_version().split('.').count(), 3);
    }
}
