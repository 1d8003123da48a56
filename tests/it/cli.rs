//! The real binary: start-up checks, serving, graceful shutdown.

use crate::common::process::{RosterProcess, roster_command, run_to_end};
use crate::common::*;

#[test]
fn serve_refuses_to_start_without_an_auth_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = roster_command(dir.path());
    command.arg("serve");
    let (code, stderr) = run_to_end(command);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("TWILIO_AUTH_TOKEN"), "{stderr}");
    assert!(stderr.contains("--dev"), "{stderr}");
}

#[test]
fn dev_mode_refuses_a_public_bind() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = roster_command(dir.path());
    command
        .args(["serve", "--dev"])
        .env("ROSTER_SERVER__BIND", "0.0.0.0:0");
    let (code, stderr) = run_to_end(command);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("loopback"), "{stderr}");
}

#[test]
fn an_invalid_setting_fails_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = roster_command(dir.path());
    command
        .args(["serve", "--dev"])
        .env("ROSTER_SESSION__TTL", "forever");
    let (code, stderr) = run_to_end(command);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("session.ttl") && stderr.contains("forever"),
        "{stderr}"
    );
}

#[test]
fn an_unreadable_directory_fails_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = roster_command(dir.path());
    command
        .args(["serve", "--dev"])
        .env("ROSTER_DIRECTORY__MEMBERS_CSV", "missing.csv");
    let (code, stderr) = run_to_end(command);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("missing.csv"), "{stderr}");
}

#[tokio::test]
async fn serves_signed_requests_and_shuts_down_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = roster_command(dir.path());
    command.arg("serve").env("TWILIO_AUTH_TOKEN", AUTH_TOKEN);
    let server = RosterProcess::start(command);

    let fields = whatsapp_form(MEMBER, "Find doctors in Bangalore", "SM0001");
    let response = server.post_signed(&fields).await;
    assert_eq!(response.status(), 200);
    assert!(messages(&response.text().await.unwrap())[0].contains("Asha Rao"));

    let (status, lines) = server.terminate();
    assert_eq!(status.code(), Some(0), "clean exit: {lines:?}");
    let log = lines.join("\n");
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(log.contains("state flushed"), "{log}");
    assert!(
        !log.contains("Find doctors"),
        "message bodies never logged at info: {log}"
    );
    assert!(!log.contains(MEMBER), "numbers are masked: {log}");
}

#[test]
fn a_data_dir_in_use_by_another_roster_fails_start_up_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = roster_command(dir.path());
    first.args(["serve", "--dev"]);
    let running = RosterProcess::start(first);
    let mut second = roster_command(dir.path());
    second.args(["serve", "--dev"]);
    let (code, stderr) = run_to_end(second);
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("locked by another running roster"),
        "{stderr}"
    );
    assert!(
        stderr.contains("stop that process"),
        "says what to do: {stderr}"
    );
    running.terminate();
}

#[test]
fn a_corrupt_data_dir_fails_start_up_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = roster_command(dir.path());
    first.args(["serve", "--dev"]);
    RosterProcess::start(first).terminate();
    // Damage sled's configuration header.
    std::fs::write(dir.path().join("state/conf"), b"not what sled wrote").unwrap();
    let mut again = roster_command(dir.path());
    again.args(["serve", "--dev"]);
    let (code, stderr) = run_to_end(again);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("is corrupt"), "{stderr}");
    assert!(
        stderr.contains("roster import"),
        "says what to do: {stderr}"
    );
}
