//! Waiting between retries of the bus.

use std::time::Duration;

use quiver_io::live::Stop;

/// Exponential back-off between retries: 50 ms doubling to 2 s.
pub(super) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(super) fn new() -> Self {
        Backoff {
            next: Duration::from_millis(50),
        }
    }

    pub(super) fn reset(&mut self) {
        self.next = Duration::from_millis(50);
    }

    pub(super) async fn sleep(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(Duration::from_secs(2));
    }

    /// Sleeps unless stop is raised first; false when stopped.
    pub(super) async fn wait(&mut self, stop: &mut Stop) -> bool {
        tokio::select! {
            _ = self.sleep() => true,
            _ = stop.stopped() => false,
        }
    }
}
