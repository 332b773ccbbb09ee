//! Runnable examples that embed wa-engine; see `examples/README.md`.
//!
//! This library holds the little the examples share: the in-process sandbox they use by
//! default ([`OfflineServer`]), where they keep their files ([`DataDir`]), terminal QR
//! rendering ([`render_qr`]), and for the messaging examples the common command-line
//! options ([`ConnectArgs`]), a linked and connected device ([`connect_linked`]), simulated
//! correspondents in the sandbox ([`SimulatedPeer`]), recipients given as a phone number or a
//! JID ([`parse_recipient`]) and waiting for a sent message's status ([`wait_status`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use wa_engine::noise::TrustRoot;
use wa_engine::{
    Client, DEFAULT_URL, Event, Events, IncomingMessage, Jid, MessageId, MessageStatus, SledStore,
    Store,
};
use wa_sandbox::{Phone, Sandbox, SandboxConfig, SandboxHandle, SandboxState};

/// Where an example keeps its files under `--data-dir`.
///
/// The sandbox and a real server get separate stores, so a sandbox run never touches (or
/// gets wiped by a 401 against) a store that is paired with a real phone.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Files under `root` (created when missing).
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn new(root: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)
            .with_context(|| format!("creating data dir {}", root.display()))?;
        Ok(Self { root })
    }

    /// The sled store of the device paired with a real server (`<data-dir>/store`).
    pub fn real_store(&self) -> PathBuf {
        self.root.join("store")
    }

    /// The sled store of the device paired with the sandbox (`<data-dir>/sandbox/store`).
    pub fn sandbox_store(&self) -> PathBuf {
        self.root.join("sandbox").join("store")
    }

    /// The saved sandbox server state (`<data-dir>/sandbox/server.json`).
    pub fn sandbox_state(&self) -> PathBuf {
        self.root.join("sandbox").join("server.json")
    }

    /// The sled store of a simulated correspondent's device in the sandbox
    /// (`<data-dir>/sandbox/peers/<number>`).
    pub fn sandbox_peer_store(&self, number: &str) -> PathBuf {
        self.root.join("sandbox").join("peers").join(number)
    }
}

/// A wa-sandbox running inside the example's process, standing in for WhatsApp's servers,
/// with one account whose simulated phone scans QR codes and types pairing codes.
///
/// Its accounts and linked devices are saved to `<data-dir>/sandbox/server.json`
/// ([`save`](Self::save)) and restored at the next start, so a device paired in one run
/// logs in again in the next without a new QR, as it would against the real servers.
#[derive(Debug)]
pub struct OfflineServer {
    sandbox: SandboxHandle,
    phone: Phone,
    state_file: PathBuf,
}

impl OfflineServer {
    /// Starts the sandbox on 127.0.0.1 (any free port), restores its saved state if there is
    /// one, and makes sure the account `phone_number` (digits only) exists.
    ///
    /// # Errors
    /// When the sandbox cannot bind, the state file is unreadable, or the number is invalid.
    pub async fn start(data: &DataDir, phone_number: &str) -> anyhow::Result<Self> {
        let sandbox = Sandbox::start(SandboxConfig::default())
            .await
            .context("starting the sandbox")?;
        let state_file = data.sandbox_state();
        if state_file.exists() {
            let json = std::fs::read(&state_file)
                .with_context(|| format!("reading {}", state_file.display()))?;
            let state: SandboxState = serde_json::from_slice(&json)
                .with_context(|| format!("parsing {}", state_file.display()))?;
            sandbox
                .router()
                .import_state(&state)
                .with_context(|| format!("restoring {}", state_file.display()))?;
        }
        let phone = match sandbox.phone(phone_number) {
            Ok(phone) => phone,
            Err(_) => sandbox
                .create_account(phone_number)
                .context("creating the sandbox account")?,
        };
        Ok(Self {
            sandbox,
            phone,
            state_file,
        })
    }

    /// The WebSocket URL to give `ClientBuilder::url`.
    pub fn ws_url(&self) -> &str {
        self.sandbox.ws_url()
    }

