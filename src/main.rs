//! The `roster` command line: the server, the chat simulator and the
//! operator's tools. Each subcommand is a thin call into the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use roster::cli::chat::{self, Chat, LocalServer};
use roster::cli::client::default_server_url;
use roster::cli::commands::{self, Target};
use roster::clock::SystemClock;
use roster::config::{Config, LogFormat};
use roster::http::{self, Options};
use roster::phone::PhoneNumber;

/// A WhatsApp assistant for member organisations, served through Twilio.
#[derive(Debug, Parser)]
#[command(name = "roster", version, about)]
struct Cli {
    /// Configuration file; without it ./config.toml is read if present.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// The server's base URL [default: from server.bind].
    #[arg(long, value_name = "URL")]
    server: Option<String>,
}

#[derive(Debug, clap::Args)]
struct OutputArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Print JSON for scripts instead of text for people.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the Twilio webhook.
    Serve {
        /// Local development: skip signature verification (loopback only).
        #[arg(long)]
        dev: bool,
    },
    /// Talk to Roster as a member, interactively.
    Chat {
        /// The member's phone [default: the directory's first active member].
        #[arg(long = "as", value_name = "PHONE")]
        as_phone: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
        /// Start an in-process server on a temporary data dir first.
        #[arg(long, conflicts_with = "server")]
        local: bool,
    },
    /// Send one message as a member and print the reply.
    Send {
        #[arg(long = "as", value_name = "PHONE")]
        as_phone: String,
        #[command(flatten)]
        server: ServerArgs,
        /// The message text.
        text: String,
    },
    /// Inspect or delete conversation sessions.
    Sessions {
        #[command(subcommand)]
        action: SessionsAction,
    },
    /// Show a phone's remaining rate limits.
    Limits {
        #[command(subcommand)]
        action: LimitsAction,
    },
    /// Show store and cache statistics.
    Stats {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Validate a member directory (CSV, .xlsx or .ods): what each column
    /// was taken as, every rejected row; exit 1 when any row is rejected.
    CheckDirectory {
        /// The file [default: the configured directory.file].
        file: Option<PathBuf>,
        /// The workbook sheet to read [default: directory.sheet when
        /// checking the configured file, else the first sheet].
        #[arg(long)]
        sheet: Option<String>,
        /// Print JSON for scripts instead of text for people.
        #[arg(long)]
        json: bool,
    },
    /// Check a stopped data dir (through a copy: sled cannot open one
    /// read-only): sessions, rate-limit entries, opt-outs, remembered
    /// replies and anything unreadable; exit 1 when something is unreadable.
    CheckData {
        /// The data dir [default: the configured storage.data_dir].
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Print JSON for scripts instead of text for people.
        #[arg(long)]
        json: bool,
    },
    /// Write sessions and rate-limit state as JSON lines.
    Export {
        /// The file to write [default: standard output].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Restore an export into a stopped data dir.
    Import { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum SessionsAction {
    /// List live sessions.
    List {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show one session.
    Show {
        phone: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Delete one session.
    Delete {
        phone: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, Subcommand)]
enum LimitsAction {
    /// What a phone has left, without spending anything.
    Show {
        phone: String,
        #[command(flatten)]
        output: OutputArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (path, explicit) = match &cli.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from("config.toml"), false),
    };
    let config = match Config::load(&path, explicit) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("roster: {e}");
            return ExitCode::from(2);
        }
    };
    let serving = matches!(cli.command, Command::Serve { .. });
    init_logging(&config, serving);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("roster: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command, config));
    // A flush stuck on a disk that no longer answers must not hold the exit
    // (the server bounded its last flush already): blocking tasks get 1 s.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(e) => {
            if serving {
                tracing::error!("{e:#}");
            }
            eprintln!("roster: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    let target = |server: ServerArgs, json: bool, config: Config| Target {
        server: server.server.unwrap_or_else(|| default_server_url(&config)),
        config,
        json,
    };
    match command {
        Command::Serve { dev } => {
            let options = Options {
                dev,
                clock: Arc::new(SystemClock),
            };
            http::serve(config, options).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Chat {
            as_phone,
            server,
            local,
        } => {
            let from = match as_phone {
                Some(phone) => PhoneNumber::parse(&phone, config.directory.default_region)?,
                None => chat::default_member(&config)?,
            };
            if local {
                let (local_server, local_config) = LocalServer::start(&config).await?;
                let mut chat = Chat::new(&local_server.url, &local_config, from);
                let result = chat.repl().await;
                local_server.stop().await;
                result?;
            } else {
                let url = server.server.unwrap_or_else(|| default_server_url(&config));
                Chat::new(&url, &config, from).repl().await?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Send {
            as_phone,
            server,
            text,
        } => {
            let from = PhoneNumber::parse(&as_phone, config.directory.default_region)?;
            let url = server.server.unwrap_or_else(|| default_server_url(&config));
            print!("{}", Chat::new(&url, &config, from).exchange(&text).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Sessions { action } => match action {
            SessionsAction::List { limit, output } => {
                commands::sessions_list(&target(output.server, output.json, config), limit).await
            }
            SessionsAction::Show { phone, output } => {
                commands::sessions_show(&target(output.server, output.json, config), &phone).await
            }
            SessionsAction::Delete { phone, server } => {
                commands::sessions_delete(&target(server, false, config), &phone).await
            }
        },
        Command::Limits {
            action: LimitsAction::Show { phone, output },
        } => commands::limits_show(&target(output.server, output.json, config), &phone).await,
        Command::Stats { output } => {
            commands::stats(&target(output.server, output.json, config)).await
        }
        Command::CheckDirectory { file, sheet, json } => Ok(commands::check_directory(
            &config,
            file.as_deref(),
            sheet.as_deref(),
            json,
        )),
        Command::CheckData { data_dir, json } => {
            Ok(commands::check_data(&config, data_dir.as_deref(), json))
        }
        Command::Export { out, server } => {
            commands::export(&target(server, false, config), out.as_deref()).await
        }
        Command::Import { file } => commands::import(&config, &file).await,
    }
}

/// The server logs everything at `log.level`; the other commands only warn,
/// so their output stays readable.
fn init_logging(config: &Config, serving: bool) {
    let default = if serving {
        config.log.level.as_str()
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}
