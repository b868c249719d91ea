//! Polling until something holds.

use std::future::Future;
use std::time::Duration;

/// Polls `f` every 100 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Blocks until something accepts TCP connections on `address:port` (at most 10 s).
pub fn wait_for_port(address: &str, port: u16) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let at = format!("{address}:{port}");
    while std::net::TcpStream::connect(&at).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on {at} after 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
