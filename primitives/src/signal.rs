//! Ctrl-C and SIGTERM, the two ways a person or a CI runner stops a tool.
//! Caught from the moment [`Signals::new`] returns, so a tool that makes
//! them before it announces its ports cannot be killed outright by a
//! script that signals it the moment it reads them.

/// Ctrl-C and SIGTERM, caught from when this was made.
#[derive(Debug)]
pub struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Waits for the next Ctrl-C or SIGTERM.
    pub async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Waits for Ctrl-C or SIGTERM, caught from this call on; if signals
/// cannot be caught at all, never returns (the run goes on to its end).
pub async fn stop_signal() {
    match Signals::new() {
        Ok(mut s) => s.next().await,
        Err(_) => std::future::pending().await,
    }
}
