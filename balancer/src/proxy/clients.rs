//! Clients' hold on the proxy, bounded as nginx bounds it: a request head
//! must arrive within `client_header_timeout`, an idle keep-alive
//! connection closes after `keepalive_timeout`, and at the connection limit
//! idle connections are closed to make room (nginx's reusable connections)
//! or, when none is idle, the newcomer is turned away with a log line.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::conf::ClientLimits;

/// Stands for "no time" in the millisecond fields.
const NEVER: u64 = u64::MAX;

/// Idle connections closed at once to make room, as nginx's
/// `ngx_drain_connections` does.
const RECLAIM: usize = 32;

/// One client connection as the timeouts and the limit see it. Times are
/// milliseconds since it opened, so they fit atomics and cost no lock.
pub(crate) struct Conn {
    opened: Instant,
    /// Requests between their head and their answer's last byte.
    busy: AtomicU32,
    /// When it last became idle: opened, or an answer ended.
    idle_since: AtomicU64,
    /// When the first byte of a next request came, while idle.
    reading_since: AtomicU64,
    /// An answer has ended: idle is now keep-alive, not a first wait.
    served: AtomicBool,
    /// The time the clock sleeps to; a request that starts and needs an
    /// earlier one wakes it.
    armed: AtomicU64,
    reclaim: AtomicBool,
    wake: Notify,
}

