//! Graceful shutdown: SIGTERM or SIGINT cancels one token that every listener and worker watches.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Returns a token cancelled on the first SIGTERM or SIGINT.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received; draining");
        trigger.cancel();
    });
    token
}

/// Completes `grace` after `shutdown` fired: the end of the drain (`ops.shutdown_grace_secs`),
/// when work still in flight is cut.
pub async fn grace_over(shutdown: &CancellationToken, grace: Duration) {
    shutdown.cancelled().await;
    tokio::time::sleep(grace).await;
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        }
        _ => {
            // Without signal handlers (unusual sandboxes) fall back to Ctrl-C only.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
