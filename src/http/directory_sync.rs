//! With a shared store (`storage.backend = "redis"`), every instance serves
//! the same directory.
//!
//! A reload or a dashboard upload that loads cleanly on one instance
//! [`publish`]es the file's bytes: stored in Redis with their hash, and the
//! hash announced on a channel. Every instance [`follow`]s that channel and,
//! when the published file differs from its own `directory.members_csv`,
//! writes it beside that file, checks that it loads there, and only then
//! renames it over the file and loads it as a reload does. What is
//! published is exactly the bytes that loaded; a file that does not load is
//! never published, nor taken by an instance where it does not load, so a
//! bad file changes nothing anywhere. An instance that starts, or whose
//! subscription was lost and is back, first catches up with what was
//! published meanwhile. The synonyms file is not shared: it is part of each
//! instance's deployment.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;

use super::AppState;
use crate::shutdown::Shutdown;
use crate::store::shared::content_hash;

/// The directory file's bytes as they are now, with a shared store (the
/// bytes a reload is about to load, for [`publish`]).
pub(super) async fn read_file(app: &AppState) -> Option<Vec<u8>> {
    app.sessions.shared()?;
    tokio::fs::read(&app.config.directory.members_csv)
        .await
        .ok()
}

/// Publishes the directory file this instance just loaded: `loaded` are
/// its bytes as read before the load, and it is published only if the file
/// still holds them, so that what goes out is exactly what loaded here.
pub(super) async fn publish(app: &AppState, loaded: Option<Vec<u8>>) {
    let Some(shared) = app.sessions.shared() else {
        return;
    };
    let path = &app.config.directory.members_csv;
    let now = tokio::fs::read(path).await.ok();
    let file = match (loaded, now) {
        (Some(loaded), Some(now)) if loaded == now => loaded,
        _ => {
            tracing::warn!(file = %path.display(), "the directory file changed while it loaded; not shared with the other instances (reload again)");
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
        let (path, config) = (path.clone(), std::sync::Arc::clone(&app.config));
        tokio::task::spawn_blocking(move || {
            replace_if_it_loads(
                &path,
                &file,
                config.directory.sheet(),
                config.directory.default_region,
            )
        })
        .await
    };
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(file = %path.display(), "the directory another instance published was not taken here (the file here is unchanged): {e}");
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

/// Writes `bytes` beside `path` (with its extension, which says its
/// format), checks that they load as a directory here, and only then
/// renames the copy over `path`, so that neither a file that does not load
/// nor a crash midway ever replaces the file this instance starts from.
fn replace_if_it_loads(
    path: &Path,
    bytes: &[u8],
    sheet: Option<&str>,
    region: crate::phone::Region,
) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let suffix = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let mut copy = tempfile::Builder::new()
        .prefix(".published-")
        .suffix(&suffix)
        .tempfile_in(dir)
        .map_err(|e| e.to_string())?;
    std::io::Write::write_all(&mut copy, bytes).map_err(|e| e.to_string())?;
    copy.as_file().sync_all().map_err(|e| e.to_string())?;
    crate::directory::Directory::load_sheet(copy.path(), sheet, region)
        .map_err(|e| format!("it does not load here: {e}"))?;
    copy.persist(path).map_err(|e| e.error.to_string())?;
    Ok(())
}
