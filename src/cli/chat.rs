//! `roster chat` and `roster send`: talk to Roster as a member would,
//! without a phone or a tunnel.
//!
//! Each line becomes a webhook signed as Twilio signs it; the reply is shown
//! the way WhatsApp shows it: `*bold*` in bold, each `<Message>` its own
//! bubble. With `--local`, an in-process server on a temporary data dir is
//! started first, so a newcomer needs nothing else running.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use anyhow::Context;

use crate::cli::client::{AdminClient, WebhookClient};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::directory::Directory;
use crate::http::{App, Options};
use crate::phone::PhoneNumber;
use crate::shutdown::{Shutdown, ShutdownTrigger};

/// Where chat messages go.
pub struct Chat {
    webhook: WebhookClient,
    admin: AdminClient,
    pub from: PhoneNumber,
    region: crate::phone::Region,
    styled: bool,
}

/// A server started for `--local`, stopped when dropped.
pub struct LocalServer {
    pub url: String,
    trigger: ShutdownTrigger,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl LocalServer {
    /// Starts Roster in-process on 127.0.0.1 with a temporary data dir and
    /// one-off tokens; returns it and the configuration clients should use.
    pub async fn start(config: &Config) -> anyhow::Result<(LocalServer, Config)> {
        let dir = tempfile::tempdir().context("cannot create a temporary data dir")?;
        let mut config = config.clone();
        config.storage.data_dir = dir.path().join("state");
        config.storage.durability = crate::config::Durability::Relaxed;
        config.server.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        config.twilio.auth_token = one_off_token();
        config.twilio.public_url.clear();
        config.admin.token = one_off_token();
        let app = App::build(
            config.clone(),
            Options {
                dev: false,
                clock: Arc::new(SystemClock),
            },
        )?;
        let listener = tokio::net::TcpListener::bind(config.server.bind).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (trigger, shutdown): (ShutdownTrigger, Shutdown) = ShutdownTrigger::new();
        let handle = tokio::spawn(app.run(listener, shutdown));
        Ok((
            LocalServer {
                url,
                trigger,
                handle: Some(handle),
                _dir: dir,
            },
            config,
        ))
    }

    pub async fn stop(mut self) {
        self.trigger.fire();
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }
}

fn one_off_token() -> String {
    use std::hash::{BuildHasher, RandomState};
    (0..4)
        .map(|i| format!("{:016x}", RandomState::new().hash_one(i)))
        .collect()
}

impl Chat {
    pub fn new(server: &str, config: &Config, from: PhoneNumber) -> Chat {
        Chat {
            webhook: WebhookClient::new(
                server,
                config.twilio.public_url(),
                config.twilio.auth_token(),
            ),
            admin: AdminClient::new(server, config.admin.token()),
            from,
            region: config.directory.default_region,
            styled: std::io::stdout().is_terminal(),
        }
    }

    /// One exchange: the reply's messages, rendered.
    pub async fn exchange(&self, text: &str) -> anyhow::Result<String> {
        let messages = self.webhook.send(&self.from, text).await?;
        Ok(render(&messages, self.styled))
    }

    /// The interactive loop (line editing and history on a terminal; plain
    /// lines from a pipe).
    pub async fn repl(&mut self) -> anyhow::Result<()> {
        println!(
            "Chatting as {} — type a message; /as PHONE to switch member, /reset to drop the session, /quit to leave.",
            self.from.e164()
        );
        if std::io::stdin().is_terminal() {
            let mut editor = rustyline::DefaultEditor::new()?;
            loop {
                match editor.readline("you> ") {
                    Ok(line) => {
                        let _ = editor.add_history_entry(line.as_str());
                        if !self.handle_line(&line).await {
                            break;
                        }
                    }
                    Err(
                        rustyline::error::ReadlineError::Interrupted
                        | rustyline::error::ReadlineError::Eof,
                    ) => break,
                    Err(e) => return Err(e.into()),
                }
            }
        } else {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                if !self.handle_line(&line?).await {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Handles one typed line; false when the user wants to leave.
    async fn handle_line(&mut self, line: &str) -> bool {
        let line = line.trim_end_matches(['\r', '\n']);
        let command = line.trim();
        if command == "/quit" || command == "/exit" {
            return false;
        }
        if let Some(phone) = command.strip_prefix("/as ") {
            match PhoneNumber::parse(phone, self.region) {
                Ok(phone) => {
                    self.from = phone;
                    println!("now chatting as {}", phone.e164());
                }
                Err(e) => println!("{e}"),
            }
            return true;
        }
        if command == "/reset" {
            match self
                .admin
                .delete(&format!("/admin/sessions/{}", self.from.e164()))
                .await
            {
                Ok(()) => println!("session dropped"),
                Err(crate::cli::client::ClientError::Status { status: 404, .. }) => {
                    println!("there was no session")
                }
                Err(e) => println!("could not drop the session: {e}"),
            }
            return true;
        }
        if command == "/help" {
            println!("/as PHONE  switch member · /reset  drop the session · /quit  leave");
            return true;
        }
        match self.exchange(line).await {
            Ok(reply) => print!("{reply}"),
            Err(e) => println!("error: {e}"),
        }
        let _ = std::io::stdout().flush();
        true
    }
}

/// The first active member of the configured directory: who `chat` speaks
/// as when `--as` is not given.
pub fn default_member(config: &Config) -> anyhow::Result<PhoneNumber> {
    let directory = Directory::load_sheet(
        &config.directory.members_csv,
        config.directory.sheet(),
        config.directory.default_region,
    )?;
    directory
        .active_members()
        .next()
        .map(|m| m.phone)
        .context("the directory has no active member to chat as; pass --as PHONE")
}

/// WhatsApp-style bubbles; `*bold*` in bold on a terminal.
pub fn render(messages: &[String], styled: bool) -> String {
    if messages.is_empty() {
        return "  (no reply)\n".to_owned();
    }
    let mut out = String::new();
    for message in messages {
        out.push_str("╭─ roster\n");
        for line in message.lines() {
            out.push_str("│ ");
            out.push_str(&if styled {
                embolden(line)
            } else {
                line.to_owned()
            });
            out.push('\n');
        }
        out.push_str("╰─\n");
    }
    out
}

/// `*text*` → bold (ANSI), as WhatsApp shows it.
fn embolden(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    let mut parts = line.split('*');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let rest: Vec<&str> = parts.collect();
    // Pairs of asterisks bold what is between; an odd one stays as it is.
    let mut i = 0;
    while i < rest.len() {
        if i + 1 < rest.len() && !rest[i].is_empty() {
            out.push_str("\x1b[1m");
            out.push_str(rest[i]);
            out.push_str("\x1b[0m");
            out.push_str(rest[i + 1]);
            i += 2;
        } else {
            out.push('*');
            out.push_str(rest[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asterisks_become_bold() {
        assert_eq!(
            embolden("1. *Asha Rao*, Doctor"),
            "1. \x1b[1mAsha Rao\x1b[0m, Doctor"
        );
        assert_eq!(embolden("5 * 3"), "5 * 3");
        assert_eq!(embolden("no stars"), "no stars");
    }

    #[test]
    fn each_message_is_a_bubble() {
        let text = render(&["one\ntwo".to_owned(), "three".to_owned()], false);
        assert_eq!(text.matches("╭─").count(), 2);
        assert!(text.contains("│ two"));
        assert_eq!(render(&[], false), "  (no reply)\n");
    }
}
