//! A run of the engine through the library, as loadgen makes one, and a
//! server that answers with exactly the bytes a test gives it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use engine::{Flags, Schedule, Stats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Runs `flags` to the end through the library, returning what it measured.
pub async fn run(flags: Flags) -> (Stats, Arc<Schedule>) {
    let plan = Arc::new(flags.plan().unwrap());
    let addr = engine::resolve(&plan).await.unwrap();
    let schedule = Arc::new(Schedule::new(&plan));
    let stats = tokio::time::timeout(
        Duration::from_secs(30),
        engine::run(plan, schedule.clone(), addr, Arc::new(engine::Rows::none())),
    )
    .await
    .expect("the run ends by itself");
    (stats, schedule)
}

/// A server that reads a request and answers with `head`, then `body`
/// repeated `times` times (`None`: until the client goes away), then closes.
pub async fn canned(head: &'static str, body: &'static [u8], times: Option<usize>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut sent = 0;
                while times.is_none_or(|t| sent < t) {
                    if s.write_all(body).await.is_err() {
                        return;
                    }
                    sent += 1;
                }
            });
        }
    });
    addr
}
