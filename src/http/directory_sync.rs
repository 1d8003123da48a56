//! With a shared store (`storage.backend = "redis"`), every instance serves
//! the same directory.
//!
//! A reload or a dashboard upload that loads cleanly on one instance
//! [`publish`]es the file's bytes: stored in Redis with their hash, and the
//! hash announced on a channel. Every instance [`follow`]s that channel and,
//! when the published file differs from its own `directory.members_csv`,
//! writes it there (beside it, then renamed over it) and loads it as a
//! reload does. A file that does not load is never published, so a bad
//! file changes nothing anywhere. An instance that starts, or whose
//! subscription was lost and is back, first catches up with what was
//! published meanwhile. The synonyms file is not shared: it is part of each
//! instance's deployment.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;

use super::AppState;
use crate::shutdown::Shutdown;
use crate::store::shared::content_hash;

/// Publishes the directory file in use, after this instance loaded it.
pub(super) async fn publish(app: &AppState) {
    let Some(shared) = app.sessions.shared() else {
        return;
    };
    let path = app.config.directory.members_csv.clone();
    let file = match tokio::fs::read(&path).await {
        Ok(file) => file,
        Err(e) => {
            tracing::error!(file = %path.display(), "the directory was not shared with the other instances: cannot read it ({e})");
            return;
        }
    };
    match shared.publish_directory(&file).await {
        Ok(hash) => tracing::info!(hash = %&hash[..12], "directory published to every instance"),
        Err(e) => tracing::error!("the directory was not shared with the other instances: {e}"),
    }
}

/// Follows the directories other instances publish, until `shutdown`.
pub(super) async fn follow(app: AppState, mut shutdown: Shutdown) {
    if app.sessions.shared().is_none() {
        return;
    }
    let mut backoff = Duration::from_millis(100);
    loop {
        let subscribed = match app.sessions.shared() {
            Some(shared) => shared.directory_changes().await,
            None => return,
        };
        match subscribed {
            Ok(mut changes) => {
                backoff = Duration::from_millis(100);
                adopt(&app).await;
                loop {
                    tokio::select! {
                        change = changes.next() => match change {
                            Some(_) => adopt(&app).await,
                            None => break,
                        },
                        () = shutdown.recv() => return,
                    }
                }
                tracing::warn!("lost the subscription to directory changes; subscribing again");
            }
            Err(e) => tracing::debug!("cannot follow directory changes yet: {e}"),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.recv() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Takes the published directory if it differs from the file here.
async fn adopt(app: &AppState) {
    let Some(shared) = app.sessions.shared() else {
        return;
    };
    let (hash, file) = match shared.published_directory().await {
        Ok(Some(published)) => published,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!("cannot read the published directory: {e}");
            return;
        }
    };
    let path = app.config.directory.members_csv.clone();
    let here = tokio::fs::read(&path).await.ok();
    if here.as_deref().map(content_hash).as_deref() == Some(hash.as_str()) {
        return;
    }
    let written = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || replace(&path, &file)).await
    };
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(file = %path.display(), "cannot take the directory another instance published: {e}");
            return;
        }
        Err(e) => {
            tracing::error!("cannot take the directory another instance published: {e}");
            return;
        }
    }
    match app.load_directory().await {
        Ok(_) => {
            tracing::info!(hash = %&hash[..hash.len().min(12)], "took the directory another instance published")
        }
        Err(e) => {
            tracing::error!("the directory another instance published did not load here: {e}")
        }
    }
}

/// Writes `bytes` beside `path` and renames the copy over it, so that a
/// crash leaves either the old file or the new one.
fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut copy = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut copy, bytes)?;
    copy.as_file().sync_all()?;
    copy.persist(path).map_err(|e| e.error)?;
    Ok(())
}
