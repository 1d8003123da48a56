//! Shutdown signalling for the server and its background tasks.
//!
//! One [`ShutdownTrigger`] is held by whoever decides to stop (the signal
//! handler, or a test); every task holds a cloned [`Shutdown`] and returns
//! when it fires. The shape is mini-redis's `shutdown.rs`, on a
//! `tokio::sync::watch` so late subscribers still see a stop that happened.

use tokio::sync::watch;

/// Fires the shutdown for every [`Shutdown`] made from it.
#[derive(Debug)]
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

/// Listens for the shutdown.
#[derive(Debug, Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

impl ShutdownTrigger {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (sender, receiver) = watch::channel(false);
        (ShutdownTrigger { sender }, Shutdown { receiver })
    }

    pub fn fire(&self) {
        self.sender.send_replace(true);
    }
}

impl Shutdown {
    pub fn is_shutdown(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Returns once the shutdown has fired (at once if it already has).
    pub async fn recv(&mut self) {
        // An error means the trigger was dropped: treat that as a stop too.
        let _ = self.receiver.wait_for(|&stop| stop).await;
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn os_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received: shutting down"),
        () = terminate => tracing::info!("SIGTERM received: shutting down"),
    }
}
