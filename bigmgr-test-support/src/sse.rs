//! Reading a Server-Sent Events stream (`GET /api/v1/jobs/{id}/events`): event by event as
//! they arrive ([`EventReader`]), or to its end ([`read_events`]).

use serde_json::Value;

/// Reads the events of a Server-Sent Events stream as they arrive.
pub struct EventReader {
    res: reqwest::Response,
    /// What arrived of the events not yet returned.
    buf: Vec<u8>,
    /// The server ended the stream.
    ended: bool,
}

impl EventReader {
    /// Reads the stream of `res`, a response whose headers have arrived.
    pub fn new(res: reqwest::Response) -> EventReader {
        EventReader {
            res,
            buf: Vec::new(),
            ended: false,
        }
    }

    /// The next event as soon as it has arrived whole: its name and its data, parsed as JSON
    /// (`Null` if it is not); `None` once the server has ended the stream. Blocks without an
    /// event name (comments, keep-alives) are skipped.
    pub async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            let block = match self.buf.windows(2).position(|w| w == b"\n\n") {
                Some(end) => self.buf.drain(..end + 2).collect(),
                None if self.ended => {
                    if self.buf.is_empty() {
                        return None;
                    }
                    std::mem::take(&mut self.buf)
                }
                None => {
                    match self.res.chunk().await.expect("a chunk of the stream") {
                        Some(chunk) => self.buf.extend_from_slice(&chunk),
                        None => self.ended = true,
                    }
                    continue;
                }
            };
            if let Some(event) = parse(&String::from_utf8_lossy(&block)) {
                return Some(event);
            }
        }
    }
}

/// The event of one block of lines, if it names one.
fn parse(block: &str) -> Option<(String, Value)> {
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
}

/// Reads a Server-Sent Events stream until the server ends it: (event, data) pairs, the data
/// parsed as JSON (`Null` if it is not).
pub async fn read_events(res: reqwest::Response) -> Vec<(String, Value)> {
    let mut reader = EventReader::new(res);
    let mut events = Vec::new();
    while let Some(event) = reader.next().await {
        events.push(event);
    }
    events
}