    /// The root the client must trust instead of WhatsApp's production root.
    pub fn trust_root(&self) -> TrustRoot {
        self.sandbox.trust_root()
    }

    /// The account's simulated primary phone.
    pub fn phone(&self) -> &Phone {
        &self.phone
    }

    /// The base URL of the sandbox's HTTP control API (create accounts, scan QR codes; see
    /// `wa_sandbox::control_app`), for other programs that want to talk to this sandbox.
    pub fn control_url(&self) -> &str {
        self.sandbox.control_url()
    }

    /// The simulated primary phone of account `number` (digits only), creating the account
    /// when it does not exist yet.
    ///
    /// # Errors
    /// When the number is invalid.
    pub fn account(&self, number: &str) -> anyhow::Result<Phone> {
        match self.sandbox.phone(number) {
            Ok(phone) => Ok(phone),
            Err(_) => self
                .sandbox
                .create_account(number)
                .with_context(|| format!("creating the sandbox account {number}")),
        }
    }

    /// Writes the accounts and linked devices to `<data-dir>/sandbox/server.json`.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(&self.sandbox.router().export_state())?;
        write_file(&self.state_file, &json)
    }

    /// Stops the sandbox.
    pub async fn shutdown(self) {
        self.sandbox.shutdown().await;
    }
}

/// Writes through a temporary file and a rename, so a crash leaves the old or the new file.
fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// The QR string as a QR code drawn with Unicode half blocks (two modules per character
/// row), with a quiet zone, ready to print in a terminal.
///
/// # Errors
/// When the string is too long for a QR code.
pub fn render_qr(code: &str) -> anyhow::Result<String> {
    let qr = qrcode::QrCode::new(code.as_bytes()).context("encoding the QR code")?;
    Ok(qr
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// Logs go to stderr, `warn` and up unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
}

/// The command-line options the messaging examples share (`#[command(flatten)]` them).
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Connect to this server instead of the in-process sandbox; without a value, WhatsApp's
    /// production endpoint. An unpaired device prints a QR to scan with your phone.
    #[arg(long, num_args = 0..=1, default_missing_value = DEFAULT_URL)]
    pub url: Option<String>,
    /// Where the device's credentials (sled) and the sandbox's state are kept. The default
    /// is the one `pair_qr` uses, so a device it paired is reused.
    #[arg(long, default_value = "wa-data")]
    pub data_dir: PathBuf,
    /// The sandbox account's phone number (sandbox mode only).
    #[arg(long, default_value = "15550001234")]
    pub sandbox_phone: String,
}

/// A paired device, logged in and online, and (in sandbox mode) the sandbox it talks to.
#[derive(Debug)]
pub struct Linked {
    /// The client handle.
    pub client: Client,
    /// Its events; everything after `Connected`.
    pub events: Events,
    /// Own device JID (phone-number AD JID).
    pub jid: Jid,
    /// The in-process sandbox, in sandbox mode.
    pub server: Option<OfflineServer>,
    /// Where the files are.
    pub data: DataDir,
}

impl Linked {
    /// Stops the client and, in sandbox mode, saves the sandbox's state (so the next run
    /// logs in without pairing) and stops it. Stop every [`SimulatedPeer`] first.
    ///
    /// # Errors
    /// When the sandbox state cannot be written.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.client.shutdown().await;
        if let Some(server) = self.server {
            server.save()?;
            server.shutdown().await;
        }
        Ok(())
    }
}

/// Opens the device store of the current mode in `data` (the sandbox's when `server` is
/// given, else the real one; see [`DataDir`]) and connects a client named `device_name`:
/// to `server` and its trust root, or to `url` (default WhatsApp's production endpoint).
/// Prints where it connects. The client is not paired or logged in yet.
///
/// # Errors
/// The store does not open, or the connection fails.
pub async fn connect_client(
    data: &DataDir,
    server: Option<&OfflineServer>,
    url: Option<&str>,
    device_name: &str,
) -> anyhow::Result<(Client, Events)> {
    let store_dir = match server {
        Some(_) => data.sandbox_store(),
        None => data.real_store(),
    };
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&store_dir)?);
    let builder = Client::builder(store).device_name(device_name);
    let (url, builder) = match server {
        Some(server) => (
            server.ws_url().to_owned(),
            builder.trust_root(server.trust_root()),
        ),
        None => (url.unwrap_or(DEFAULT_URL).to_owned(), builder),
    };
    println!(
        "connecting to {url} (device data in {})",
        store_dir.display()
    );
    builder
        .url(&url)
        .connect()
        .await
        .with_context(|| format!("connecting to {url}"))
}

