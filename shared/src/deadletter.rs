//! Where webhook events that cannot be processed go: an SQS queue in AWS
//! (alarmed in template.yaml), a list in memory locally.

use crate::changes::Entry;
use crate::error::{Error, Fault};
use crate::model::{ConnectionId, UserId};
use crate::store::EventRecord;
use crate::webhook::{Webhook, WebhookType};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// A webhook whose work was given up (a target's fetch or status change,
/// or an event an earlier version recorded): what its dead letter carries.
#[derive(Debug, Clone, PartialEq)]
pub struct GivenUp {
    /// The target's id, or the recorded event's.
    pub id: String,
    pub connection_id: ConnectionId,
    pub webhook_type: WebhookType,
    pub location_id: String,
    /// The latest webhook's body without its `hash`, as JSON.
    pub payload: String,
    /// When that webhook was received, in milliseconds since the epoch.
    pub received_at_ms: i64,
    pub attempts: u32,
}

impl GivenUp {
    /// A target given up after `attempts` tries: its latest webhook.
    pub fn target(state: &crate::store::TargetState, attempts: u32) -> Self {
        let target = &state.target;
        Self {
            id: target.id(),
            connection_id: target.connection_id.clone(),
            webhook_type: if target.is_status() {
                WebhookType::Status
            } else {
                WebhookType::Data
            },
            location_id: target.location_id.clone(),
            payload: state.payload.clone(),
            received_at_ms: state.notified_at_ms,
            attempts,
        }
    }

    /// A recorded event given up after `attempts` tries.
    pub fn event(event: &EventRecord, attempts: u32) -> Self {
        Self {
            id: event.id.clone(),
            connection_id: event.connection_id.clone(),
            webhook_type: event.webhook_type,
            location_id: event.location_id.clone(),
            payload: event.payload.clone(),
            received_at_ms: event.received_at_ms,
            attempts,
        }
    }
}

#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// A webhook's work given up (a fetch, a status change).
    async fn send(&self, given_up: &GivenUp, reason: &str) -> Result<(), Error>;
    /// A change event that could not be put.
    async fn send_entry(&self, entry: &Entry, reason: &str) -> Result<(), Error>;
    /// Deletes the dead letters that name one of `connections` or `user`
    /// (erasure); returns how many, and whether every message visible was
    /// read (for at most [`PURGE_TIME`] a call). The others stay.
    async fn purge(
        &self,
        user: &UserId,
        connections: &[ConnectionId],
    ) -> Result<(u64, bool), Error>;
}

/// How long one purge reads the queue: well inside the admin function's
/// 30 s, beside the erasure's own work.
pub const PURGE_TIME: std::time::Duration = std::time::Duration::from_secs(8);

/// Whether a dead letter's body names `user` or one of `connections`: read
/// as JSON, not through [`DeadLetter::parse`], so a letter whose webhook no
/// longer parses is still found: a webhook letter's `connectionId` (its
/// own, or its payload's, also in letters from before `kind`), a change
/// event's `connectionId` or `userId`.
pub fn names_any(body: &str, user: &UserId, connections: &[ConnectionId]) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return false;
    };
    let id = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let conn =
        |v: &serde_json::Value| id(&v["connectionId"]).and_then(|c| ConnectionId::parse(&c).ok());
    let detail: serde_json::Value = v["entry"]["Detail"]
        .as_str()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    [&v, &v["payload"], &detail]
        .iter()
        .filter_map(|x| conn(x))
        .any(|c| connections.contains(&c))
        || id(&detail["userId"]).is_some_and(|u| u == user.as_str())
}

/// A dead-letter queue message as we write it, told apart by `kind`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum Message {
    /// A webhook whose work was given up: what an operator needs to look
    /// into it, and what `replay` records again.
    Webhook(WebhookLetter),
    /// A change event that could not be put.
    ChangeEvent { reason: String, entry: Entry },
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WebhookLetter {
    event_id: String,
    connection_id: String,
    webhook_type: String,
    location_id: String,
    /// Milliseconds since the epoch.
    received_at: i64,
    attempts: u32,
    reason: String,
    /// The webhook's body without its `hash`.
    payload: serde_json::Value,
}

