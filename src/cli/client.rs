//! Talking to a running `roster serve` over HTTP: the admin API (for the
//! CLI, since the server holds the sled lock) and the webhook, signed as
//! Twilio signs it (for `roster chat` and `roster send`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::http::views::ErrorBody;
use crate::phone::PhoneNumber;
use crate::twilio::SignatureVerifier;

/// Why a request to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no roster server answers at {0}")]
    NotRunning(String),
    #[error(
        "the server wants the admin token: set ROSTER_ADMIN__TOKEN (or admin.token) to the token the server uses"
    )]
    Unauthorized,
    #[error(
        "the admin API is not enabled on {0}: start the server with admin.token set (ROSTER_ADMIN__TOKEN)"
    )]
    AdminDisabled(String),
    #[error("{status}: {message}")]
    Status { status: u16, message: String },
    #[error("request to {url} failed: {reason}")]
    Transport { url: String, reason: String },
}

/// The base URL for the server in `config`: `server.bind`, with a wildcard
/// address replaced by loopback.
pub fn default_server_url(config: &Config) -> String {
    let mut bind = config.server.bind;
    if bind.ip().is_unspecified() {
        bind.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{bind}")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// The admin API of one server.
#[derive(Debug, Clone)]
pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl AdminClient {
    pub fn new(base: &str, token: Option<&str>) -> AdminClient {
        AdminClient {
            base: base.trim_end_matches('/').to_owned(),
            token: token.map(str::to_owned),
            http: http(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether anything answers at the base URL.
    pub async fn is_running(&self) -> bool {
        self.http
            .get(format!("{}/healthz", self.base))
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .is_ok()
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, ClientError> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                ClientError::NotRunning(self.base.clone())
            } else {
                ClientError::Transport {
                    url: url.to_owned(),
                    reason: e.to_string(),
                }
            }
        })?;
        match response.status().as_u16() {
            200..=299 => Ok(response),
            401 => Err(ClientError::Unauthorized),
            404 if response.headers().get("content-type").is_none() => {
                Err(ClientError::AdminDisabled(self.base.clone()))
            }
            status => {
                let body = response.text().await.unwrap_or_default();
                let message = serde_json::from_str::<ErrorBody>(&body)
                    .map(|e| e.error)
                    .unwrap_or(body);
                Err(ClientError::Status { status, message })
            }
        }
    }

    /// GETs `path` and reads the JSON answer into `T` (one of the admin API's views, `http::views`).
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self.send(self.http.get(&url), &url).await?;
        response.json().await.map_err(|e| ClientError::Transport {
            url,
            reason: e.to_string(),
        })
    }

    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.delete(&url), &url).await.map(|_| ())
    }

    /// POSTs to `path` and reads the JSON answer into `T`.
    pub async fn post<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self.send(self.http.post(&url), &url).await?;
        response.json().await.map_err(|e| ClientError::Transport {
            url,
            reason: e.to_string(),
        })
    }

    /// The raw response, for streams (export).
    pub async fn get_stream(&self, path: &str) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{path}", self.base);
        self.send(
            self.http.get(&url).timeout(Duration::from_secs(24 * 3600)),
            &url,
        )
        .await
    }
}

/// Sends webhook messages as Twilio would, from one member's number.
#[derive(Debug)]
pub struct WebhookClient {
    webhook_url: String,
    /// The URL the signature covers (`twilio.public_url` when configured).
    signed_url: String,
    verifier: Option<SignatureVerifier>,
    http: reqwest::Client,
    next_sid: AtomicU64,
    session_tag: u64,
}

impl WebhookClient {
    /// `auth_token` `None` sends unsigned requests (a `--dev` server).
    pub fn new(base: &str, public_url: Option<&str>, auth_token: Option<&str>) -> WebhookClient {
        let base = base.trim_end_matches('/');
        let webhook_url = format!("{base}/whatsapp/webhook");
        let signed_url = match public_url {
            Some(public) => format!("{}/whatsapp/webhook", public.trim_end_matches('/')),
            None => webhook_url.clone(),
        };
        let session_tag = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        WebhookClient {
            webhook_url,
            signed_url,
            verifier: auth_token.map(SignatureVerifier::new),
            http: http(),
            next_sid: AtomicU64::new(1),
            session_tag,
        }
    }

    /// Sends `text` from `from`; the reply's messages (empty for silence).
    pub async fn send(&self, from: &PhoneNumber, text: &str) -> Result<Vec<String>, ClientError> {
        let sid = format!(
            "SM{:016x}{:016x}",
            self.session_tag,
            self.next_sid.fetch_add(1, Ordering::Relaxed)
        );
        let fields: Vec<(String, String)> = [
            ("MessageSid", sid.as_str()),
            ("SmsMessageSid", sid.as_str()),
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("From", &from.whatsapp_address()),
            ("To", "whatsapp:+14155238886"),
            ("Body", text),
            ("NumMedia", "0"),
            ("ProfileName", "roster chat"),
            ("WaId", from.e164().trim_start_matches('+')),
            ("SmsStatus", "received"),
            ("ApiVersion", "2010-04-01"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&fields)
            .finish();
        let mut request = self
            .http
            .post(&self.webhook_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(verifier) = &self.verifier {
            request = request.header(
                "x-twilio-signature",
                verifier.sign(&self.signed_url, &fields),
            );
        }
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                ClientError::NotRunning(self.webhook_url.clone())
            } else {
                ClientError::Transport {
                    url: self.webhook_url.clone(),
                    reason: e.to_string(),
                }
            }
        })?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(ClientError::Status {
                status,
                message: text,
            });
        }
        Ok(crate::twilio::twiml::parse_messages(&text))
    }
}
