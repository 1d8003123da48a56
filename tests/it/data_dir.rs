//! The data dir across starts and while serving, through the real binary:
//! a half-written snapshot sled left behind is moved aside and the data is
//! all there; `roster check-data` says what a stopped data dir holds; a
//! data dir deleted while serving stops the acknowledgements.

use crate::common::process::{RosterProcess, roster_command, run_to_end};
use crate::common::*;
use std::path::{Path, PathBuf};

/// `roster serve` on `dir/state`, strict, with the admin API on.
fn serve(dir: &Path) -> std::process::Command {
    let mut command = roster_command(dir);
    command
        .arg("serve")
        .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        .env("ROSTER_ADMIN__TOKEN", ADMIN_TOKEN)
        .env("ROSTER_STORAGE__DURABILITY", "strict")
        .env("ROSTER_SESSION__MAX_HISTORY", "100")
        .env("ROSTER_STORAGE__CHECK_EVERY", "100ms");
    command
}

/// The members whose exchanges the tests write.
const PHONES: [&str; 3] = [MEMBER, ASHA, "+919845000002"];

/// Sends `count` messages from each of [`PHONES`], each acknowledged.
async fn fill(server: &RosterProcess, count: usize) {
    for phone in PHONES {
        for i in 0..count {
            let sid = format!("SM{}{i:020}", &phone[phone.len() - 6..]);
            let fields = whatsapp_form(phone, &format!("message {i}"), &sid);
            assert_eq!(server.post_signed(&fields).await.status(), 200);
        }
    }
}

/// Every message [`fill`] sent is in its phone's session, in order.
async fn assert_filled(server: &RosterProcess, count: usize) {
    for phone in PHONES {
        let session = server.admin_json(&format!("/admin/sessions/{phone}")).await;
        assert_eq!(session["messageCount"], count, "{phone}: {session}");
        let queries: Vec<&str> = session["conversationHistory"]
            .as_array()
            .expect("history")
            .iter()
            .map(|e| e["query"].as_str().expect("query"))
            .collect();
        let expected: Vec<String> = (0..count).map(|i| format!("message {i}")).collect();
        assert_eq!(queries, expected, "{phone}");
    }
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("data dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What sled 0.34 leaves when a start cannot write its snapshot (a full
/// disk): `snap.{lsn:016X}.generating`, created and never written, with an
/// LSN past the last complete snapshot's (`pagecache/snapshot.rs`,
/// `write_snapshot`).
fn leave_unfinished_snapshot(state: &Path) -> PathBuf {
    let newest = file_names(state)
        .iter()
        .filter_map(|name| name.strip_prefix("snap."))
        .filter_map(|lsn| u64::from_str_radix(lsn, 16).ok())
        .max();
    let path = state.join(format!(
        "snap.{:016X}.generating",
        newest.map_or(0, |lsn| lsn + 1)
    ));
    std::fs::File::create(&path).expect("0-byte snapshot");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_written_snapshot_is_moved_aside_and_every_exchange_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let server = RosterProcess::start(serve(dir.path()));
    fill(&server, 12).await;
    // A crash, so the next start has log past the snapshot to replay (and
    // would write a new snapshot: where a full disk leaves it unfinished).
    server.crash();
    let leftover = leave_unfinished_snapshot(&state);

    let server = RosterProcess::start(serve(dir.path()));
    assert_filled(&server, 12).await;
    let startup = server.startup.clone();
    let (status, _) = server.terminate();
    assert_eq!(status.code(), Some(0));
    assert!(
        !leftover.exists(),
        "the leftover is no longer where sled reads"
    );
    let names = file_names(&state);
    let moved: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("moved-aside-") && n.ends_with(".generating"))
        .collect();
    assert_eq!(
        moved.len(),
        1,
        "kept in the data dir, out of sled's way: {names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("snap.") && n.ends_with(".generating")),
        "{names:?}"
    );
    assert!(
        startup.iter().any(|line| line.contains("moved aside")
            && line.contains(".generating")
            && line.contains("rebuilds")),
        "{startup:?}"
    );
    assert!(
        !startup.iter().any(|line| line.contains("corrupt")),
        "no word of corruption: {startup:?}"
    );

    // And again after a clean stop: the data is still all there.
    leave_unfinished_snapshot(&state);
    let server = RosterProcess::start(serve(dir.path()));
    assert_filled(&server, 12).await;
    assert_eq!(server.terminate().0.code(), Some(0));
}

/// A data dir written by a real roster and stopped: sessions from
/// [`PHONES`], rate-limit entries, one opt-out, remembered replies.
async fn stopped_data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let server = RosterProcess::start(serve(dir.path()));
    fill(&server, 4).await;
    let stop = whatsapp_form(STRANGER, "STOP", "SMstop00000000000000000000000001");
    assert_eq!(server.post_signed(&stop).await.status(), 200);
    assert_eq!(server.terminate().0.code(), Some(0));
    dir
}