/// A webhook message written before `kind` existed: its payload, and what
/// else it may carry.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UnkindedWebhook {
    payload: serde_json::Value,
    #[serde(default)]
    received_at: i64,
    #[serde(default)]
    reason: String,
}

/// The message body of a given-up webhook.
pub fn message(event: &GivenUp, reason: &str) -> String {
    let letter = Message::Webhook(WebhookLetter {
        event_id: event.id.clone(),
        connection_id: event.connection_id.as_str().to_string(),
        webhook_type: event.webhook_type.as_str().to_string(),
        location_id: event.location_id.clone(),
        received_at: event.received_at_ms,
        attempts: event.attempts,
        reason: reason.to_string(),
        payload: serde_json::from_str(&event.payload).unwrap_or_default(),
    });
    serde_json::to_string(&letter).expect("a dead letter serialises to JSON")
}

/// The message body of a change event that could not be put.
pub fn entry_message(entry: &Entry, reason: &str) -> String {
    let letter = Message::ChangeEvent {
        reason: reason.to_string(),
        entry: entry.clone(),
    };
    serde_json::to_string(&letter).expect("a dead letter serialises to JSON")
}

/// A dead-letter queue message, read back.
#[derive(Debug, Clone)]
pub enum DeadLetter {
    /// A webhook whose work was given up: replay records it again.
    Webhook {
        hook: Webhook,
        received_at_ms: i64,
        reason: String,
    },
    /// A change event never put: replay puts it.
    Change { entry: Entry, reason: String },
    /// Anything else (Lambda's own record of a stream batch whose retries
    /// ran out names shard positions, not the events): shown, not replayed.
    Other { summary: String },
}

impl DeadLetter {
    pub fn parse(body: &str) -> Self {
        let other = |why: &str| DeadLetter::Other {
            summary: format!("{why} ({} bytes)", body.len()),
        };
        let webhook = |payload: &serde_json::Value, received_at_ms, reason| match Webhook::parse(
            payload.to_string().as_bytes(),
        ) {
            Ok(hook) => DeadLetter::Webhook {
                hook,
                received_at_ms,
                reason,
            },
            Err(_) => other("a webhook dead letter whose payload does not parse"),
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
            return other("not JSON");
        };
        match v.get("kind").and_then(|k| k.as_str()) {
            Some(_) => match serde_json::from_value::<Message>(v) {
                Ok(Message::Webhook(w)) => webhook(&w.payload, w.received_at, w.reason),
                Ok(Message::ChangeEvent { entry, reason }) => DeadLetter::Change { entry, reason },
                Err(_) => other("a syncaroo-bridge dead letter that does not parse"),
            },
            // Lambda's record of a stream batch it gave up on.
            None if v.get("DDBStreamBatchInfo").is_some() => {
                other("a stream batch Lambda gave up on (see its shard and sequence numbers)")
            }
            // Messages from before `kind` existed are webhooks.
            None => match serde_json::from_value::<UnkindedWebhook>(v) {
                Ok(w) => webhook(&w.payload, w.received_at, w.reason),
                Err(_) => other("not a syncaroo-bridge dead letter"),
            },
        }
    }
}

pub struct SqsDeadLetters {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsDeadLetters {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    async fn send(&self, event: &GivenUp, reason: &str) -> Result<(), Error> {
        self.send_body(message(event, reason)).await
    }
    async fn send_entry(&self, entry: &Entry, reason: &str) -> Result<(), Error> {
        self.send_body(entry_message(entry, reason)).await
    }

