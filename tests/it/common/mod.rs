//! Test support: start the real router on 127.0.0.1:0 with a temp data dir
//! and an injected clock, and talk to it as Twilio does.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use roster::clock::ManualClock;
use roster::config::Config;
use roster::http::{App, AppState, Options};
use roster::shutdown::ShutdownTrigger;
use roster::twilio::SignatureVerifier;

pub mod dashboard;
pub mod process;
pub mod redis;

pub const AUTH_TOKEN: &str = "test-auth-token-0123456789abcdef";
/// A member of tests/fixtures/members.csv (Sanjay Gupta, active).
pub const MEMBER: &str = "+919845000007";
/// Asha Rao, Bengaluru cardiologist.
pub const ASHA: &str = "+919845000001";
/// Ravi Kumar, inactive.
pub const INACTIVE: &str = "+919845000005";
/// Not in the directory.
pub const STRANGER: &str = "+919900000099";
/// The admin token of apps from [`spawn_admin_app`] and of the CLI tests.
pub const ADMIN_TOKEN: &str = "test-admin-token";

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A configuration for tests: fixture directory, temp data dir, a token.
pub fn test_config(data_dir: &Path) -> Config {
    let mut config = Config::default();
    config.server.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    config.twilio.auth_token = AUTH_TOKEN.to_owned();
    config.directory.members_csv = fixture("members.csv");
    config.directory.org_name = "Test Network".to_owned();
    config.storage.data_dir = data_dir.join("state");
    config
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// The running app's shared state (connections, limits, sessions).
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    trigger: ShutdownTrigger,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    verifier: SignatureVerifier,
    next_sid: AtomicU64,
    /// Distinct per app, so that apps sharing a store never reuse a
    /// MessageSid by accident.
    sid_base: u32,
}

/// Starts the app with the test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app with the admin API on ([`ADMIN_TOKEN`]).
pub async fn spawn_admin_app() -> TestApp {
    spawn_app_with(|c| c.admin.token = ADMIN_TOKEN.to_owned()).await
}

/// The `phoneNumber`s of a page from `GET /admin/sessions`.
pub fn listed_phones(page: &serde_json::Value) -> Vec<String> {
    page["sessions"]
        .as_array()
        .expect("a sessions array")
        .iter()
        .map(|s| s["phoneNumber"].as_str().expect("a phone").to_owned())
        .collect()
}

/// Starts the app after `tweak` has adjusted the test configuration.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(dir.path());
    tweak(&mut config);
    spawn_app_in(dir, config, false).await
}

pub async fn spawn_app_in(dir: tempfile::TempDir, config: Config, dev: bool) -> TestApp {
    spawn_app_at(dir, config, dev, ManualClock::starting_now()).await
}

/// Like [`spawn_app_in`] with the clock at a given time from the start, for
/// data written at a known time (the stored fixtures).
pub async fn spawn_app_at(
    dir: tempfile::TempDir,
    config: Config,
    dev: bool,
    clock: Arc<ManualClock>,
) -> TestApp {
    let app = App::build(
        config,
        Options {
            dev,
            clock: clock.clone(),
        },
    )
    .expect("app builds");
    let state = app.state().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (trigger, shutdown) = ShutdownTrigger::new();
    let handle = tokio::spawn(app.run(listener, shutdown));
    TestApp {
        addr,
        state,
        clock,
        client: reqwest::Client::new(),
        dir,
        trigger,
        handle,
        verifier: SignatureVerifier::new(AUTH_TOKEN),
        next_sid: AtomicU64::new(1),
        sid_base: {
            let mut bytes = [0u8; 4];
            getrandom::fill(&mut bytes).expect("randomness");
            u32::from_le_bytes(bytes)
        },
    }
}

/// The fields Twilio sends for a WhatsApp text message.
pub fn whatsapp_form(from: &str, body: &str, sid: &str) -> Vec<(String, String)> {
    [
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("ProfileName", "Test Member"),
        ("MessageType", "text"),
        ("SmsSid", sid),
        ("WaId", from.trim_start_matches('+')),
        ("SmsStatus", "received"),
        ("Body", body),
        ("To", "whatsapp:+14155238886"),
        ("NumSegments", "1"),
        ("ReferralNumMedia", "0"),
        ("MessageSid", sid),
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("From", &format!("whatsapp:{from}")),
        ("ApiVersion", "2010-04-01"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub fn encode_form(fields: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The URL Twilio would sign when calling this server directly.
    pub fn webhook_url(&self) -> String {
        self.url("/whatsapp/webhook")
    }

    /// `GET path` on the admin API with [`ADMIN_TOKEN`].
    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request")
    }

    /// `POST path` on the admin API with [`ADMIN_TOKEN`], no body.
    pub async fn admin_post(&self, path: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request")
    }

    /// The JSON answer of [`TestApp::admin_get`].
    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        self.admin_get(path).await.json().await.expect("JSON")
    }

    pub fn sign(&self, url: &str, fields: &[(String, String)]) -> String {
        self.verifier.sign(url, fields)
    }

    pub fn new_sid(&self) -> String {
        let n = self.next_sid.fetch_add(1, Ordering::Relaxed);
        format!("SM{:08x}{n:024x}", self.sid_base)
    }

    /// Sends `body` from `from` with a fresh MessageSid, signed as Twilio signs.
    pub async fn send(&self, from: &str, body: &str) -> reqwest::Response {
        let fields = whatsapp_form(from, body, &self.new_sid());
        self.post_fields(&fields).await
    }

    /// Like [`send`], returning the status and body text.
    pub async fn send_text(&self, from: &str, body: &str) -> (u16, String) {
        let response = self.send(from, body).await;
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    pub async fn post_fields(&self, fields: &[(String, String)]) -> reqwest::Response {
        let signature = self.sign(&self.webhook_url(), fields);
        self.post_raw(encode_form(fields).into_bytes(), Some(&signature))
            .await
    }

    pub async fn post_raw(&self, body: Vec<u8>, signature: Option<&str>) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.webhook_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("x-twilio-signature", signature);
        }
        request.send().await.expect("request")
    }

    /// Fires the shutdown and waits for a clean exit.
    pub async fn stop(self) -> tempfile::TempDir {
        self.trigger.fire();
        self.handle
            .await
            .expect("server task")
            .expect("server exits cleanly");
        self.dir
    }
}

/// The `<Message>` texts of a TwiML document, unescaped.
pub fn messages(twiml: &str) -> Vec<String> {
    let mut reader = quick_xml::Reader::from_str(twiml);
    let mut out = Vec::new();
    let mut inside = false;
    loop {
        match reader.read_event().expect("well-formed TwiML") {
            quick_xml::events::Event::Start(e) if e.name().as_ref() == b"Message" => {
                inside = true;
                out.push(String::new());
            }
            quick_xml::events::Event::End(e) if e.name().as_ref() == b"Message" => inside = false,
            quick_xml::events::Event::Text(t) if inside => {
                let text = t.decode().expect("utf-8");
                let text = quick_xml::escape::unescape(&text).expect("valid escapes");
                out.last_mut().expect("open message").push_str(&text);
            }
            quick_xml::events::Event::GeneralRef(r) if inside => {
                let name = r.decode().expect("utf-8");
                let text = quick_xml::escape::unescape(&format!("&{name};"))
                    .expect("known entity")
                    .into_owned();
                out.last_mut().expect("open message").push_str(&text);
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    out
}
