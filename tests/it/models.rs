//! The optional models (issue 14) against local fakes that speak the OpenAI
//! chat-completions and embeddings protocols on 127.0.0.1:0 and record what
//! they receive: the model reads what the rules could not, its invented
//! values are refused, every failure falls back to the rules within the
//! timeout, the breaker opens and closes on the injected clock, no phone or
//! email is ever sent, and semantic search ranks the right member from
//! vectors cached in sled. A fake Twilio Messages API receives the replies
//! that missed `twilio.reply_deadline`: once, with the right fields and
//! auth, after 429s, and after a restart. `real_model_*` checks a real embedding model
//! when `ROSTER_TEST_EMBEDDINGS_URL` is set (`scripts/semantic-check.sh`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::common::{TestApp, messages, spawn_app_in, test_config};
use roster::config::{Config, Secret};
use roster::models::OPEN_FOR;

/// The directory of these tests: phones and emails known, so that the
/// recorded requests can be searched for them.
const MEMBERS: &str = "\
member_id,name,phone,email,profession,specialty,designation,organization,city,area,skills,services,graduation_year,degree,branch,bio,role,status,share_contact,languages
M1,Gauri Apte,+91 98450 11111,gauri.apte@example.org,Lawyer,Family Law,Partner,Apte Legal,Pune,Kothrud,Matrimonial disputes; Custody,,2001,LLB,,Handles matrimonial disputes and child custody.,member,active,true,English
M2,Pranav Bhosale,+91 98450 22222,pranav.bhosale@example.org,Lawyer,Family Law,Associate,Bhosale Legal,Mumbai,Bandra,Matrimonial disputes,,2005,LLB,,Matrimonial cases and custody.,member,active,true,English
M3,Asha Rao,+91 98450 33333,asha.rao@example.org,Doctor,Cardiology,Consultant,Kaveri Heart Centre,Pune,Aundh,Echocardiography; Angioplasty,,2005,MBBS,,Cardiologist.,member,active,true,English
M4,Rahul Sharma,+91 98450 44444,rahul.sharma@example.org,Chartered Accountant,Taxation,Partner,Sharma & Co,Pune,Baner,Income tax returns; GST,,1999,CA,,Files income tax returns.,member,active,true,English
M5,Lata Iyer,+91 98450 55555,lata.iyer@example.org,Doctor,Orthopedics,Surgeon,Bone Clinic,Pune,Aundh,Joint replacement,,1995,MS,,,member,active,true,English
M6,Sanjay Gupta,+91 98450 66666,sanjay.gupta@example.org,Software Engineer,Backend,Tech Lead,Bytecraft,Pune,Hinjewadi,Rust; Go,,2012,B.E,Computer Science,,admin,active,true,English
";
/// Sanjay Gupta, who sends the messages.
const SENDER: &str = "+919845066666";
/// What no request to a model server may contain: the directory's phones
/// (any writing) and emails.
const SECRETS: [&str; 4] = ["98450", "9845011111", "example.org", "@"];

/// A message the rules do not understand.
const UNREAD: &str = "my knee hurts when I climb stairs";

/// What the fake chat model does with the next requests.
#[derive(Clone)]
enum ChatMode {
    /// Answer with this content.
    Content(String),
    /// Answer with this status and body.
    Status(u16, String),
    /// Wait this long, then answer with the content.
    Slow(Duration, String),
    /// A 200 whose body is not JSON.
    Garbage,
    /// 400 naming response_format for json_schema requests, else the content.
    NoSchema(String),
}

#[derive(Clone)]
struct Fake {
    received: Arc<Mutex<Vec<(String, Value)>>>,
    chat: Arc<Mutex<ChatMode>>,
    embeddings_down: Arc<Mutex<bool>>,
}

impl Fake {
    fn requests(&self, path: &str) -> Vec<Value> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn set_chat(&self, mode: ChatMode) {
        *self.chat.lock().expect("lock") = mode;
    }

    fn all_bodies(&self) -> String {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, v)| v.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn completion(content: &str) -> Response {
    Json(json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }))
    .into_response()
}