    /// Receives every visible message (each hidden for a minute), deletes
    /// those that name the user, and makes the others visible again at
    /// once, in batches of ten. `complete` once a long poll (1 s) found the
    /// queue empty of visible messages, within [`PURGE_TIME`]. Messages
    /// another reader holds hidden are not seen: the next erasure call,
    /// which must find nothing, reads the queue again.
    async fn purge(
        &self,
        user: &UserId,
        connections: &[ConnectionId],
    ) -> Result<(u64, bool), Error> {
        if self.queue_url.is_empty() {
            return Ok((0, true));
        }
        let until = std::time::Instant::now() + PURGE_TIME;
        let (mut purged, mut others, mut complete) = (0, Vec::new(), false);
        while std::time::Instant::now() < until {
            let out = self
                .client
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .wait_time_seconds(1)
                .send()
                .await
                .map_err(|e| sqs_err("ReceiveMessage", e))?;
            if out.messages().is_empty() {
                complete = true;
                break;
            }
            let mut named = Vec::new();
            for m in out.messages() {
                let receipt = m.receipt_handle().unwrap_or_default().to_string();
                if names_any(m.body().unwrap_or_default(), user, connections) {
                    named.push(receipt);
                } else {
                    others.push(receipt);
                }
            }
            purged += named.len() as u64;
            self.delete_batch(named).await?;
        }
        for batch in others.chunks(10) {
            let entries = batch.iter().enumerate().map(|(i, r)| {
                aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r)
                    .visibility_timeout(0)
                    .build()
                    .map_err(|e| sqs_err("ChangeMessageVisibilityBatch", e))
            });
            self.client
                .change_message_visibility_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries.collect::<Result<_, _>>()?))
                .send()
                .await
                .map_err(|e| sqs_err("ChangeMessageVisibilityBatch", e))?;
        }
        Ok((purged, complete))
    }
}

fn sqs_err(op: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    let message = format!("{op}: {}", aws_sdk_sqs::error::DisplayErrorContext(&e));
    Error::Upstream(Fault::transient(message).with_source(e))
}

impl SqsDeadLetters {
    /// Deletes received messages by receipt, ten a request; a message
    /// SQS could not delete is an error (the next erasure call tries again).
    async fn delete_batch(&self, receipts: Vec<String>) -> Result<(), Error> {
        if receipts.is_empty() {
            return Ok(());
        }
        let entries = receipts.iter().enumerate().map(|(i, r)| {
            aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(r)
                .build()
                .map_err(|e| sqs_err("DeleteMessageBatch", e))
        });
        let out = self
            .client
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries.collect::<Result<_, _>>()?))
            .send()
            .await
            .map_err(|e| sqs_err("DeleteMessageBatch", e))?;
        match out.failed().first() {
            None => Ok(()),
            Some(f) => Err(Error::Upstream(Fault::transient(format!(
                "DeleteMessageBatch: {} ({})",
                f.code(),
                f.message().unwrap_or_default()
            )))),
        }
    }

    async fn send_body(&self, body: String) -> Result<(), Error> {
        if self.queue_url.is_empty() {
            return Err(Error::Config("DEAD_LETTER_QUEUE_URL is not set".into()));
        }
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| {
                let message = format!(
                    "SendMessage: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                );
                Error::Upstream(Fault::transient(message).with_source(e))
            })?;
        Ok(())
    }
}

/// Keeps dead letters in memory (local runner, tests).
#[derive(Default)]
pub struct MemoryDeadLetters(Mutex<Vec<(String, String, String)>>);

impl MemoryDeadLetters {
    /// `(event id or detail type, reason)` of every dead letter so far.
    pub fn all(&self) -> Vec<(String, String)> {
        self.lock()
            .iter()
            .map(|(id, r, _)| (id.clone(), r.clone()))
            .collect()
    }

    /// Every message body so far, as the SQS queue would hold it.
    pub fn messages(&self) -> Vec<String> {
        self.lock().iter().map(|(_, _, m)| m.clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, String, String)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl DeadLetters for MemoryDeadLetters {
    async fn send(&self, event: &GivenUp, reason: &str) -> Result<(), Error> {
        self.lock()
            .push((event.id.clone(), reason.to_string(), message(event, reason)));
        Ok(())
    }
    async fn send_entry(&self, entry: &Entry, reason: &str) -> Result<(), Error> {
        self.lock().push((
            entry.detail_type.clone(),
            reason.to_string(),
            entry_message(entry, reason),
        ));
        Ok(())
    }

    async fn purge(
        &self,
        user: &UserId,
        connections: &[ConnectionId],
    ) -> Result<(u64, bool), Error> {
        let mut g = self.lock();
        let before = g.len();
        g.retain(|(_, _, body)| !names_any(body, user, connections));
        Ok(((before - g.len()) as u64, true))
    }
}
