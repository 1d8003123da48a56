//! Data written before the storage layout changed must still load (issue 13,
//! section 2): a data dir and an export made by the release binary of the
//! main of that time, committed under tests/fixtures/ (how, and every value
//! expected here: tests/fixtures/make_v1_fixtures.sh).
//!
//! Each test opens a copy of the data dir in a temp dir, never the
//! committed one, with the clock at the moment the fixture was recorded, and
//! checks that every session, quota and remembered reply is there and that
//! the next message continues the conversation; one imports the export.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::process::roster_command;
use crate::common::*;
use roster::clock::ManualClock;
use roster::config::Config;
use serde::Deserialize;
use serde_json::Value;

const SANJAY: &str = "+919845000007";
const ASHA: &str = "+919845000001";
const VIKRAM: &str = "+919845000002";
const MEERA: &str = "+919845000003";

/// Per phone: messages and searches in its session, history entries, and
/// the messages and searches left (of 50 and 3); from the table in
/// make_v1_fixtures.sh.
const EXPECTED: [(&str, u64, u64, usize, u64, u64); 4] = [
    (SANJAY, 1, 1, 1, 49, 2),
    (ASHA, 3, 1, 3, 47, 2),
    (VIKRAM, 4, 1, 4, 46, 2),
    (MEERA, 3, 3, 3, 45, 0),
];

/// The answered MessageSids, whose replies are remembered.
const REMEMBERED: usize = 11;

/// tests/fixtures/v1-recorded.json.
#[derive(Debug, Deserialize)]
struct Recorded {
    recorded_at_ms: u64,
    exchanges: Vec<Exchange>,
    sessions: BTreeMap<String, Value>,
    limits: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
struct Exchange {
    from: String,
    body: String,
    sid: String,
    twiml: String,
    remembered: bool,
}

fn recorded() -> Recorded {
    let text = std::fs::read_to_string(fixture("v1-recorded.json")).expect("v1-recorded.json");
    serde_json::from_str(&text).expect("v1-recorded.json parses")
}

/// The configuration the fixture was served with (make_v1_fixtures.sh).
fn v1_config(dir: &Path) -> Config {
    let mut config = test_config(dir);
    config.directory.members_csv = fixture("members-v1.csv");
    config.directory.synonyms_csv = dir.join("no-synonyms.csv");
    config.directory.org_name = "Test Network".to_owned();
    config.limits.searches_per_hour = 3;
    config.admin.token = ADMIN_TOKEN.to_owned();
    config
}

/// Copies the directory `from` into `to`, file by file.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the fixture dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a fixture file");
        }
    }
}

/// Serves `dir` (whose data dir is `dir/state`) with the clock at the
/// moment of recording.
async fn serve_at_recording(dir: tempfile::TempDir, recorded: &Recorded) -> TestApp {
    let config = v1_config(dir.path());
    spawn_app_at(
        dir,
        config,
        false,
        ManualClock::new(recorded.recorded_at_ms),
    )
    .await
}

/// The app over a copy of tests/fixtures/datadir-v1.
async fn open_old_data_dir(recorded: &Recorded) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&fixture("datadir-v1"), &dir.path().join("state"));
    serve_at_recording(dir, recorded).await
}

/// The `<Message>` texts of sending `body` from `from` with a new MessageSid.
async fn say(app: &TestApp, from: &str, body: &str) -> String {
    let sid = format!("SMafterv1{}", app.new_sid());
    let response = app.post_fields(&whatsapp_form(from, body, &sid)).await;
    assert_eq!(response.status(), 200, "{body}");
    response.text().await.expect("body")
}