async fn chat(State(fake): State<Fake>, Json(body): Json<Value>) -> Response {
    let schema = body["response_format"]["type"] == "json_schema";
    fake.received
        .lock()
        .expect("lock")
        .push(("chat".to_owned(), body));
    let mode = fake.chat.lock().expect("lock").clone();
    match mode {
        ChatMode::Content(content) => completion(&content),
        ChatMode::Status(status, body) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        )
            .into_response(),
        ChatMode::Slow(wait, content) => {
            tokio::time::sleep(wait).await;
            completion(&content)
        }
        ChatMode::Garbage => (StatusCode::OK, "{\"choices\": [oops").into_response(),
        ChatMode::NoSchema(_) if schema => (
            StatusCode::BAD_REQUEST,
            r#"{"error": {"message": "response_format of type json_schema is not supported", "type": "invalid_request_error"}}"#,
        )
            .into_response(),
        ChatMode::NoSchema(content) => completion(&content),
    }
}

/// Words that mean one thing share a dimension; other words are hashed.
const CONCEPTS: [&[&str]; 3] = [
    &["divorce", "separation", "matrimonial", "custody", "breakup"],
    &["heart", "cardiology", "cardiologist", "chest"],
    &["tax", "taxes", "taxation", "returns", "accountant"],
];
const DIM: usize = 64;

/// A deterministic bag-of-words vector.
fn vector(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; DIM];
    for word in text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 3)
    {
        match CONCEPTS.iter().position(|c| c.contains(&word)) {
            Some(dim) => v[dim] += 1.0,
            None => {
                let hash = word
                    .bytes()
                    .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
                v[3 + (hash % (DIM as u64 - 3)) as usize] += 0.3;
            }
        }
    }
    v
}

async fn embeddings(State(fake): State<Fake>, Json(body): Json<Value>) -> Response {
    fake.received
        .lock()
        .expect("lock")
        .push(("embeddings".to_owned(), body.clone()));
    if *fake.embeddings_down.lock().expect("lock") {
        return (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response();
    }
    let inputs: Vec<String> = body["input"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    // In reverse order: clients must match answers by index.
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": vector(text)}))
        .collect();
    Json(json!({"object": "list", "data": data, "model": body["model"]})).into_response()
}

/// The fake OpenAI server, and its base URL (`…/v1`).
async fn spawn_fake() -> (Fake, String) {
    let fake = Fake {
        received: Arc::default(),
        chat: Arc::new(Mutex::new(ChatMode::Content("{}".to_owned()))),
        embeddings_down: Arc::default(),
    };
    let router = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (fake, format!("http://{addr}/v1"))
}

/// A base URL nothing listens on.
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/v1")
}

/// The test configuration over [`MEMBERS`] in `dir`.
fn config_in(dir: &tempfile::TempDir) -> Config {
    let csv = dir.path().join("members.csv");
    std::fs::write(&csv, MEMBERS).expect("write the directory");
    let mut config = test_config(dir.path());
    config.directory.members_csv = csv;
    config.directory.synonyms_csv = dir.path().join("no-synonyms.csv");
    config
}

async fn app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config_in(&dir);
    tweak(&mut config);
    spawn_app_in(dir, config, false).await
}

fn with_llm(url: &str, timeout: Duration) -> impl FnOnce(&mut Config) {
    let url = url.to_owned();
    move |c: &mut Config| {
        c.llm.base_url = url;
        c.llm.model = "test-model".to_owned();
        c.llm.api_key = Secret::new("sk-test-secret");
        c.llm.timeout = timeout;
    }
}

fn with_embeddings(url: &str) -> impl FnOnce(&mut Config) {
    let url = url.to_owned();
    move |c: &mut Config| {
        c.embeddings.base_url = url;
        c.embeddings.model = "bag-of-words".to_owned();
        c.embeddings.min_similarity = 0.3;
    }
}

async fn reply(app: &TestApp, text: &str) -> String {
    let (status, body) = app.send_text(SENDER, text).await;
    assert_eq!(status, 200, "{body}");
    messages(&body).join("\n")
}

