//! Reading a Server-Sent Events stream (`GET /api/v1/jobs/{id}/events`) to its end.

use serde_json::Value;

/// Reads a Server-Sent Events stream until the server ends it: (event, data) pairs, the data
/// parsed as JSON (`Null` if it is not).
pub async fn read_events(mut res: reqwest::Response) -> Vec<(String, Value)> {
    let mut buf = String::new();
    while let Some(chunk) = res.chunk().await.expect("a chunk of the stream") {
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
    buf.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = Some(e.trim().to_string());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            event.map(|e| (e, serde_json::from_str(&data).unwrap_or(Value::Null)))
        })
        .collect()
}