/// Why a connection is closed by the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// `client_header_timeout` ran out with part of a request read: nginx
    /// logs it as 408.
    Header,
    /// Nothing of a request came in time (before the first, or between two).
    Idle,
    /// Closed to make room for a new client at the connection limit.
    Reclaimed,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            opened: Instant::now(),
            busy: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            reading_since: AtomicU64::new(NEVER),
            served: AtomicBool::new(false),
            armed: AtomicU64::new(NEVER),
            reclaim: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    /// A request's head has been read; the connection is busy until the
    /// returned guard is dropped with the answer.
    pub(crate) fn begin(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Relaxed);
        self.reading_since.store(NEVER, Relaxed);
        Busy(self.clone())
    }

    /// Bytes arrived: if the connection was idle, a request head is now
    /// being read and `client_header_timeout` runs from here.
    fn saw_bytes(&self, header_timeout: Duration) {
        if self.busy.load(Relaxed) > 0 || self.reading_since.load(Relaxed) != NEVER {
            return;
        }
        let now = self.now();
        self.reading_since.store(now, Relaxed);
        if now.saturating_add(millis(header_timeout)) < self.armed.load(Relaxed) {
            self.wake.notify_one();
        }
    }

    fn idle(&self) -> bool {
        self.busy.load(Relaxed) == 0 && self.reading_since.load(Relaxed) == NEVER
    }

    /// When the connection is to close unless something happens first;
    /// `None` while a request is in progress.
    fn deadline(&self, limits: &ClientLimits) -> Option<(u64, Expired)> {
        if self.busy.load(Relaxed) > 0 {
            return None;
        }
        let reading = self.reading_since.load(Relaxed);
        Some(if reading != NEVER {
            (
                reading.saturating_add(millis(limits.header_timeout)),
                Expired::Header,
            )
        } else if self.served.load(Relaxed) {
            let since = self.idle_since.load(Relaxed);
            (
                since.saturating_add(millis(limits.keepalive_timeout)),
                Expired::Idle,
            )
        } else {
            (millis(limits.header_timeout), Expired::Idle)
        })
    }

    /// Resolves when the connection is to close, and says why. Sleeps to
    /// the deadline, so a busy keep-alive connection costs no timer work
    /// per request.
    pub(crate) async fn expired(&self, limits: &ClientLimits) -> Expired {
        // While busy, look again this often (a long stream is not a stall).
        let recheck = millis(limits.header_timeout.min(limits.keepalive_timeout)).max(1000);
        loop {
            if self.reclaim.load(Relaxed) {
                return Expired::Reclaimed;
            }
            let now = self.now();
            let until = match self.deadline(limits) {
                Some((at, why)) if at <= now => return why,
                Some((at, _)) => at,
                None => now.saturating_add(recheck),
            };
            self.armed.store(until, Relaxed);
            let wake_at = self.opened + Duration::from_millis(until);
            tokio::select! {
                () = tokio::time::sleep_until(wake_at.into()) => {}
                () = self.wake.notified() => {}
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(NEVER - 1)
}

/// A request in progress on a connection; dropped with its answer.
pub(crate) struct Busy(Arc<Conn>);

impl Drop for Busy {
    fn drop(&mut self) {
        let conn = &self.0;
        conn.idle_since.store(conn.now(), Relaxed);
        conn.served.store(true, Relaxed);
        conn.busy.fetch_sub(1, Relaxed);
    }
}

/// The open client connections, and the limit on them.
pub(crate) struct Clients {
    pub limits: ClientLimits,
    /// Connections open at once.
    pub max: usize,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    warned: Mutex<Option<Instant>>,
}

/// A connection's place among the open ones; leaving frees it.
pub(crate) struct Admitted {
    clients: Arc<Clients>,
    id: u64,
    pub conn: Arc<Conn>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.clients.lock().remove(&self.id);
    }
}

impl Clients {
    pub(crate) fn new(limits: ClientLimits, fd_limit: Option<u64>) -> Clients {
        let max = connection_limit(limits.connections, fd_limit);
        Clients {
            limits,
            max,
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            warned: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a new connection, closing idle ones to make room at the
    /// limit; `None` when every connection is busy (the newcomer is closed).
    pub(crate) fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut open = self.lock();
        if open.len() >= self.max {
            let idle: Vec<&Arc<Conn>> = open.values().filter(|c| c.idle()).take(RECLAIM).collect();
            for conn in &idle {
                conn.reclaim.store(true, Relaxed);
                conn.wake.notify_one();
            }
            let reused = !idle.is_empty();
            self.warn(if reused {
                format!(
                    "{} worker_connections are not enough, reusing connections",
                    self.max
                )
            } else {
                format!(
                    "{} worker_connections are not enough, closing a new connection",
                    self.max
                )
            });
            if !reused {
                return None;
            }
        }
        let id = self.next_id.fetch_add(1, Relaxed);
        let conn = Arc::new(Conn::new());
        open.insert(id, conn.clone());
        Some(Admitted {
            clients: self.clone(),
            id,
            conn,
        })
    }

    /// nginx's error-log line, at most once a second.
    fn warn(&self, line: String) {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            *warned = Some(Instant::now());
            eprintln!("balancer: {line}");
        }
    }
}

/// The connections the proxy may hold: the configured `worker_connections`,
/// within what the file-descriptor limit allows with one upstream
/// connection per client and some to spare.
fn connection_limit(configured: Option<usize>, fd_limit: Option<u64>) -> usize {
    let by_fds = fd_limit.map_or(usize::MAX, |n| {
        usize::try_from(n.saturating_sub(64) / 2)
            .unwrap_or(usize::MAX)
            .max(16)
    });
    configured.unwrap_or(usize::MAX).min(by_fds)
}

/// Tells a client connection when bytes arrive on its socket.
pub(crate) struct Watch {
    pub conn: Arc<Conn>,
    pub header_timeout: Duration,
}

impl primitives::Hooks for Watch {
    fn read(&self, _bytes: usize) {
        self.conn.saw_bytes(self.header_timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_the_configured_one_within_the_file_descriptors() {
        assert_eq!(connection_limit(None, Some(1024)), 480);
        assert_eq!(connection_limit(Some(100), Some(1024)), 100);
        assert_eq!(connection_limit(Some(4096), Some(1024)), 480);
        assert_eq!(connection_limit(None, Some(10)), 16);
        assert_eq!(connection_limit(Some(7), None), 7);
    }

    #[test]
    fn deadlines_follow_nginxs_timers() {
        let limits = ClientLimits {
            header_timeout: Duration::from_millis(100),
            keepalive_timeout: Duration::from_millis(500),
            ..ClientLimits::default()
        };
        let conn = Arc::new(Conn::new());
        // Waiting for the first request: client_header_timeout from the open.
        assert_eq!(conn.deadline(&limits), Some((100, Expired::Idle)));
        let busy = conn.begin();
        assert_eq!(
            conn.deadline(&limits),
            None,
            "no timer on a request in progress"
        );
        drop(busy);
        let (at, why) = conn.deadline(&limits).unwrap();
        assert_eq!(why, Expired::Idle);
        assert!(
            (500..600).contains(&at),
            "keepalive_timeout from the answer: {at}"
        );
        conn.saw_bytes(limits.header_timeout);
        let (at, why) = conn.deadline(&limits).unwrap();
        assert_eq!(why, Expired::Header);
        assert!(
            (100..200).contains(&at),
            "client_header_timeout from the first byte: {at}"
        );
        assert!(!conn.idle(), "a connection mid-request is not taken back");
    }
}
