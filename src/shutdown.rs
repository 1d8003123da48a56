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

    /// A shutdown that fires with this one or when `also` completes,
    /// whichever is first (a task waits for both).
    pub fn or_else(
        &self,
        also: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Shutdown {
        let (trigger, shutdown) = ShutdownTrigger::new();
        let mut this = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = this.recv() => {}
                () = also => {}
            }
            trigger.fire();
        });
        shutdown
    }
}

/// SIGINT (Ctrl-C) and SIGTERM, listened for from the moment this is made:
/// made before the server says it is ready, so that a stop sent right
/// after is handled rather than killing the process.
pub struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    pub fn listen() -> std::io::Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Resolves on the first SIGINT or SIGTERM.
    pub async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => tracing::info!("SIGINT received: shutting down"),
            _ = self.terminate.recv() => tracing::info!("SIGTERM received: shutting down"),
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("Ctrl-C received: shutting down");
        }
    }
}