const ORTHOPEDICS: &str = r#"{"intent": "search", "profession": null, "specialty": "Orthopedics", "designation": null, "organization": null, "city": null, "area": null, "name": null, "graduation_year": null, "branch": null, "degree": null, "skills": [], "keywords": [], "index": null}"#;

#[tokio::test]
async fn the_rules_alone_do_not_understand_the_test_message() {
    let app = app_with(|_| {}).await;
    let text = reply(&app, UNREAD).await;
    assert!(text.contains("didn't understand"), "{text}");
}

#[tokio::test]
async fn a_message_the_rules_do_not_understand_is_answered_from_the_model() {
    let (fake, url) = spawn_fake().await;
    fake.set_chat(ChatMode::Content(ORTHOPEDICS.to_owned()));
    let app = app_with(with_llm(&url, Duration::from_secs(4))).await;
    let text = reply(&app, UNREAD).await;
    assert!(text.contains("Lata Iyer"), "{text}");
    assert!(!text.contains("Asha Rao"), "{text}");
    let sent = fake.requests("chat");
    assert_eq!(sent.len(), 1);
    let body = &sent[0];
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["response_format"]["type"], "json_schema");
    let user = body["messages"][1]["content"].as_str().unwrap_or_default();
    assert!(user.contains(UNREAD), "{user}");
    assert!(
        user.contains("Orthopedics"),
        "the directory's values: {user}"
    );

    // What the rules understand never goes to the model.
    let text = reply(&app, "cardiologists in Pune").await;
    assert!(text.contains("Asha Rao"), "{text}");
    assert_eq!(fake.requests("chat").len(), 1);
}

#[tokio::test]
async fn an_invented_value_is_named_and_finds_no_one() {
    let (fake, url) = spawn_fake().await;
    fake.set_chat(ChatMode::Content(
        r#"{"intent": "search", "profession": "Astronaut", "city": "Pune", "skills": [], "keywords": []}"#
            .to_owned(),
    ));
    let app = app_with(with_llm(&url, Duration::from_secs(4))).await;
    let text = reply(&app, "someone who has been to space").await;
    assert!(text.to_lowercase().contains("astronaut"), "{text}");
    assert!(text.contains("couldn't find"), "{text}");
    for name in ["Gauri", "Asha", "Rahul", "Lata", "Sanjay", "Pranav"] {
        assert!(
            !text.contains(name),
            "{name} listed for an invented value: {text}"
        );
    }
}

#[tokio::test]
async fn fences_and_text_around_the_object_are_accepted() {
    let (fake, url) = spawn_fake().await;
    fake.set_chat(ChatMode::Content(format!(
        "Sure! Here is the JSON you asked for:\n```json\n{ORTHOPEDICS}\n```\nLet me know."
    )));
    let app = app_with(with_llm(&url, Duration::from_secs(4))).await;
    let text = reply(&app, UNREAD).await;
    assert!(text.contains("Lata Iyer"), "{text}");
}

#[tokio::test]
async fn a_server_refusing_json_schema_is_asked_for_json_object() {
    let (fake, url) = spawn_fake().await;
    fake.set_chat(ChatMode::NoSchema(ORTHOPEDICS.to_owned()));
    let app = app_with(with_llm(&url, Duration::from_secs(4))).await;
    let text = reply(&app, UNREAD).await;
    assert!(text.contains("Lata Iyer"), "{text}");
    let sent = fake.requests("chat");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1]["response_format"]["type"], "json_object");
    // Remembered: the next message asks plainly at once.
    reply(&app, UNREAD).await;
    assert_eq!(fake.requests("chat").len(), 3);
}