/// Connects the example's device and waits until it is online: in sandbox mode (no
/// `--url`) against an in-process sandbox whose phone scans the QR if the device is not
/// paired yet; with `--url` against that server, printing the QR for you to scan. Prints
/// `connected as <jid>`.
///
/// # Errors
/// When the store cannot be opened, the connection fails, or the device was unlinked (its
/// store is wiped then: run again to pair anew).
pub async fn connect_linked(args: &ConnectArgs, device_name: &str) -> anyhow::Result<Linked> {
    let data = DataDir::new(&args.data_dir)?;
    let server = match args.url {
        Some(_) => None,
        None => Some(OfflineServer::start(&data, &args.sandbox_phone).await?),
    };
    let (client, mut events) =
        connect_client(&data, server.as_ref(), args.url.as_deref(), device_name).await?;
    let phone = server.as_ref().map(OfflineServer::phone);
    let jid = match until_connected(&mut events, phone, None).await {
        Ok(jid) => jid,
        Err(e) => {
            client.shutdown().await;
            if let Some(server) = server {
                server.shutdown().await;
            }
            return Err(e);
        }
    };
    println!("connected as {jid}");
    Ok(Linked {
        client,
        events,
        jid,
        server,
        data,
    })
}

/// Reads events until `Connected`, pairing on the way: `phone` (the sandbox's simulated
/// phone) scans each QR, or without it the QR is printed for a real phone.
async fn until_connected(
    events: &mut Events,
    phone: Option<&Phone>,
    limit: Option<Duration>,
) -> anyhow::Result<Jid> {
    let wait = async {
        loop {
            let Some(event) = events.recv().await else {
                anyhow::bail!("the client stopped");
            };
            match event {
                Event::Qr { code, .. } => match phone {
                    Some(phone) => {
                        phone
                            .scan(&code)
                            .context("the sandbox phone scanning the QR")?;
                    }
                    None => {
                        println!("{}", render_qr(&code)?);
                        println!(
                            "scan it with WhatsApp on your phone: Settings > Linked devices > \
                             Link a device"
                        );
                    }
                },
                Event::Connected { jid } => return Ok(jid),
                Event::LoggedOut { reason } => anyhow::bail!(
                    "logged out ({reason}); the device's store was wiped, run again to pair anew"
                ),
                Event::Stopped => anyhow::bail!("the client stopped"),
                _ => {}
            }
        }
    };
    match limit {
        Some(limit) => tokio::time::timeout(limit, wait)
            .await
            .map_err(|_| anyhow::anyhow!("not connected within {limit:?}"))?,
        None => wait.await,
    }
}

/// How long a simulated correspondent may take to pair and come online.
const PEER_TIMEOUT: Duration = Duration::from_secs(30);

/// A correspondent simulated in the sandbox: an account of its own (created when missing)
/// with one linked wa-engine device, kept in `<data-dir>/sandbox/peers/<number>`, so what
/// an example sends is really received and decrypted, and what it receives really came
/// through the server.
#[derive(Debug)]
pub struct SimulatedPeer {
    /// The peer device's client handle.
    pub client: Client,
    /// Its events.
    pub events: Events,
    /// Its device JID.
    pub jid: Jid,
}

