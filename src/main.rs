//! The `roster` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use roster::clock::SystemClock;
use roster::config::{Config, LogFormat};
use roster::server::{self, Options};

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

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the Twilio webhook.
    Serve {
        /// Local development: skip signature verification (loopback only).
        #[arg(long)]
        dev: bool,
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
    init_logging(&config);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("roster: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { dev } => {
                let options = Options {
                    dev,
                    clock: Arc::new(SystemClock),
                };
                server::serve(config, options).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("roster: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}
