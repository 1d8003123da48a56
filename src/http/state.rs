//! [`AppState`]: what every request shares (configuration, the assistant
//! with the directory in use, storage, limits, metrics, models, the
//! dashboard), and swapping in a reloaded directory.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::connections::{Pending, Tracker};
use super::dashboard::{Dashboard, Figures};
use super::metrics::Metrics;
use crate::assistant::{Assistant, Synonyms};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::directory::{Directory, LoadError};
use crate::limits::Limits;
use crate::models::Models;
use crate::store::Store;
use crate::twilio::SignatureVerifier;
use crate::twilio::outbox::Outbox;

/// State shared by every request; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// `None` in `--dev` mode: signatures are not checked.
    pub verifier: Option<SignatureVerifier>,
    /// Swapped whole on a directory reload; requests in flight keep theirs.
    pub(super) assistant: Arc<ArcSwap<Assistant>>,
    pub limits: Arc<Limits>,
    pub sessions: Arc<Store>,
    pub metrics: Arc<Metrics>,
    /// The optional chat and embedding models (`[llm]`, `[embeddings]`).
    pub models: Arc<Models>,
    /// Late replies through the Messages API; `None` without
    /// `twilio.account_sid`.
    pub outbox: Option<Arc<Outbox>>,
    pub clock: SharedClock,
    /// Open connections and their cap.
    pub connections: Arc<Tracker>,
    /// Requests in flight, for overload shedding.
    pub pending: Arc<Pending>,
    /// The dashboard's figures, counted by the webhook.
    pub figures: Arc<Figures>,
    /// The dashboard's sign-ins and pending uploads.
    pub dashboard: Arc<Dashboard>,
}

impl AppState {
    /// The assistant with the directory currently loaded.
    pub fn assistant(&self) -> Arc<Assistant> {
        self.assistant.load_full()
    }

    /// Loads the directory file again off to the side and swaps it in; on
    /// any error the directory in use stays and the error says why. With a
    /// shared store, a file that loaded is then published, and every other
    /// instance swaps in the same one (`directory_sync`); a bad file
    /// changes nothing anywhere.
    pub async fn reload_directory(&self) -> Result<Arc<Assistant>, LoadError> {
        let before = super::directory_sync::read_file(self).await;
        let assistant = self.load_directory().await?;
        super::directory_sync::publish(self, before).await;
        Ok(assistant)
    }

    /// [`AppState::reload_directory`] without publishing: for a file that
    /// came from another instance.
    pub(super) async fn load_directory(&self) -> Result<Arc<Assistant>, LoadError> {
        let config = Arc::clone(&self.config);
        let loaded = tokio::task::spawn_blocking(move || load_assistant(&config))
            .await
            .unwrap_or_else(|e| {
                Err(LoadError::Unreadable {
                    path: self.config.directory.members_csv.display().to_string(),
                    reason: format!("the loading task failed: {e}"),
                })
            });
        self.metrics.directory_reload(loaded.is_ok());
        match loaded {
            Ok(assistant) => {
                let assistant = Arc::new(assistant);
                self.assistant.store(Arc::clone(&assistant));
                self.models.index_directory(Arc::clone(&assistant));
                let directory = assistant.directory();
                self.metrics
                    .directory_loaded(directory.len(), self.clock.now_ms() / 1000);
                tracing::info!(
                    members = directory.len(),
                    rejected_rows = directory.rejected().len(),
                    "directory reloaded"
                );
                log_rejections(directory);
                Ok(assistant)
            }
            Err(e) => {
                tracing::error!("directory reload failed, keeping the directory in use: {e}");
                Err(e)
            }
        }
    }
}

/// One warning per directory row that was not loaded, with its line.
pub(super) fn log_rejections(directory: &Directory) {
    for rejection in directory.rejected() {
        tracing::warn!(
            line = rejection.line,
            "directory row rejected: {}",
            rejection.reason
        );
    }
}

/// Loads the directory (and what the assistant draws from it) named by
/// `config`: at start-up and on every directory reload.
pub(super) fn load_assistant(config: &Config) -> Result<Assistant, LoadError> {
    let directory = Arc::new(Directory::load_sheet(
        &config.directory.members_csv,
        config.directory.sheet(),
        config.directory.default_region,
    )?);
    // A missing synonyms file means the built-in vocabulary only; a
    // malformed one stops the load with its path and line.
    let synonyms = Synonyms::load(&config.directory.synonyms_csv)
        .map_err(|e| LoadError::Synonyms(format!("{e} (directory.synonyms_csv)")))?;
    Ok(Assistant::with_synonyms(
        directory,
        &config.directory.org_name,
        &synonyms,
    ))
}