/// `roster check-data` on `dir/state` (plus `args`): (exit code, stdout, stderr).
fn check_data(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = roster_command(dir);
    command.arg("check-data").args(args);
    let out = command.output().expect("roster runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every file of `dir` with its length and modification time.
fn snapshot_of(dir: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                meta.len(),
                meta.modified().unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_data_reports_what_a_stopped_data_dir_holds_without_touching_it() {
    let dir = stopped_data_dir().await;
    let state = dir.path().join("state");
    let before = snapshot_of(&state);

    let (code, stdout, stderr) = check_data(dir.path(), &["--json"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["sessions"]["live"], 3, "{report}");
    assert_eq!(report["sessions"]["unreadable"], 0);
    assert_eq!(report["storedSessionCount"], 3);
    assert_eq!(report["closedCleanly"], true);
    assert_eq!(report["optOuts"]["readable"], 1);
    assert_eq!(
        report["rememberedReplies"]["readable"], 13,
        "12 exchanges and the STOP: {report}"
    );
    assert!(
        report["limitEntries"]["readable"].as_u64().unwrap() >= 3,
        "a messages entry per member at least: {report}"
    );
    assert_eq!(report["problemCount"], 0);
    assert!(
        report["how"].as_str().unwrap().contains("copy"),
        "says it read a copy, and why: {report}"
    );
    assert!(
        !Path::new(report["copy"].as_str().unwrap()).exists(),
        "the copy is removed"
    );

    let (code, stdout, _) = check_data(dir.path(), &[]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("3 live"), "{stdout}");
    assert!(stdout.contains("everything is readable"), "{stdout}");
    assert!(stdout.contains("read-only"), "{stdout}");
    assert_eq!(
        snapshot_of(&state),
        before,
        "the data dir itself is untouched"
    );

    // Elsewhere, by --data-dir; and a leftover snapshot is reported, moved
    // aside in the copy only, and everything is still read.
    let elsewhere = tempfile::tempdir().unwrap();
    let leftover = leave_unfinished_snapshot(&state);
    let (code, stdout, stderr) =
        check_data(elsewhere.path(), &["--data-dir", state.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("unfinished sled snapshot"), "{stdout}");
    assert!(stdout.contains("3 live"), "{stdout}");
    assert!(leftover.exists(), "the original keeps its files");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_data_names_what_is_unreadable_and_exits_non_zero() {
    let dir = stopped_data_dir().await;
    let state = dir.path().join("state");
    {
        let db = sled::open(&state).unwrap();
        let sessions = db.open_tree("sessions").unwrap();
        // As a newer roster would write it: a format version this one lacks.
        sessions
            .insert(b"s+919845000099", &[9u8, 1, 2][..])
            .unwrap();
        db.open_tree("limits")
            .unwrap()
            .insert(b"messages:+919845000099", &[1u8, 2][..])
            .unwrap();
        db.flush().unwrap();
    }
    let (code, stdout, _) = check_data(dir.path(), &[]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("3 live") && stdout.contains("1 unreadable"),
        "{stdout}"
    );
    assert!(stdout.contains("2 unreadable values"), "{stdout}");
    assert!(stdout.contains("format version 9"), "{stdout}");
    assert!(stdout.contains("rate-limit entry messages:"), "{stdout}");
    assert!(
        !stdout.contains("+919845000099"),
        "phones are masked: {stdout}"
    );

    // A running roster holds the data dir: the check refuses, touching nothing.
    let server = RosterProcess::start(serve(dir.path()));
    let (code, _, stderr) = check_data(dir.path(), &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("in use by a running roster"), "{stderr}");
    server.terminate();

    let (code, _, stderr) = check_data(dir.path(), &["--data-dir", "/nonexistent/roster"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no data dir"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_sled_cannot_read_is_called_corrupt_without_advice_to_start_empty() {
    let dir = stopped_data_dir().await;
    let state = dir.path().join("state");
    // A start with log to replay writes sled's snapshot.
    let server = RosterProcess::start(serve(dir.path()));
    assert_eq!(server.terminate().0.code(), Some(0));
    // A complete snapshot (not a leftover) that is garbage: sled refuses it.
    let snapshot = file_names(&state)
        .into_iter()
        .find(|n| n.starts_with("snap.") && !n.ends_with(".generating"))
        .expect("a stopped data dir has a snapshot");
    std::fs::write(state.join(&snapshot), vec![7u8; 64]).unwrap();

    let (code, stderr) = run_to_end(serve(dir.path()));
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("is corrupt"), "{stderr}");
    assert!(stderr.contains("check-data"), "{stderr}");
    assert!(
        !stderr.contains("start empty") && !stderr.contains("move it aside"),
        "{stderr}"
    );
    let (code, stdout, _) = check_data(dir.path(), &[]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("UNREADABLE: sled cannot open it"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_deleted_while_serving_stops_the_acknowledgements_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let server = RosterProcess::start(serve(dir.path()));
    fill(&server, 3).await;
    std::fs::remove_dir_all(&state).unwrap();

    // The next message is not acknowledged: its flush finds the data dir gone.
    let fields = whatsapp_form(MEMBER, "after", "SMafter0000000000000000000000001");
    let response = server.post_signed(&fields).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let ready = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["storageFailure"]["kind"], "data-dir", "{ready}");
    assert!(
        ready["storageFailure"]["reason"]
            .as_str()
            .unwrap()
            .contains("is gone"),
        "{ready}"
    );
    // And none after it either.
    let fields = whatsapp_form(ASHA, "later", "SMafter0000000000000000000000002");
    assert_eq!(server.post_signed(&fields).await.status(), 503);

    let (status, lines) = server.terminate();
    let log = lines.join("\n");
    assert_ne!(
        status.code(),
        Some(0),
        "a stop that saved nothing is no clean exit"
    );
    assert!(!log.contains("state flushed"), "{log}");
    assert!(
        log.contains("state not flushed") && log.contains("went nowhere"),
        "{log}"
    );

    // A restart starts on an empty data dir and claims nothing.
    let server = RosterProcess::start(serve(dir.path()));
    for phone in PHONES {
        let response = reqwest::Client::new()
            .get(server.url(&format!("/admin/sessions/{phone}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{phone}");
    }
    // The message refused with 503 is handled when Twilio retries it.
    let fields = whatsapp_form(MEMBER, "after", "SMafter0000000000000000000000001");
    assert_eq!(server.post_signed(&fields).await.status(), 200);
    let session = server
        .admin_json(&format!("/admin/sessions/{MEMBER}"))
        .await;
    assert_eq!(session["messageCount"], 1);
    assert_eq!(server.terminate().0.code(), Some(0));
}

#[test]
fn check_data_reads_a_data_dir_written_by_an_earlier_release() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = check_data(
        dir.path(),
        &[
            "--json",
            "--data-dir",
            fixture("datadir-v1").to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let sessions = &report["sessions"];
    assert!(
        sessions["live"].as_u64().unwrap() + sessions["expired"].as_u64().unwrap() > 0,
        "{report}"
    );
    let replies = &report["rememberedReplies"];
    assert!(
        replies["readable"].as_u64().unwrap() + report["expiredReplies"].as_u64().unwrap() > 0,
        "format-1 replies are read: {report}"
    );
}
