//! Delivering notifications: the outbox in the store is read every half second and each due
//! notification is POSTed to its target — a webhook gets the [`NotificationView`] as it is,
//! an Alertmanager gets its changes as alerts of its v2 API — and every attempt is logged.

use crate::model::*;
use crate::store::Store;
use crate::view::NotificationView;
use crate::{Error, Result};
use std::sync::Arc;
use std::time::Duration;

/// How long a delivery attempt may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between two attempts to deliver a notification.
const MAX_RETRY: Duration = Duration::from_secs(300);

/// Delivers due notifications (POSTs their JSON bodies) every half second, until aborted: a
/// 2xx answer delivers one, anything else is kept in the log and tried again after 1 s, 2 s,
/// 4 s … up to 5 minutes. Notifications wait in the store, so a restart loses none.
pub(crate) async fn deliver(store: Arc<dyn Store>) {
    crate::tls::install_default_provider();
    let client = match reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .user_agent(concat!("bigmgr/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot make the notifications' HTTP client");
            return;
        }
    };
    loop {
        match store.due_notifications(now_ms(), 50).await {
            Ok(due) => {
                for n in due {
                    attempt(store.as_ref(), &client, &n).await;
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot read due notifications"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One attempt to deliver `n`, recorded.
async fn attempt(store: &dyn Store, client: &reqwest::Client, n: &Notification) {
    let (url, body) = match n.kind {
        TargetKind::Webhook => (n.url.clone(), n.body.clone()),
        TargetKind::Alertmanager => match alertmanager_body(&n.body) {
            Ok(body) => (
                format!("{}/api/v2/alerts", n.url.trim_end_matches('/')),
                body,
            ),
            Err(e) => {
                // A body this server wrote and cannot read: nothing to retry.
                let answer = format!("not sent: {e}");
                let _ = store
                    .record_delivery(n.id, now_ms(), None, &answer, None)
                    .await;
                return;
            }
        },
    };
    let sent = client
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let (status, answer) = match sent {
        Ok(res) => {
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            let first = text.lines().next().unwrap_or_default();
            let first: String = first.chars().take(200).collect();
            (
                Some(status.as_u16()),
                format!("{status} {first}").trim().to_string(),
            )
        }
        Err(e) => (None, format!("no answer: {e}")),
    };
    let delivered = status.is_some_and(|s| (200..300).contains(&s));
    let now = now_ms();
    let retry_at = (!delivered).then(|| {
        let wait = Duration::from_secs(1)
            .saturating_mul(1u32 << n.attempts.min(16))
            .min(MAX_RETRY);
        now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2)
    });
    if let Err(e) = store
        .record_delivery(n.id, now, status, &answer, retry_at)
        .await
    {
        tracing::warn!(error = %e, "cannot record a delivery attempt");
    } else if !delivered {
        tracing::info!(notification = %n.id, url = %n.url, %answer, "notification not delivered; will retry");
    }
}

/// How long a firing alert sent to an Alertmanager lasts there unless resolved (`endsAt`): its
/// resolution ends it sooner; a server that went away for good lets it expire.
const ALERTMANAGER_HOLD_MS: i64 = 24 * 3600 * 1000;

/// A notification's changes as Alertmanager v2 alerts (`POST /api/v2/alerts`): labels
/// `alertname` (the definition), `cluster`, `host`, `service`, `unit` (those the alert is
/// about) and `severity` (critical, warning or unknown; a resolution keeps the severity it
/// had), the text as the `summary` annotation; a resolution ends at its time.
pub(crate) fn alertmanager_body(body: &str) -> Result<String> {
    let view: NotificationView = serde_json::from_str(body)
        .map_err(|e| Error::Invalid(format!("a notification that is not one: {e}")))?;
    let alerts: Vec<serde_json::Value> = view
        .changes
        .iter()
        .map(|ch| {
            let severity = if ch.to.is_firing() { ch.to } else { ch.from };
            let mut labels = serde_json::Map::new();
            labels.insert("alertname".into(), ch.definition.clone().into());
            labels.insert("cluster".into(), view.cluster.clone().into());
            for (k, v) in [
                ("host", &ch.host),
                ("service", &ch.service),
                ("unit", &ch.unit),
            ] {
                if let Some(v) = v {
                    labels.insert(k.into(), v.clone().into());
                }
            }
            labels.insert(
                "severity".into(),
                severity.as_str().to_ascii_lowercase().into(),
            );
            let ends = if ch.to.is_firing() {
                ch.at + ALERTMANAGER_HOLD_MS
            } else {
                ch.at
            };
            serde_json::json!({
                "labels": labels,
                "annotations": {"summary": ch.text, "bigmgr_state": ch.to.as_str()},
                "startsAt": rfc3339_ms(ch.at - i64::from(!ch.to.is_firing())),
                "endsAt": rfc3339_ms(ends),
            })
        })
        .collect();
    serde_json::to_string(&alerts).map_err(|e| Error::Invalid(format!("alerts: {e}")))
}

/// A time (ms since the epoch) in RFC 3339, UTC, with milliseconds.
fn rfc3339_ms(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            ms.rem_euclid(1000)
        ),
        Err(_) => "1970-01-01T00:00:00.000Z".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::AlertChangeView;

    #[test]
    fn alertmanager_alerts_carry_labels_and_end_when_resolved() {
        let change = |to, from, at| AlertChangeView {
            id: AlertChangeId(1),
            alert: AlertId(1),
            definition: "unit_down".into(),
            from,
            to,
            text: "zookeeper_server of zk on h2 is down".into(),
            host: Some("h2".into()),
            service: Some("zk".into()),
            unit: Some("zookeeper_server@h2".into()),
            at,
        };
        let view = NotificationView {
            cluster: "c".into(),
            changes: vec![
                change(AlertState::Critical, AlertState::Ok, 1_765_000_000_123),
                change(AlertState::Ok, AlertState::Critical, 1_765_000_060_000),
            ],
            firing: 0,
        };
        let body = alertmanager_body(&serde_json::to_string(&view).unwrap()).unwrap();
        let alerts: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(alerts[0]["labels"]["alertname"], "unit_down");
        assert_eq!(alerts[0]["labels"]["cluster"], "c");
        assert_eq!(alerts[0]["labels"]["unit"], "zookeeper_server@h2");
        assert_eq!(alerts[0]["labels"]["severity"], "critical");
        assert_eq!(alerts[0]["startsAt"], "2025-12-06T05:46:40.123Z");
        assert_eq!(alerts[0]["endsAt"], "2025-12-07T05:46:40.123Z");
        assert_eq!(
            alerts[1]["labels"]["severity"], "critical",
            "resolved keeps it"
        );
        assert_eq!(
            alerts[1]["endsAt"], "2025-12-06T05:47:40.000Z",
            "ends when resolved"
        );
        assert!(alertmanager_body("not json").is_err());
    }
}
