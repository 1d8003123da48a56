//! Running the real `roster` binary: for start-up, shutdown, restart and
//! crash tests.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A `roster serve` child process.
pub struct RosterProcess {
    pub child: Child,
    pub addr: SocketAddr,
    /// Every stderr line seen so far is forwarded here.
    pub lines: mpsc::Receiver<String>,
    /// The lines logged up to and including "roster is ready".
    pub startup: Vec<String>,
}

/// A test that fails part way does not leave its server running.
impl Drop for RosterProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `roster` command with a clean environment rooted in `dir`.
pub fn roster_command(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ROSTER_LOG__FORMAT", "json")
        .env("ROSTER_SERVER__BIND", "127.0.0.1:0")
        .env(
            "ROSTER_DIRECTORY__MEMBERS_CSV",
            super::fixture("members.csv"),
        )
        .env("ROSTER_STORAGE__DATA_DIR", dir.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

impl RosterProcess {
    /// Starts `command` and waits until it logs that it is ready.
    pub fn start(command: Command) -> RosterProcess {
        RosterProcess::start_watching(command, |_| {})
    }

    /// Like [`RosterProcess::start`], showing `watch` every line logged
    /// before ready (to act while start-up waits, say).
    pub fn start_watching(mut command: Command, mut watch: impl FnMut(&str)) -> RosterProcess {
        let mut child = command.spawn().expect("roster starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        loop {
            let line = match lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("roster did not become ready; it said:\n{}", seen.join("\n"));
                }
            };
            watch(&line);
            if line.contains("roster is ready") {
                let event: serde_json::Value = serde_json::from_str(&line).expect("json log line");
                let addr = event["fields"]["bind"]
                    .as_str()
                    .expect("bind field")
                    .parse()
                    .expect("address");
                seen.push(line);
                return RosterProcess {
                    child,
                    addr,
                    lines,
                    startup: seen,
                };
            }
            seen.push(line);
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET path` on the admin API with the tests' admin token, as JSON.
    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(self.url(path))
            .bearer_auth(super::ADMIN_TOKEN)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON")
    }

    /// `GET /metrics`, as text.
    pub async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .expect("request")
            .text()
            .await
            .expect("text")
    }

    /// Posts a webhook form signed with the test auth token, as Twilio would.
    pub async fn post_signed(&self, fields: &[(String, String)]) -> reqwest::Response {
        let url = self.url("/whatsapp/webhook");
        let signature =
            roster::twilio::SignatureVerifier::new(super::AUTH_TOKEN).sign(&url, fields);
        reqwest::Client::new()
            .post(&url)
            .header("x-twilio-signature", signature)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(super::encode_form(fields))
            .send()
            .await
            .expect("request")
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        let status = self.child.wait().expect("roster exits");
        let rest = self.lines.try_iter().collect();
        (status, rest)
    }

    /// `kill -9`: no shutdown, no flush.
    pub fn crash(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

/// Runs `command` to completion and returns (exit code, stderr).
pub fn run_to_end(mut command: Command) -> (Option<i32>, String) {
    let output = command.output().expect("roster runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
