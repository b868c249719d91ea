//! A job's live events over `GET /jobs/{id}/events` (Server-Sent Events), read into
//! [`JobStreamEvent`]s — and [`JobFeed`] for [`Client`], so
//! [`bigmgr_core::view::follow`] follows a job through a server.

use crate::http::problem;
use crate::{Client, Error, Result};
use bigmgr_core::model::JobId;
use bigmgr_core::view::{EventReceiver, JobDetailView, JobFeed, JobStreamEvent};
use reqwest::Method;
use tokio::sync::mpsc;

impl Client {
    /// Sends a request for a Server-Sent Events stream: the response once it is a 2xx, else
    /// the refusal (its problem) or the transport error, naming `what`.
    pub(crate) async fn open_stream(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<reqwest::Response> {
        let res = req
            .header("accept", "text/event-stream")
            .send()
            .await
            .map_err(|e| self.transport_error(what, e))?;
        if !res.status().is_success() {
            let status = res.status().as_u16();
            let body = res.text().await.unwrap_or_default();
            return Err(self.refusal(what, status, &body));
        }
        Ok(res)
    }

    /// Job `id`'s live events, read from the server's event stream by a background task into
    /// the channel (which ends after `End`, or after an error). A job that does not exist is
    /// an error at once.
    pub async fn job_stream(&self, id: JobId) -> Result<EventReceiver<Error>> {
        let what = format!("GET /jobs/{id}/events");
        let mut res = self
            .open_stream(
                self.unbounded(Method::GET, &format!("/jobs/{id}/events")),
                &what,
            )
            .await?;
        let (tx, rx) = mpsc::channel(256);
        let client = self.clone();
        tokio::spawn(async move {
            let mut parser = Parser::default();
            loop {
                let chunk = match res.chunk().await {
                    Ok(Some(c)) => c,
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(client.transport_error(&what, e))).await;
                        return;
                    }
                };
                for (name, data) in parser.feed(&chunk) {
                    let event = match name.as_str() {
                        "error" => Err(problem(500, &data).unwrap_or_else(|| {
                            Error::Http(format!("{what}: the stream failed: {data}"))
                        })),
                        _ => match JobStreamEvent::parse(&name, &data) {
                            None => continue,
                            Some(Ok(e)) => Ok(e),
                            Some(Err(e)) => Err(Error::Http(format!(
                                "{what}: a `{name}` event has an unexpected shape ({e})"
                            ))),
                        },
                    };
                    let last = !matches!(event, Ok(ref e) if !matches!(e, JobStreamEvent::End(_)));
                    if tx.send(event).await.is_err() || last {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }
}

#[async_trait::async_trait]
impl JobFeed for Client {
    type Error = Error;

    async fn job_detail(&self, id: JobId) -> Result<JobDetailView> {
        self.job(id).await
    }

    async fn job_stream(&self, id: JobId) -> Result<EventReceiver<Error>> {
        Client::job_stream(self, id).await
    }
}

/// A Server-Sent Events parser (the subset the server sends: `event:`, `data:`, comments);
/// the assistant's answers are read with it too.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    /// Bytes of a line not ended yet.
    partial: Vec<u8>,
    /// The current event's name.
    name: String,
    /// The current event's data lines.
    data: Vec<String>,
}

impl Parser {
    /// Reads `bytes`; returns the events they complete, as (name, data).
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        self.partial.extend_from_slice(bytes);
        while let Some(nl) = self.partial.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = self.partial.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&raw[..raw.len() - 1]);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if line.is_empty() {
                if !self.data.is_empty() || !self.name.is_empty() {
                    let name = std::mem::take(&mut self.name);
                    let data = std::mem::take(&mut self.data).join("\n");
                    out.push((
                        if name.is_empty() {
                            "message".into()
                        } else {
                            name
                        },
                        data,
                    ));
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => self.name = value.to_string(),
                "data" => self.data.push(value.to_string()),
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_across_chunks_and_comments_skipped() {
        let mut p = Parser::default();
        let mut got = p.feed(b": keep-alive\n\nevent: job\ndata: {\"id\":1,");
        assert!(got.is_empty());
        got.extend(p.feed(b"\"state\":\"RUNNING\"}\r\n\r\nevent: log\ndata: a\ndata: b\n\n"));
        assert_eq!(
            got,
            vec![
                (
                    "job".to_string(),
                    "{\"id\":1,\"state\":\"RUNNING\"}".to_string()
                ),
                ("log".to_string(), "a\nb".to_string()),
            ]
        );
        let e = JobStreamEvent::parse(&got[0].0, &got[0].1)
            .unwrap()
            .unwrap();
        assert_eq!(e.name(), "job");
    }
}