/// Every session is there as it was recorded, and so is each quota.
async fn assert_sessions_and_quotas(app: &TestApp, recorded: &Recorded) {
    for (phone, messages, searches, history, messages_left, searches_left) in EXPECTED {
        let response = app.admin_get(&format!("/admin/sessions/{phone}")).await;
        assert_eq!(response.status(), 200, "{phone}'s session is there");
        let session: Value = response.json().await.expect("JSON");
        let before = &recorded.sessions[phone];
        for field in [
            "userId",
            "memberName",
            "role",
            "conversationHistory",
            "messageCount",
            "searchCount",
            "createdAt",
            "lastActivity",
        ] {
            assert_eq!(session[field], before[field], "{phone}: {field}");
        }
        assert_eq!(session["messageCount"], messages, "{phone}");
        assert_eq!(session["searchCount"], searches, "{phone}");
        let entries = session["conversationHistory"].as_array().expect("history");
        assert_eq!(entries.len(), history, "{phone}");

        let limits = app.admin_json(&format!("/admin/limits/{phone}")).await;
        let was = &recorded.limits[phone]["limits"];
        for (what, left, limit) in [
            ("messages", messages_left, 50),
            ("searches", searches_left, 3),
        ] {
            let now = &limits["limits"][what];
            assert_eq!(now["remaining"], left, "{phone}: {what} left");
            assert_eq!(now["limit"], limit, "{phone}: {what} limit");
            assert_eq!(now["remaining"], was[what]["remaining"], "{phone}: {what}");
        }
    }
    let stats = app.admin_json("/admin/stats").await;
    assert_eq!(stats["sessions"]["storedSessions"], 4, "{stats}");
}

/// The last search of each session, as the next follow-up will read it.
fn assert_last_searches(app_sessions: &BTreeMap<&str, Value>) {
    let last_search = |phone: &str| -> Value {
        app_sessions[phone]["conversationHistory"]
            .as_array()
            .expect("history")
            .iter()
            .rev()
            .find(|e| ["search", "refine", "more"].contains(&e["intent"].as_str().unwrap_or("")))
            .cloned()
            .unwrap_or_else(|| panic!("{phone} has a last search"))
    };
    let sanjay = last_search(SANJAY);
    assert_eq!(sanjay["query"], "Find doctors in Bangalore");
    assert_eq!(sanjay["page"], 0);
    assert_eq!(sanjay["resultCount"], 7);
    assert_eq!(sanjay["resultIds"].as_array().map(Vec::len), Some(5));
    let vikram = last_search(VIKRAM);
    assert_eq!(vikram["query"], "more");
    assert_eq!(vikram["page"], 1);
    assert_eq!(vikram["resultIds"].as_array().map(Vec::len), Some(2));
    let asha = last_search(ASHA);
    assert_eq!(asha["query"], "lawyers in Mumbai");
    assert_eq!(asha["resultIds"], serde_json::json!(["T004"]));
    let meera = last_search(MEERA);
    assert_eq!(meera["query"], "doctors in Bengaluru");
}

async fn sessions_of(app: &TestApp) -> BTreeMap<&'static str, Value> {
    let mut sessions = BTreeMap::new();
    for phone in [SANJAY, ASHA, VIKRAM, MEERA] {
        sessions.insert(
            phone,
            app.admin_json(&format!("/admin/sessions/{phone}")).await,
        );
    }
    sessions
}