impl SimulatedPeer {
    /// Starts (pairing on the first run) the simulated device of account `number` (digits
    /// only) in `server`, and waits until it is online with its prekeys on the server, so
    /// others can open a Signal session with it at once.
    ///
    /// # Errors
    /// When the number is invalid, the store cannot be opened, or it does not come online
    /// within 30 s.
    pub async fn start(
        server: &OfflineServer,
        data: &DataDir,
        number: &str,
    ) -> anyhow::Result<Self> {
        let phone = server.account(number)?;
        let dir = data.sandbox_peer_store(number);
        let store: Arc<dyn Store> =
            Arc::new(SledStore::open(&dir).with_context(|| format!("opening {}", dir.display()))?);
        let (client, mut events) = Client::builder(store.clone())
            .url(server.ws_url())
            .trust_root(server.trust_root())
            .device_name("wa-rs simulated peer")
            // Enough for a few sessions; a short-lived test device needs no 812.
            .prekey_batch(50)
            .connect()
            .await
            .context("connecting the simulated peer")?;
        let jid = match until_connected(&mut events, Some(&phone), Some(PEER_TIMEOUT)).await {
            Ok(jid) => jid,
            Err(e) => {
                client.shutdown().await;
                return Err(e.context(format!("simulated peer +{number}")));
            }
        };
        // Others fetch its prekey bundle as soon as they message it: wait for the upload.
        let deadline = tokio::time::Instant::now() + PEER_TIMEOUT;
        while store
            .prekey_counters()?
            .unwrap_or_default()
            .first_unuploaded_id
            <= 1
        {
            if tokio::time::Instant::now() > deadline {
                client.shutdown().await;
                anyhow::bail!("simulated peer +{number}: prekeys not uploaded within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            client,
            events,
            jid,
        })
    }

    /// The next decrypted message with id `id` (or, for `None`, any message), skipping
    /// other events; fails after `limit`.
    ///
    /// # Errors
    /// When no such message arrives within `limit`, or the client stopped.
    pub async fn next_message(
        &mut self,
        id: Option<&MessageId>,
        limit: Duration,
    ) -> anyhow::Result<IncomingMessage> {
        let wait = async {
            loop {
                match self.events.recv().await {
                    Some(Event::Message(m)) if id.is_none_or(|id| m.info.id == id.0) => {
                        return Ok(*m);
                    }
                    Some(_) => {}
                    None => anyhow::bail!("the simulated peer stopped"),
                }
            }
        };
        tokio::time::timeout(limit, wait)
            .await
            .map_err(|_| anyhow::anyhow!("no message within {limit:?}"))?
    }

    /// Stops the peer's client.
    pub async fn shutdown(self) {
        self.client.shutdown().await;
    }
}

/// A recipient given as a JID (`15551234567@s.whatsapp.net`, a group `...@g.us`) or as a
/// phone number in international form (`+1 555 123-4567`: `+`, spaces, dashes, dots and
/// parentheses are ignored), as a user JID.
///
/// # Errors
/// When it is neither a JID nor a number of 6 to 15 digits.
pub fn parse_recipient(to: &str) -> anyhow::Result<Jid> {
    let to = to.trim();
    if to.contains('@') {
        return to
            .parse()
            .with_context(|| format!("{to:?} is not a valid JID"));
    }
    let digits: String = to
        .chars()
        .filter(|c| !matches!(c, '+' | ' ' | '-' | '.' | '(' | ')'))
        .collect();
    if !(6..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        anyhow::bail!("{to:?} is neither a JID nor a phone number in international form");
    }
    Ok(Jid::pn(digits))
}

/// Reads `events` until message `id` reached `wanted` (or later), printing each step as
/// `status: sent`, `status: delivered (by <device>)`, ...; returns the last status seen
/// (`None` if none) when `limit` passes first. Other events are skipped.
pub async fn wait_status(
    events: &mut Events,
    id: &MessageId,
    wanted: MessageStatus,
    limit: Duration,
) -> Option<MessageStatus> {
    let mut last = None;
    let deadline = tokio::time::Instant::now() + limit;
    while last.is_none_or(|s| s < wanted) {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(Event::MessageStatus {
                id: got,
                status,
                by,
                ..
            })) if got == *id => {
                let name = format!("{status:?}").to_lowercase();
                match by {
                    Some(by) => println!("status: {name} (by {by})"),
                    None => println!("status: {name}"),
                }
                last = last.max(Some(status));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    last
}
