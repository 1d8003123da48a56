//! Opt-out over the real webhook: STOP, silence, START; across restarts,
//! a crash, export and import; in `/metrics` and `roster sessions show`.

use crate::common::process::{RosterProcess, roster_command};
use crate::common::*;

const ACK: &str = "You won't get messages from Test Network any more. Send START to resume.";

async fn reply(app: &TestApp, from: &str, body: &str) -> Vec<String> {
    let (status, twiml) = app.send_text(from, body).await;
    assert_eq!(status, 200, "{twiml}");
    messages(&twiml)
}

/// Like [`reply`], with a MessageSid of its own: a restarted [`TestApp`]
/// hands out the same ones again.
async fn reply_as(app: &TestApp, from: &str, body: &str, sid: &str) -> Vec<String> {
    let response = app.post_fields(&whatsapp_form(from, body, sid)).await;
    assert_eq!(response.status(), 200);
    messages(&response.text().await.unwrap())
}

async fn scrape(app: &TestApp) -> String {
    app.client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

fn outcome(text: &str, outcome: &str) -> f64 {
    metric(
        text,
        &format!("roster_webhook_requests_total{{outcome=\"{outcome}\"}}"),
    )
}

#[tokio::test]
async fn stop_is_acknowledged_then_nothing_is_sent_until_start() {
    let app = spawn_app().await;
    assert_eq!(reply(&app, MEMBER, "STOP").await, [ACK]);

    let (status, twiml) = app.send_text(MEMBER, "Find doctors in Bangalore").await;
    assert_eq!(status, 200);
    assert!(messages(&twiml).is_empty(), "silence: {twiml}");
    assert!(twiml.contains("<Response/>"), "{twiml}");
    assert!(reply(&app, MEMBER, "help").await.is_empty());
    assert!(
        reply(&app, MEMBER, "STOP").await.is_empty(),
        "acknowledged once"
    );

    let welcome = reply(&app, MEMBER, "Start").await.join("\n");
    assert!(welcome.starts_with("Welcome back!"), "{welcome}");
    assert!(welcome.contains("Test Network"), "{welcome}");
    assert!(
        welcome.contains("doctors in Bengaluru"),
        "a hint: {welcome}"
    );

    let answer = reply(&app, MEMBER, "Find doctors in Bangalore")
        .await
        .join("\n");
    assert!(
        answer.starts_with("Found 3 doctors in Bengaluru"),
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_keyword_in_any_case_opts_out_but_not_within_a_sentence() {
    let app = spawn_app().await;
    let keywords = [
        "STOP",
        "  stop!  ",
        "StopAll",
        "unsubscribe.",
        "CANCEL",
        "End",
        "quit",
    ];
    for (n, keyword) in keywords.iter().enumerate() {
        // Strangers may opt out too, so each keyword gets its own phone.
        let phone = format!("+9199000001{n:02}");
        assert_eq!(reply(&app, &phone, keyword).await, [ACK], "{keyword:?}");
        assert!(reply(&app, &phone, "hi").await.is_empty(), "{keyword:?}");
    }
    for sentence in ["please stop", "stop doctors", "the end?"] {
        let answer = reply(&app, MEMBER, sentence).await.join("\n");
        assert_ne!(answer, ACK, "{sentence:?}");
        assert!(!answer.is_empty(), "{sentence:?}");
    }
    assert!(!reply(&app, MEMBER, "hi").await.is_empty(), "not opted out");
    app.stop().await;
}

#[tokio::test]
async fn start_without_an_opt_out_is_an_ordinary_message() {
    let app = spawn_app().await;
    let help = reply(&app, MEMBER, "START").await.join("\n");
    assert!(!help.contains("Welcome back"), "{help}");
    assert!(!help.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_stranger_opts_out_once_and_then_hears_nothing() {
    let app = spawn_app().await;
    let stop = whatsapp_form(STRANGER, "stop", &app.new_sid());
    let first = app.post_fields(&stop).await.text().await.unwrap();
    assert_eq!(messages(&first), [ACK]);
    // Twilio's redelivery of the same message gets the same answer.
    let again = app.post_fields(&stop).await.text().await.unwrap();
    assert_eq!(again, first);
    // Without the opt-out a stranger would be told how to register.
    assert!(reply(&app, STRANGER, "hello").await.is_empty());
    assert!(reply(&app, STRANGER, "stop").await.is_empty());

    let welcome = reply(&app, STRANGER, "UNSTOP").await.join("\n");
    assert!(welcome.starts_with("Welcome back!"), "{welcome}");
    assert!(
        welcome.contains("isn't in the member directory"),
        "{welcome}"
    );
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_opt_outs() {
    let app = spawn_app().await;
    let before = scrape(&app).await;
    for name in ["opted-out", "opted-in", "silenced-opted-out"] {
        assert_eq!(outcome(&before, name), 0.0, "{name}");
    }
    assert_eq!(metric(&before, "roster_opted_out_phones"), 0.0);

    reply(&app, MEMBER, "stop").await;
    reply(&app, STRANGER, "stop").await;
    reply(&app, MEMBER, "hi").await;
    reply(&app, STRANGER, "hi").await;
    reply(&app, STRANGER, "hi").await;
    let during = scrape(&app).await;
    assert_eq!(outcome(&during, "opted-out"), 2.0);
    assert_eq!(outcome(&during, "silenced-opted-out"), 3.0);
    assert_eq!(metric(&during, "roster_opted_out_phones"), 2.0);

    reply(&app, MEMBER, "start").await;
    let after = scrape(&app).await;
    assert_eq!(outcome(&after, "opted-in"), 1.0);
    assert_eq!(metric(&after, "roster_opted_out_phones"), 1.0);
    app.stop().await;
}

#[tokio::test]
async fn the_opt_out_survives_a_restart_and_shows_in_the_admin_api() {
    let app = spawn_admin_app().await;
    reply(&app, MEMBER, "Find doctors in Bangalore").await;
    reply(&app, MEMBER, "STOP").await;
    reply(&app, STRANGER, "STOP").await;
    let dir = app.stop().await;

    let mut config = test_config(dir.path());
    config.admin.token = ADMIN_TOKEN.to_owned();
    let app = spawn_app_in(dir, config, false).await;
    let search = "Find doctors in Bangalore";
    assert!(
        reply_as(&app, MEMBER, search, "SMrestart1")
            .await
            .is_empty()
    );
    assert!(
        reply_as(&app, STRANGER, "hi", "SMrestart2")
            .await
            .is_empty()
    );

    let member = app.admin_json(&format!("/admin/sessions/{MEMBER}")).await;
    assert_eq!(member["optedOut"], true, "{member}");
    assert!(member["optedOutAt"].as_u64().is_some(), "{member}");
    assert_eq!(member["messageCount"], 1, "only the search was an exchange");
    let stranger = app.admin_get(&format!("/admin/sessions/{STRANGER}")).await;
    assert_eq!(
        stranger.status(),
        200,
        "an opt-out is shown without a session"
    );
    let stranger: serde_json::Value = stranger.json().await.unwrap();
    assert_eq!(stranger["optedOut"], true, "{stranger}");
    assert_eq!(stranger["phoneNumber"], STRANGER);

    reply_as(&app, MEMBER, "START", "SMrestart3").await;
    let member = app.admin_json(&format!("/admin/sessions/{MEMBER}")).await;
    assert_eq!(member["optedOut"], false, "{member}");
    assert!(member["optedOutAt"].is_null(), "{member}");
    app.stop().await;
}

/// Strict mode: an acknowledged STOP survives `kill -9`.
#[tokio::test]
async fn an_acknowledged_stop_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut command = roster_command(dir.path());
        command
            .arg("serve")
            .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
            .env("ROSTER_STORAGE__DURABILITY", "strict")
            // A long periodic flush: only the strict group commit can save us.
            .env("ROSTER_STORAGE__FLUSH_EVERY", "1h");
        RosterProcess::start(command)
    };
    let server = start();
    let fields = whatsapp_form(MEMBER, "STOP", "SMoptout000000000000000000000001");
    let response = server.post_signed(&fields).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Send START"));
    server.crash();

    let server = start();
    let fields = whatsapp_form(MEMBER, "hi", "SMoptout000000000000000000000002");
    let twiml = server.post_signed(&fields).await.text().await.unwrap();
    assert!(messages(&twiml).is_empty(), "still opted out: {twiml}");
    let (status, _) = server.terminate();
    assert_eq!(status.code(), Some(0));
}

fn cli(app: &TestApp, args: &[&str]) -> std::process::Command {
    let mut command = roster_command(app.dir.path());
    command
        .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        .env("ROSTER_ADMIN__TOKEN", ADMIN_TOKEN)
        .args(args)
        .args(["--server", &app.url("")]);
    command
}

fn output(mut command: std::process::Command) -> (i32, String, String) {
    let out = command.output().expect("roster runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_show_says_whether_the_phone_opted_out() {
    let app = spawn_admin_app().await;
    reply(&app, MEMBER, "hi").await;
    let (code, stdout, stderr) = output(cli(&app, &["sessions", "show", MEMBER]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("opted out: no"), "{stdout}");

    reply(&app, MEMBER, "stop").await;
    reply(&app, STRANGER, "stop").await;
    let (code, stdout, stderr) = output(cli(&app, &["sessions", "show", MEMBER]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Sanjay Gupta"), "{stdout}");
    assert!(stdout.contains("opted out: yes, since "), "{stdout}");
    let (code, stdout, stderr) = output(cli(&app, &["sessions", "show", STRANGER]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("no live session"), "{stdout}");
    assert!(stdout.contains("opted out: yes, since "), "{stdout}");
    let (code, stdout, _) = output(cli(&app, &["sessions", "show", STRANGER, "--json"]));
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["optedOut"], true, "{json}");
    let (code, _, stderr) = output(cli(&app, &["sessions", "show", ASHA]));
    assert_eq!(code, 1, "no session and no opt-out");
    assert!(stderr.contains("no live session"), "{stderr}");

    // On a stopped data dir, read directly.
    let dir = app.stop().await;
    let mut offline = roster_command(dir.path());
    offline.args(["sessions", "show", STRANGER]);
    let (code, stdout, stderr) = output(offline);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("opted out: yes, since "), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_carries_opt_outs() {
    let app = spawn_admin_app().await;
    reply(&app, MEMBER, "Find doctors in Bangalore").await;
    reply(&app, MEMBER, "stop").await;
    reply(&app, STRANGER, "stop").await;
    reply(&app, ASHA, "stop").await;
    reply(&app, ASHA, "start").await;
    let before = app.admin_json(&format!("/admin/sessions/{MEMBER}")).await;

    let export = app.dir.path().join("backup.jsonl");
    let (code, _, stderr) = output(cli(&app, &["export", "--out", export.to_str().unwrap()]));
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&export).unwrap();
    let opt_outs: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|record| record["type"] == "optout")
        .collect();
    let phones: Vec<&str> = opt_outs
        .iter()
        .map(|r| r["phone"].as_str().unwrap())
        .collect();
    assert_eq!(phones, [MEMBER, STRANGER], "ASHA opted back in: {text}");
    assert_eq!(opt_outs[0]["optedOutAt"], before["optedOutAt"]);
    let _dir = app.stop().await;

    let fresh = tempfile::tempdir().unwrap();
    let mut import = roster_command(fresh.path());
    import.arg("import").arg(&export);
    let (code, stdout, stderr) = output(import);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("and 2 opt-outs"), "{stdout}");

    let mut config = test_config(fresh.path());
    config.admin.token = ADMIN_TOKEN.to_owned();
    let restored = spawn_app_in(fresh, config, false).await;
    let after = restored
        .admin_json(&format!("/admin/sessions/{MEMBER}"))
        .await;
    assert_eq!(after["optedOutAt"], before["optedOutAt"]);
    assert!(
        reply_as(&restored, MEMBER, "hi", "SMimported1")
            .await
            .is_empty()
    );
    assert!(
        reply_as(&restored, STRANGER, "hi", "SMimported2")
            .await
            .is_empty()
    );
    assert!(
        !reply_as(&restored, ASHA, "hi", "SMimported3")
            .await
            .is_empty()
    );
    let metrics = scrape(&restored).await;
    assert_eq!(metric(&metrics, "roster_opted_out_phones"), 2.0);
    restored.stop().await;
}