/// Each failure: the rules' answer, within the timeout.
async fn falls_back(mode: Option<ChatMode>) {
    let (fake, url) = spawn_fake().await;
    let url = match &mode {
        Some(mode) => {
            fake.set_chat(mode.clone());
            url
        }
        None => dead_url().await,
    };
    let timeout = Duration::from_millis(300);
    let app = app_with(with_llm(&url, timeout)).await;
    let started = Instant::now();
    let text = reply(&app, UNREAD).await;
    let took = started.elapsed();
    assert!(text.contains("didn't understand"), "{text}");
    assert!(
        took < timeout + Duration::from_millis(700),
        "answered in {took:?}"
    );
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("roster_model_fallbacks_total{kind=\"chat\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_slow_model_falls_back_within_the_timeout() {
    falls_back(Some(ChatMode::Slow(
        Duration::from_secs(5),
        ORTHOPEDICS.to_owned(),
    )))
    .await;
}

#[tokio::test]
async fn a_500_falls_back() {
    falls_back(Some(ChatMode::Status(
        500,
        r#"{"error": {"message": "boom"}}"#.to_owned(),
    )))
    .await;
}

#[tokio::test]
async fn garbage_falls_back() {
    falls_back(Some(ChatMode::Garbage)).await;
    falls_back(Some(ChatMode::Content(
        "I think they want a doctor.".to_owned(),
    )))
    .await;
}

#[tokio::test]
async fn a_dead_port_falls_back() {
    falls_back(None).await;
}

#[tokio::test]
async fn the_breaker_opens_after_failures_and_closes_after_a_good_probe() {
    let (fake, url) = spawn_fake().await;
    fake.set_chat(ChatMode::Status(500, "boom".to_owned()));
    let app = app_with(with_llm(&url, Duration::from_secs(4))).await;
    for _ in 0..roster::models::FAILURES_TO_OPEN {
        assert!(reply(&app, UNREAD).await.contains("didn't understand"));
    }
    let failed = fake.requests("chat").len();
    assert_eq!(failed, roster::models::FAILURES_TO_OPEN as usize);
    // Open: the rules answer without asking.
    fake.set_chat(ChatMode::Content(ORTHOPEDICS.to_owned()));
    assert!(reply(&app, UNREAD).await.contains("didn't understand"));
    assert_eq!(fake.requests("chat").len(), failed);
    // After a while, one probe; it succeeds and the breaker closes.
    app.clock.advance(OPEN_FOR);
    assert!(reply(&app, UNREAD).await.contains("Lata Iyer"));
    assert!(reply(&app, UNREAD).await.contains("Lata Iyer"));
    assert_eq!(fake.requests("chat").len(), failed + 2);
}

/// Polls `/metrics` until `roster_embeddings_members` reaches `members`.
async fn wait_for_vectors(app: &TestApp, members: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if metrics.contains(&format!("roster_embeddings_members {members}\n")) {
            return metrics;
        }
        assert!(
            Instant::now() < deadline,
            "vectors not ready in 10 s: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn semantic_search_ranks_by_meaning_with_filters_and_caches_vectors() {
    let (fake, url) = spawn_fake().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config_in(&dir);
    with_embeddings(&url)(&mut config);
    config.admin.token = crate::common::ADMIN_TOKEN.to_owned();
    let app = spawn_app_in(dir, config.clone(), false).await;
    let metrics = wait_for_vectors(&app, 6).await;
    assert!(
        metrics.contains("roster_embeddings_profiles_embedded_total 6"),
        "{metrics}"
    );

    // "breakup" is in no profile: the rules find no one; meaning does.
    let text = reply(&app, "someone for my breakup").await;
    assert!(text.starts_with("People who may help with"), "{text}");
    assert!(
        text.contains("Gauri Apte") && text.contains("Pranav Bhosale"),
        "{text}"
    );
    assert!(!text.contains("Asha Rao"), "below the floor: {text}");
    // "2" and CONTACT refer to the closest matches.
    let details = reply(&app, "2").await;
    assert!(details.contains("Lawyer"), "{details}");

    // The city still filters.
    let text = reply(&app, "breakup in Mumbai").await;
    assert!(text.contains("in Mumbai"), "{text}");
    assert!(text.contains("Pranav Bhosale"), "{text}");
    assert!(!text.contains("Gauri Apte"), "{text}");

    // A search with exact matches is unchanged.
    let text = reply(&app, "cardiologists in Pune").await;
    assert!(text.starts_with("Found 1"), "{text}");

    // A restart embeds nothing: the vectors are in sled.
    let before = fake.requests("embeddings").len();
    let dir = app.stop().await;
    let app = spawn_app_in(dir, config.clone(), false).await;
    let metrics = wait_for_vectors(&app, 6).await;
    assert!(
        !metrics.contains("roster_embeddings_profiles_embedded_total 6"),
        "{metrics}"
    );
    assert_eq!(
        fake.requests("embeddings").len(),
        before,
        "profiles embedded again"
    );
    // A reload that changed one member embeds that one.
    let csv = config.directory.members_csv.clone();
    let changed = MEMBERS.replace(
        "Joint replacement,,1995",
        "Joint replacement; Sports injuries,,1995",
    );
    std::fs::write(&csv, changed).expect("rewrite the directory");
    let reloaded = app.admin_post("/admin/directory/reload").await;
    assert_eq!(reloaded.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.requests("embeddings").len() == before {
        assert!(
            Instant::now() < deadline,
            "the changed member was not embedded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for_vectors(&app, 6).await;
    let sent = fake.requests("embeddings");
    assert_eq!(sent.len(), before + 1);
    assert_eq!(sent[before]["input"].as_array().map(Vec::len), Some(1));
    assert!(
        sent[before]["input"][0]
            .as_str()
            .unwrap_or_default()
            .contains("Sports injuries")
    );

    let fields = crate::common::whatsapp_form(SENDER, "chest pain", "SM-after-the-restart");
    let twiml = app.post_fields(&fields).await.text().await.expect("body");
    let text = messages(&twiml).join("\n");
    assert!(text.contains("Asha Rao"), "{text}");
}

#[tokio::test]
async fn an_embeddings_server_that_is_down_means_rules_only() {
    let (fake, url) = spawn_fake().await;
    *fake.embeddings_down.lock().expect("lock") = true;
    let app = app_with(with_embeddings(&url)).await;
    let text = reply(&app, "cardiologists in Pune").await;
    assert!(text.contains("Asha Rao"), "{text}");
    let text = reply(&app, "someone for my breakup").await;
    assert!(!text.contains("People who may help"), "{text}");
}

#[tokio::test]
async fn no_phone_or_email_is_ever_sent_to_either_server() {
    let (fake, url) = spawn_fake().await;
    fake.set_chat(ChatMode::Content(ORTHOPEDICS.to_owned()));
    let app = app_with(|c| {
        with_llm(&url, Duration::from_secs(4))(c);
        with_embeddings(&url)(c);
    })
    .await;
    wait_for_vectors(&app, 6).await;
    for text in [
        "my knee hurts when I climb stairs, +91 98450 11111 gauri.apte@example.org",
        "someone for my breakup, I am at 9845011111",
        "someone for my breakup, mail me at pranav.bhosale@example.org",
        UNREAD,
        "2",
    ] {
        reply(&app, text).await;
    }
    assert!(!fake.requests("chat").is_empty());
    assert!(
        fake.requests("embeddings").len() > 1,
        "profiles and a query"
    );
    let bodies = fake.all_bodies();
    for secret in SECRETS {
        assert!(!bodies.contains(secret), "{secret} was sent: {bodies}");
    }
    assert!(bodies.contains("[phone]"), "{bodies}");
}

#[test]
fn api_keys_never_print() {
    let mut config = Config::default();
    config.llm.api_key = Secret::new("sk-very-secret");
    config.embeddings.api_key = Secret::new("sk-also-secret");
    let printed = format!("{config:?} {}", config.llm.api_key);
    assert!(!printed.contains("secret"), "{printed}");
    assert_eq!(config.llm.api_key.expose(), Some("sk-very-secret"));
}

/// Semantic queries against the sample directory, each with the words one
/// of the right members' profession or specialty contains.
const REAL_QUERIES: [(&str, &[&str]); 12] = [
    ("help with my divorce", &["family law"]),
    ("heart problem", &["cardiology"]),
    ("file my taxes", &["chartered accountant"]),
    ("need a wedding shoot", &["photographer"]),
    (
        "who can design my house",
        &["architect", "interior designer"],
    ),
    ("my tooth aches", &["dentist"]),
    ("my child has a fever", &["pediatrics"]),
    ("someone to build a mobile app", &["software engineer"]),
    ("skin rash that will not go away", &["dermatology"]),
    (
        "help with GST filing for my shop",
        &["chartered accountant"],
    ),
    ("property dispute with my neighbour", &["lawyer"]),
    ("knee pain when I walk", &["orthopedics"]),
];

#[tokio::test]
async fn real_model_semantic_precision() {
    let Ok(url) = std::env::var("ROSTER_TEST_EMBEDDINGS_URL") else {
        println!(
            "real_model_semantic_precision: skipped, ROSTER_TEST_EMBEDDINGS_URL is not set (scripts/semantic-check.sh sets it)"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(dir.path());
    config.directory.members_csv =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/members.csv");
    config.embeddings.base_url = url;
    config.embeddings.query_model = "e5-query".to_owned();
    config.embeddings.passage_model = "e5-passage".to_owned();
    config.embeddings.timeout = Duration::from_secs(10);
    let app = roster::http::App::build(
        config,
        roster::http::Options {
            dev: false,
            clock: Arc::new(roster::clock::SystemClock),
        },
    )
    .expect("app builds");
    let state = app.state();
    let assistant = state.assistant();
    let active = assistant.directory().active_members().count();
    state.models.index_directory(Arc::clone(&assistant));
    let started = Instant::now();
    while state.models.vectors_ready() < active {
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "profiles not embedded in 15 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "real model: {active} profiles embedded in {:.1?}",
        started.elapsed()
    );
    let (mut right, mut shown, mut first_right) = (0, 0, 0);
    for (query, wanted) in REAL_QUERIES {
        let started = Instant::now();
        let top = state
            .models
            .closest_members(&assistant, query, 5)
            .await
            .expect("the real model answers");
        let took = started.elapsed();
        let fits = |m: &roster::directory::Member| {
            let work = format!("{} {}", m.profession, m.specialty).to_lowercase();
            wanted.iter().any(|w| work.contains(w))
        };
        let hits = top.iter().filter(|(m, _)| fits(m)).count();
        right += hits;
        shown += top.len();
        if top.first().is_some_and(|(m, _)| fits(m)) {
            first_right += 1;
        }
        let listed: Vec<String> = top
            .iter()
            .map(|(m, s)| format!("{} / {} ({s:.3})", m.profession, m.specialty))
            .collect();
        println!(
            "{query:?}: {hits}/5 right in {took:.0?}: {}",
            listed.join("; ")
        );
    }
    let precision = right as f64 / shown.max(1) as f64;
    println!(
        "real model: precision@5 {:.2} ({right}/{shown}); top-1 right on {first_right}/{}",
        precision,
        REAL_QUERIES.len()
    );
    assert!(
        first_right >= REAL_QUERIES.len() * 2 / 3,
        "the first match is right on only {first_right} queries"
    );
    assert!(precision >= 0.5, "precision@5 {precision:.2}");
}

/// One request to the fake Messages API: path, Authorization header, form
/// fields, the status answered.
type TwilioCall = (String, String, Vec<(String, String)>, u16);

/// What the fake Twilio Messages API received and answers.
#[derive(Clone, Default)]
struct FakeTwilio {
    received: Arc<Mutex<Vec<TwilioCall>>>,
    /// Statuses to answer first, in order; then `then`.
    statuses: Arc<Mutex<Vec<u16>>>,
    then: Arc<Mutex<u16>>,
}

impl FakeTwilio {
    fn accepted(&self) -> Vec<Vec<(String, String)>> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r.3 == 201)
            .map(|r| r.2.clone())
            .collect()
    }

    fn calls(&self) -> usize {
        self.received.lock().expect("lock").len()
    }

    async fn wait_for_accepted(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.accepted().len() < count {
            assert!(
                Instant::now() < deadline,
                "{} messages accepted, not {count}",
                self.accepted().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn twilio_messages(
    State(fake): State<FakeTwilio>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    let status = {
        let mut statuses = fake.statuses.lock().expect("lock");
        if statuses.is_empty() {
            *fake.then.lock().expect("lock")
        } else {
            statuses.remove(0)
        }
    };
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let fields: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    fake.received
        .lock()
        .expect("lock")
        .push((uri.path().to_owned(), auth, fields, status));
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(json!({"sid": "SMout", "status": "queued"}))).into_response()
}

async fn spawn_fake_twilio() -> (FakeTwilio, String) {
    let fake = FakeTwilio::default();
    *fake.then.lock().expect("lock") = 201;
    let router = Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            post(twilio_messages),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (fake, format!("http://{addr}"))
}

const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";

/// A chat model slower than the reply deadline, and the Messages API.
fn late_config(llm: &str, twilio: &str) -> impl FnOnce(&mut Config) {
    let (llm, twilio) = (llm.to_owned(), twilio.to_owned());
    move |c: &mut Config| {
        with_llm(&llm, Duration::from_secs(5))(c);
        c.twilio.account_sid = ACCOUNT_SID.to_owned();
        c.twilio.api_base = twilio;
        c.twilio.reply_deadline = Duration::from_millis(300);
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

#[tokio::test]
async fn a_slow_answer_is_sent_once_through_the_messages_api() {
    let (fake, url) = spawn_fake().await;
    fake.set_chat(ChatMode::Slow(
        Duration::from_millis(1500),
        ORTHOPEDICS.to_owned(),
    ));
    let (twilio, twilio_url) = spawn_fake_twilio().await;
    let app = app_with(late_config(&url, &twilio_url)).await;
    let sid = app.new_sid();
    let form = crate::common::whatsapp_form(SENDER, UNREAD, &sid);
    let started = Instant::now();
    let twiml = app.post_fields(&form).await.text().await.expect("body");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(messages(&twiml).is_empty(), "{twiml}");
    twilio.wait_for_accepted(1).await;
    let sent = twilio.accepted();
    let message = &sent[0];
    assert_eq!(field(message, "To"), format!("whatsapp:{SENDER}"));
    assert_eq!(field(message, "From"), "whatsapp:+14155238886");
    assert!(field(message, "Body").contains("Lata Iyer"), "{message:?}");
    let (path, auth, _, _) = twilio.received.lock().expect("lock")[0].clone();
    assert_eq!(
        path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    );
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{ACCOUNT_SID}:{}", crate::common::AUTH_TOKEN));
    assert_eq!(auth, format!("Basic {expected}"));

    // Twilio delivers the same MessageSid again: no answer, no second send.
    let twiml = app.post_fields(&form).await.text().await.expect("body");
    assert!(messages(&twiml).is_empty(), "{twiml}");
    // A fast answer after it is the webhook's own.
    let text = reply(&app, "cardiologists in Pune").await;
    assert!(text.contains("Asha Rao"), "{text}");
    assert_eq!(twilio.calls(), 1);
}

#[tokio::test]
async fn a_429_is_retried() {
    let (fake, url) = spawn_fake().await;
    fake.set_chat(ChatMode::Slow(
        Duration::from_millis(600),
        ORTHOPEDICS.to_owned(),
    ));
    let (twilio, twilio_url) = spawn_fake_twilio().await;
    *twilio.statuses.lock().expect("lock") = vec![429, 429];
    let app = app_with(late_config(&url, &twilio_url)).await;
    let twiml = app.send(SENDER, UNREAD).await.text().await.expect("body");
    assert!(messages(&twiml).is_empty(), "{twiml}");
    twilio.wait_for_accepted(1).await;
    assert_eq!(twilio.calls(), 3);
    assert!(field(&twilio.accepted()[0], "Body").contains("Lata Iyer"));
}

#[tokio::test]
async fn a_pending_reply_is_sent_after_a_restart() {
    let (fake, url) = spawn_fake().await;
    fake.set_chat(ChatMode::Slow(
        Duration::from_millis(600),
        ORTHOPEDICS.to_owned(),
    ));
    let (twilio, twilio_url) = spawn_fake_twilio().await;
    *twilio.then.lock().expect("lock") = 503;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config_in(&dir);
    late_config(&url, &twilio_url)(&mut config);
    let app = spawn_app_in(dir, config.clone(), false).await;
    let twiml = app.send(SENDER, UNREAD).await.text().await.expect("body");
    assert!(messages(&twiml).is_empty(), "{twiml}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while twilio.calls() == 0 {
        assert!(Instant::now() < deadline, "nothing sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Down while Twilio refuses: the reply stays in the outbox.
    let dir = app.stop().await;
    assert!(twilio.accepted().is_empty());
    *twilio.then.lock().expect("lock") = 201;
    let _app = spawn_app_in(dir, config, false).await;
    twilio.wait_for_accepted(1).await;
    assert!(field(&twilio.accepted()[0], "Body").contains("Lata Iyer"));
}

#[tokio::test]
async fn with_a_shared_store_a_profile_is_embedded_once_for_every_instance() {
    let Some(redis) = crate::common::redis::RedisServer::start(
        "with_a_shared_store_a_profile_is_embedded_once_for_every_instance",
    ) else {
        return;
    };
    let (fake, url) = spawn_fake().await;
    let shared = |c: &mut Config| {
        with_embeddings(&url)(c);
        c.storage.backend = roster::config::Backend::Redis;
        c.storage.redis_url = Secret::new(redis.url());
    };
    let a = app_with(shared).await;
    let metrics = wait_for_vectors(&a, 6).await;
    assert!(
        metrics.contains("roster_embeddings_profiles_embedded_total 6"),
        "{metrics}"
    );
    let before = fake.requests("embeddings").len();
    // Another instance, with a data dir of its own, embeds nothing.
    let b = app_with(shared).await;
    let metrics = wait_for_vectors(&b, 6).await;
    assert!(
        !metrics.contains("roster_embeddings_profiles_embedded_total 6"),
        "{metrics}"
    );
    assert_eq!(fake.requests("embeddings").len(), before, "embedded again");
    let vectors: i64 = redis.query(redis::cmd("HLEN").arg("roster:vectors:bag-of-words"));
    assert_eq!(vectors, 6);
    // And it searches by meaning with them.
    let (status, body) = b.send_text(SENDER, "someone for my breakup").await;
    assert_eq!(status, 200);
    assert!(messages(&body).join("\n").contains("Gauri Apte"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_shared_store_a_late_reply_left_by_a_stopped_instance_is_sent_by_another() {
    let Some(redis) = crate::common::redis::RedisServer::start(
        "with_a_shared_store_a_late_reply_left_by_a_stopped_instance_is_sent_by_another",
    ) else {
        return;
    };
    let (fake, url) = spawn_fake().await;
    fake.set_chat(ChatMode::Slow(
        Duration::from_millis(600),
        ORTHOPEDICS.to_owned(),
    ));
    let (twilio, twilio_url) = spawn_fake_twilio().await;
    *twilio.then.lock().expect("lock") = 503;
    let shared = |c: &mut Config| {
        late_config(&url, &twilio_url)(c);
        c.storage.backend = roster::config::Backend::Redis;
        c.storage.redis_url = Secret::new(redis.url());
        c.twilio.outbox_takeover = Duration::from_secs(1);
    };
    let a = app_with(shared).await;
    let b = app_with(shared).await;
    let form = crate::common::whatsapp_form(SENDER, UNREAD, &a.new_sid());
    let twiml = a.post_fields(&form).await.text().await.expect("body");
    assert!(messages(&twiml).is_empty(), "{twiml}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while twilio.calls() == 0 {
        assert!(Instant::now() < deadline, "nothing sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A stops while Twilio refuses; the reply stays in the stream, and a
    // redelivery to B neither answers nor queues it again.
    a.stop().await;
    let twiml = b.post_fields(&form).await.text().await.expect("body");
    assert!(messages(&twiml).is_empty(), "{twiml}");
    assert!(twilio.accepted().is_empty());
    *twilio.then.lock().expect("lock") = 201;
    // B takes it over once A has left it alone for `outbox_takeover`.
    twilio.wait_for_accepted(1).await;
    assert!(field(&twilio.accepted()[0], "Body").contains("Lata Iyer"));
    let pending: i64 = redis.query(redis::cmd("XLEN").arg("roster:outbox"));
    assert_eq!(pending, 0, "sent and removed");
    // Sent once: nothing more arrives while B keeps scanning.
    let calls = twilio.calls();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(twilio.calls(), calls);
    assert_eq!(twilio.accepted().len(), 1);
}