#[test]
fn the_recording_is_the_one_the_script_describes() {
    let recorded = recorded();
    assert_eq!(recorded.exchanges.len(), 13);
    assert_eq!(
        recorded.exchanges.iter().filter(|e| e.remembered).count(),
        REMEMBERED
    );
    assert_eq!(recorded.sessions.len(), 4);
    let refused = &recorded.exchanges[11];
    assert!(
        refused.twiml.contains("limit of 3 searches per hour"),
        "{}",
        refused.twiml
    );
    assert!(recorded.exchanges[12].twiml.ends_with("<Response/>"));
    for name in ["datadir-v1/db", "datadir-v1/conf", "export-v1.jsonl"] {
        assert!(fixture(name).is_file(), "{name} is committed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_data_dir_has_every_session_quota_and_last_search() {
    let recorded = recorded();
    let app = open_old_data_dir(&recorded).await;
    assert_sessions_and_quotas(&app, &recorded).await;
    assert_last_searches(&sessions_of(&app).await);
    let listed = app.admin_json("/admin/sessions").await;
    let mut phones = listed_phones(&listed);
    phones.sort();
    assert_eq!(phones, [ASHA, VIKRAM, MEERA, SANJAY]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_data_dir_answers_a_redelivery_with_the_reply_it_remembered() {
    let recorded = recorded();
    let app = open_old_data_dir(&recorded).await;
    let remembered: Vec<&Exchange> = recorded.exchanges.iter().filter(|e| e.remembered).collect();
    assert_eq!(remembered.len(), REMEMBERED);
    for exchange in remembered {
        let form = whatsapp_form(&exchange.from, &exchange.body, &exchange.sid);
        let response = app.post_fields(&form).await;
        assert_eq!(response.status(), 200, "{}", exchange.sid);
        let twiml = response.text().await.expect("body");
        assert_eq!(
            twiml, exchange.twiml,
            "{} ({:?} from {}) is answered as before",
            exchange.sid, exchange.body, exchange.from
        );
    }
    // Redeliveries count nothing: every session and quota is unchanged.
    assert_sessions_and_quotas(&app, &recorded).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_message_continues_the_old_conversation() {
    let recorded = recorded();
    let app = open_old_data_dir(&recorded).await;
    continues_the_conversation(&app, &recorded).await;
    app.stop().await;
}

/// Sanjay's "more" lists page 2 of his stored search, without spending a
/// search; Vikram's "1" is the first of the page he was shown last; Meera's
/// next search is refused in silence, as her refusal notice was sent.
async fn continues_the_conversation(app: &TestApp, recorded: &Recorded) {
    let first_page = messages(&recorded.exchanges[0].twiml).join("\n");
    let page_two_names = ["Priya Menon", "Farhan Ali"];
    for name in page_two_names {
        assert!(!first_page.contains(name), "{name} is not on page 1");
    }
    let more = messages(&say(app, SANJAY, "more").await).join("\n");
    for (n, name) in page_two_names.iter().enumerate() {
        assert!(
            more.contains(&format!("{}. *{name}*", n + 1)),
            "page 2 lists {name}: {more}"
        );
    }
    let limits = app.admin_json(&format!("/admin/limits/{SANJAY}")).await;
    assert_eq!(limits["limits"]["searches"]["remaining"], 2, "{limits}");
    assert_eq!(limits["limits"]["messages"]["remaining"], 48, "{limits}");
    let session = app.admin_json(&format!("/admin/sessions/{SANJAY}")).await;
    assert_eq!(session["messageCount"], 2);
    assert_eq!(session["conversationHistory"][1]["page"], 1);

    let vikram_page = &recorded.sessions[VIKRAM]["conversationHistory"][1]["resultIds"];
    let first_on_page = vikram_page[0].as_str().expect("an id");
    let name = match first_on_page {
        "T010" => "Priya Menon",
        "T011" => "Farhan Ali",
        other => panic!("page 2 of doctors holds {other}"),
    };
    let details = messages(&say(app, VIKRAM, "1").await).join("\n");
    assert!(details.starts_with(&format!("*{name}*")), "{details}");

    let silent = say(app, MEERA, "pediatricians in Bengaluru").await;
    assert!(silent.ends_with("<Response/>"), "{silent}");
    let limits = app.admin_json(&format!("/admin/limits/{MEERA}")).await;
    assert_eq!(limits["limits"]["searches"]["remaining"], 0, "{limits}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_export_imports_into_a_fresh_data_dir() {
    let recorded = recorded();
    let fresh = tempfile::tempdir().expect("temp dir");
    let mut import = roster_command(fresh.path());
    import.arg("import").arg(fixture("export-v1.jsonl"));
    let out = import.output().expect("roster import runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("imported 4 sessions and 9 rate-limit entries"),
        "{stdout}"
    );

    let app = serve_at_recording(fresh, &recorded).await;
    assert_sessions_and_quotas(&app, &recorded).await;
    assert_last_searches(&sessions_of(&app).await);
    // An export carries each session's latest reply: a redelivery of the
    // last message of each phone is still recognised.
    for sid_index in [0, 3, 7, 10] {
        let exchange = &recorded.exchanges[sid_index];
        let form = whatsapp_form(&exchange.from, &exchange.body, &exchange.sid);
        let twiml = app.post_fields(&form).await.text().await.expect("body");
        assert_eq!(twiml, exchange.twiml, "{}", exchange.sid);
    }
    assert_sessions_and_quotas(&app, &recorded).await;
    continues_the_conversation(&app, &recorded).await;
    app.stop().await;
}
