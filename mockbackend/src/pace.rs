//! Delays as exact as the machine allows: a profile's latency and time to
//! first token are measured downstream, so they must not carry the
//! runtime timer's millisecond.

use std::time::{Duration, Instant};

/// How early the runtime's timer is asked to wake us before a delay ends.
/// tokio's timer has millisecond ticks and rounds up, so it wakes 0-2 ms late.
const TIMER_SLOP: Duration = Duration::from_millis(2);

/// How early an OS sleep is asked to end: its timer slack (50 µs by default)
/// plus waking a thread, then waking the runtime worker, on a busy VM.
const SLEEP_SLOP: Duration = Duration::from_micros(200);

/// Waits `delay` to within a few microseconds rather than tokio's
/// millisecond: a profile that says `latency=10ms` should be measured as
/// 10 ms, not 11.3, or every latency figure downstream inherits the error.
/// Three stages, each finer and costlier than the last: the runtime's timer
/// for the bulk, an OS sleep on a blocking-pool thread (which leaves the
/// workers free) for the last two milliseconds, and yielding in a loop for
/// what the OS sleep leaves (under `SLEEP_SLOP`).
pub async fn wait(delay: Duration) {
    wait_until(Instant::now() + delay).await;
}

/// [`wait`], to a deadline.
pub async fn wait_until(deadline: Instant) {
    let delay = deadline.saturating_duration_since(Instant::now());
    if let Some(coarse) = delay.checked_sub(TIMER_SLOP) {
        tokio::time::sleep(coarse).await;
    }
    let fine = deadline.saturating_duration_since(Instant::now());
    if let Some(fine) = fine.checked_sub(SLEEP_SLOP).filter(|d| !d.is_zero()) {
        // A join error only comes from a runtime shutting down, and then
        // ending the wait early is what shutdown wants.
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(fine)).await;
    }
    while Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each stage hands over early and the next one finishes the job, so a
    /// wait is never shorter than asked, whichever stages a delay goes through.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wait_never_ends_early() {
        for micros in [1, 150, 199, 200, 201, 900, 1_999, 2_000, 2_001, 7_500] {
            let delay = Duration::from_micros(micros);
            let start = Instant::now();
            wait(delay).await;
            assert!(start.elapsed() >= delay, "{delay:?} ended early");
        }
    }
}
