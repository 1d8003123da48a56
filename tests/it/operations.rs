//! The operator's tools end to end: `send`, `chat`, the admin CLI, metrics,
//! directory reload, export/import and check-directory, against real
//! servers on 127.0.0.1:0.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::common::process::{RosterProcess, roster_command};
use crate::common::*;
use serde_json::Value;

/// A `roster` CLI command aimed at `app`, with the test's tokens.
fn cli(app: &TestApp, args: &[&str]) -> Command {
    let mut command = roster_command(app.dir.path());
    command
        .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        .env("ROSTER_ADMIN__TOKEN", ADMIN_TOKEN)
        .args(args)
        .args(["--server", &app.url("")]);
    command
}

fn output(mut command: Command) -> (i32, String, String) {
    let out = command.output().expect("roster runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_prints_the_reply_and_fails_on_http_errors() {
    let app = spawn_admin_app().await;
    let (code, stdout, stderr) = output(cli(
        &app,
        &["send", "--as", MEMBER, "Find doctors in Bangalore"],
    ));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Asha Rao"), "{stdout}");
    assert!(stdout.contains("╭─"), "shown as a bubble: {stdout}");

    let mut wrong = cli(&app, &["send", "--as", MEMBER, "hi"]);
    wrong.env("TWILIO_AUTH_TOKEN", "not-the-token");
    let (code, _, stderr) = output(wrong);
    assert_ne!(code, 0);
    assert!(stderr.contains("403"), "{stderr}");

    let mut nobody = roster_command(app.dir.path());
    nobody.args([
        "send",
        "--as",
        MEMBER,
        "hi",
        "--server",
        "http://127.0.0.1:9",
    ]);
    let (code, _, stderr) = output(nobody);
    assert_ne!(code, 0);
    assert!(stderr.contains("no roster server answers"), "{stderr}");
    app.stop().await;
}

fn run_with_stdin(mut command: Command, input: &str) -> (i32, String, String) {
    command.stdin(Stdio::piped());
    let mut child = command.spawn().expect("roster starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("roster exits");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_repl_reads_piped_lines_and_its_commands() {
    let app = spawn_admin_app().await;
    let script = format!(
        "hi\n/as {ASHA}\nFind doctors in Chennai\n/reset\n/as nonsense\n/quit\nnever sent\n"
    );
    let (code, stdout, stderr) = run_with_stdin(cli(&app, &["chat", "--as", MEMBER]), &script);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Hello Sanjay"), "{stdout}");
    assert!(
        stdout.contains(&format!("now chatting as {ASHA}")),
        "{stdout}"
    );
    assert!(stdout.contains("Meera Nair"), "{stdout}");
    assert!(stdout.contains("session dropped"), "{stdout}");
    assert!(stdout.contains("not a"), "a bad /as is explained: {stdout}");
    let asha = app.admin_get(&format!("/admin/sessions/{ASHA}")).await;
    assert_eq!(asha.status(), 404, "/reset dropped Asha's session");
    let sanjay = app.admin_json(&format!("/admin/sessions/{MEMBER}")).await;
    assert_eq!(sanjay["messageCount"], 1, "nothing after /quit was sent");
    app.stop().await;
}

#[test]
fn chat_local_needs_nothing_else_running() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = roster_command(dir.path());
    command.args(["chat", "--local"]);
    let (code, stdout, stderr) = run_with_stdin(command, "doctors in Bangalore\n");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("Chatting as +919845000001"),
        "the first active member: {stdout}"
    );
    assert!(stdout.contains("Found 3 doctors in Bengaluru"), "{stdout}");
    assert!(
        !dir.path().join("state").exists(),
        "--local keeps its state in a temp dir"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_cli_shows_lists_and_deletes() {
    let app = spawn_admin_app().await;
    app.send(MEMBER, "Find doctors in Bangalore").await;
    app.send(ASHA, "hi").await;

    let (code, stdout, stderr) = output(cli(&app, &["sessions", "list"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("PHONE") && stdout.contains(MEMBER) && stdout.contains("Asha Rao"),
        "{stdout}"
    );

    let (code, stdout, _) = output(cli(&app, &["sessions", "list", "--json"]));
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(list["sessions"].as_array().unwrap().len(), 2);

    let (code, stdout, _) = output(cli(&app, &["sessions", "show", "0091 98450 00007"]));
    assert_eq!(code, 0);
    assert!(stdout.contains("Sanjay Gupta (T007, admin)"), "{stdout}");
    assert!(stdout.contains("\"Find doctors in Bangalore\""), "{stdout}");
    assert!(stdout.contains("messages: 49 of 50 left"), "{stdout}");

    let (code, stdout, _) = output(cli(&app, &["sessions", "show", MEMBER, "--json"]));
    assert_eq!(code, 0);
    let session: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(session["messageCount"], 1);

    let (code, stdout, _) = output(cli(&app, &["limits", "show", MEMBER]));
    assert_eq!(code, 0);
    assert!(stdout.contains("searches: 29 of 30 left"), "{stdout}");

    let (code, stdout, _) = output(cli(&app, &["stats"]));
    assert_eq!(code, 0);
    assert!(stdout.contains("sessions stored:      2"), "{stdout}");
    assert!(stdout.contains("members:              7"), "{stdout}");

    let (code, stdout, _) = output(cli(&app, &["sessions", "delete", ASHA]));
    assert_eq!(code, 0, "{stdout}");
    let (code, _, stderr) = output(cli(&app, &["sessions", "show", ASHA]));
    assert_eq!(code, 1);
    assert!(stderr.contains("no live session"), "{stderr}");

    let mut no_token = cli(&app, &["stats"]);
    no_token.env_remove("ROSTER_ADMIN__TOKEN");
    let (code, _, stderr) = output(no_token);
    assert_ne!(code, 0);
    assert!(stderr.contains("admin token"), "{stderr}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_server_the_cli_reads_the_data_dir_or_says_it_is_locked() {
    let app = spawn_admin_app().await;
    app.send(MEMBER, "hi").await;
    let url = app.url("");
    let dir = app.stop().await;

    let offline = |args: &[&str]| {
        let mut command = roster_command(dir.path());
        command.args(args).args(["--server", &url]);
        output(command)
    };
    let (code, stdout, stderr) = offline(&["sessions", "show", MEMBER]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Sanjay Gupta"), "{stdout}");
    let (code, stdout, _) = offline(&["stats", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap()["sessions"]["storedSessions"],
        1
    );

    let held = sled::open(dir.path().join("state")).unwrap();
    let (code, _, stderr) = offline(&["sessions", "list"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("locked by a running roster") && stderr.contains("no server answers"),
        "{stderr}"
    );
    drop(held);
}

#[test]
fn check_directory_reports_every_rejected_row() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/members.csv");
    let mut command = roster_command(dir.path());
    command.arg("check-directory").arg(&good);
    let (code, stdout, _) = output(command);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("200 members loaded") && stdout.contains("0 rows rejected"),
        "{stdout}"
    );

    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "name,phone\nAsha,+919845000001\n,+919845000002\nRavi,12\nLata,+919845000001\n",
    )
    .unwrap();
    let mut command = roster_command(dir.path());
    command.arg("check-directory").arg(&bad);
    let (code, stdout, _) = output(command);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("bad.csv:3: missing required field `name`"),
        "{stdout}"
    );
    assert!(stdout.contains("bad.csv:4: bad phone"), "{stdout}");
    assert!(stdout.contains("bad.csv:5: duplicate phone"), "{stdout}");
    assert!(
        stdout.contains("1 members loaded") && stdout.contains("3 rows rejected"),
        "{stdout}"
    );

    let mut command = roster_command(dir.path());
    command
        .arg("check-directory")
        .arg(dir.path().join("missing.csv"));
    let (code, _, stderr) = output(command);
    assert_eq!(code, 2);
    assert!(stderr.contains("missing.csv"), "{stderr}");
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_outcome() {
    let app = spawn_app_with(|c| {
        c.limits.messages_per_hour = 3;
        c.limits.searches_per_hour = 1;
    })
    .await;
    let scrape = || async {
        app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = scrape().await;
    assert_eq!(
        metric(
            &before,
            r#"roster_webhook_requests_total{outcome="answered"}"#
        ),
        0.0
    );
    assert_eq!(metric(&before, "roster_directory_members"), 7.0);

    app.send(MEMBER, "doctors in Bengaluru").await; // answered (the one search)
    app.send(MEMBER, "lawyers in Mumbai").await; // limited-searches
    let duplicate = whatsapp_form(MEMBER, "hi", "SMmetrics000000000000000000000001");
    app.post_fields(&duplicate).await; // answered (3rd message)
    app.post_fields(&duplicate).await; // duplicate
    app.send(MEMBER, "hi").await; // limited-messages
    app.send(STRANGER, "hi").await; // refused-stranger
    app.post_raw(b"From=whatsapp%3A%2B919845000007".to_vec(), Some("bad"))
        .await; // bad-signature
    app.post_raw(b"Body=%FF".to_vec(), None).await; // bad-request

    let after = scrape().await;
    for (outcome, count) in [
        ("answered", 2.0),
        ("limited-searches", 1.0),
        ("duplicate", 1.0),
        ("limited-messages", 1.0),
        ("refused-stranger", 1.0),
        ("bad-signature", 1.0),
        ("bad-request", 1.0),
    ] {
        let series = format!("roster_webhook_requests_total{{outcome=\"{outcome}\"}}");
        assert_eq!(metric(&after, &series), count, "{outcome}");
    }
    assert_eq!(metric(&after, "roster_webhook_latency_seconds_count"), 8.0);
    assert_eq!(metric(&after, "roster_sessions_live"), 1.0);
    assert!(
        metric(&after, "roster_durable_flush_seconds_count") >= 2.0,
        "strict mode flushes"
    );
    assert!(after.contains("roster_session_cache_hit_ratio"), "{after}");
    assert!(
        after.contains("roster_sweeper_removed_sessions_total"),
        "{after}"
    );
    assert!(
        after.contains("roster_directory_loaded_timestamp_seconds"),
        "{after}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_the_admin_token() {
    let app = spawn_app_with(|c| {
        c.admin.token = ADMIN_TOKEN.to_owned();
        c.metrics.require_token = true;
    })
    .await;
    let anonymous = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let authorised = app.admin_get("/metrics").await;
    assert_eq!(authorised.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_a_good_directory_and_keeps_the_old_on_a_bad_one_under_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("members.csv");
    std::fs::copy(fixture("members.csv"), &csv).unwrap();
    let mut config = test_config(dir.path());
    config.directory.members_csv = csv.clone();
    config.admin.token = ADMIN_TOKEN.to_owned();
    config.limits.messages_per_hour = 100_000;
    config.limits.searches_per_hour = 100_000;
    let app = Arc::new(spawn_app_in(dir, config, false).await);

    let newcomer = "+919845000099";
    let (_, before) = app.send_text(newcomer, "hi").await;
    assert!(messages(&before).join("").contains("isn't registered"));

    // Traffic from a member throughout both reloads.
    let traffic = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..150 {
                statuses.push(
                    app.send(MEMBER, "doctors in Bengaluru")
                        .await
                        .status()
                        .as_u16(),
                );
            }
            statuses
        })
    };
    let mut grown = std::fs::read_to_string(&csv).unwrap();
    grown.push_str("T099,Neel Joshi,+91 98450 00099,neel@example.org,Doctor,Cardiology,,,Bengaluru,,,,,,,,member,active,true,\n");
    std::fs::write(&csv, &grown).unwrap();
    let reload = |app: Arc<TestApp>| async move { app.admin_post("/admin/directory/reload").await };
    let good = reload(app.clone()).await;
    assert_eq!(good.status(), 200);
    let body: Value = good.json().await.unwrap();
    assert_eq!(body["members"], 8);

    std::fs::write(&csv, "name,email\nbroken,x@example.org\n").unwrap();
    let bad = reload(app.clone()).await;
    assert_eq!(bad.status(), 422);
    let body: Value = bad.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("`phone`") && error.contains("kept"),
        "{error}"
    );

    let statuses = traffic.await.unwrap();
    assert!(
        statuses.iter().all(|&s| s == 200),
        "no request failed: {statuses:?}"
    );
    let (_, after) = app.send_text(newcomer, "doctors in Bengaluru").await;
    let text = messages(&after).join("");
    assert!(
        text.contains("Found 4 doctors"),
        "the new directory, kept through the bad reload: {text}"
    );
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(&metrics, r#"roster_directory_reloads_total{result="ok"}"#),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            r#"roster_directory_reloads_total{result="failed"}"#
        ),
        1.0
    );
    assert_eq!(metric(&metrics, "roster_directory_members"), 8.0);
    Arc::try_unwrap(app).ok().unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("members.csv");
    std::fs::copy(fixture("members.csv"), &csv).unwrap();
    let mut command = roster_command(dir.path());
    command
        .args(["serve", "--dev"])
        .env("ROSTER_DIRECTORY__MEMBERS_CSV", &csv);
    let server = RosterProcess::start(command);
    let mut grown = std::fs::read_to_string(&csv).unwrap();
    grown.push_str("T099,Neel Joshi,+91 98450 00099,,Doctor,,,,Pune,,,,,,,,member,active,true,\n");
    std::fs::write(&csv, grown).unwrap();
    Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    let reloaded = server
        .lines
        .iter()
        .take(50)
        .find(|line| line.contains("directory reloaded"))
        .expect("a reload log line");
    assert!(reloaded.contains("\"members\":8"), "{reloaded}");
    let (status, _) = server.terminate();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_restores_the_same_sessions_and_limits() {
    let app = spawn_admin_app().await;
    app.send(MEMBER, "Find doctors in Bangalore").await;
    app.send(MEMBER, "thanks").await;
    app.send(ASHA, "lawyers in Mumbai").await;
    let sessions_before = [
        app.admin_json(&format!("/admin/sessions/{MEMBER}")).await,
        app.admin_json(&format!("/admin/sessions/{ASHA}")).await,
    ];
    let limits_before = app.admin_json(&format!("/admin/limits/{MEMBER}")).await;

    let export = app.dir.path().join("backup.jsonl");
    let (code, _, stderr) = output(cli(&app, &["export", "--out", export.to_str().unwrap()]));
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&export).unwrap();
    assert!(
        text.starts_with(r#"{"type":"header","format":"roster-export","version":1"#),
        "{text}"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.contains(r#""type":"session""#))
            .count(),
        2
    );
    let clock = app.clock.clone();
    let _old_dir = app.stop().await;

    // A damaged copy is refused whole, naming the line, before the data
    // dir is even opened: cut off inside its last line, or holding a time
    // after the year 9999 (which no date can show).
    let cut = damaged_copy(&export, "cut.jsonl", &text[..text.len() - 5]);
    let session_line = text
        .lines()
        .position(|l| l.contains(r#""type":"session""#))
        .unwrap();
    let far_future: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i != session_line {
                return line.to_owned();
            }
            let at = line.find(r#""last_activity_ms":"#).unwrap() + r#""last_activity_ms":"#.len();
            let end = at + line[at..].find(|c: char| !c.is_ascii_digit()).unwrap();
            format!("{}253402300800000{}", &line[..at], &line[end..])
        })
        .collect();
    let far = damaged_copy(&export, "far.jsonl", &(far_future.join("\n") + "\n"));
    let last_line = text.lines().count();
    for (file, expected) in [
        (
            cut,
            format!("line {last_line}: the file ends inside this line"),
        ),
        (
            far,
            format!(
                "line {}: last_activity_ms 253402300800000 is after the year 9999",
                session_line + 1
            ),
        ),
    ] {
        let empty = tempfile::tempdir().unwrap();
        let mut import = roster_command(empty.path());
        import.arg("import").arg(&file);
        let (code, _, stderr) = output(import);
        assert_ne!(code, 0, "{stderr}");
        assert!(stderr.contains(&expected), "{expected}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!empty.path().join("state").exists(), "nothing was written");
    }

    // A fresh data dir: import while stopped, then serve from it.
    let fresh = tempfile::tempdir().unwrap();
    let mut import = roster_command(fresh.path());
    import.arg("import").arg(&export);
    let (code, stdout, stderr) = output(import);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("imported 2 sessions and 4 rate-limit entries"),
        "{stdout}"
    );

    let mut config = test_config(fresh.path());
    config.admin.token = ADMIN_TOKEN.to_owned();
    let restored = spawn_app_in(fresh, config, false).await;
    restored.clock.advance(std::time::Duration::from_millis(
        roster::clock::Clock::now_ms(&*clock)
            .saturating_sub(roster::clock::Clock::now_ms(&*restored.clock)),
    ));
    for before in &sessions_before {
        let phone = before["phoneNumber"].as_str().unwrap();
        let after = restored
            .admin_json(&format!("/admin/sessions/{phone}"))
            .await;
        assert_eq!(after["conversationHistory"], before["conversationHistory"]);
        assert_eq!(after["messageCount"], before["messageCount"]);
        assert_eq!(after["createdAt"], before["createdAt"]);
    }
    let limits_after = restored
        .admin_json(&format!("/admin/limits/{MEMBER}"))
        .await;
    assert_eq!(
        limits_after["limits"]["messages"]["remaining"],
        limits_before["limits"]["messages"]["remaining"]
    );
    assert_eq!(
        limits_after["limits"]["searches"]["remaining"],
        limits_before["limits"]["searches"]["remaining"]
    );

    // Importing into a data dir in use is refused.
    let mut busy = roster_command(restored.dir.path());
    busy.arg("import").arg(&export);
    let (code, _, stderr) = output(busy);
    assert_ne!(code, 0);
    assert!(stderr.contains("in use by a running roster"), "{stderr}");
    restored.stop().await;
}

/// Writes `text` beside `export` as `name`.
fn damaged_copy(export: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let file = export.with_file_name(name);
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn import_rejects_a_file_that_is_not_an_export() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-an-export.jsonl");
    std::fs::write(&file, "{\"hello\":1}\n").unwrap();
    let mut command = roster_command(dir.path());
    command.arg("import").arg(&file);
    let (code, _, stderr) = output(command);
    assert_ne!(code, 0);
    assert!(stderr.contains("line 1"), "{stderr}");
    assert!(!dir.path().join("state").exists(), "nothing was written");
}
