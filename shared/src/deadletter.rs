//! Where webhook events that cannot be processed go: an SQS queue in AWS
//! (alarmed in template.yaml), a list in memory locally.

use crate::error::Error;
use crate::store::EventRecord;
use async_trait::async_trait;
use std::sync::Mutex;

#[async_trait]
pub trait DeadLetters: Send + Sync {
    async fn send(&self, event: &EventRecord, reason: &str) -> Result<(), Error>;
}

/// The message body: what an operator needs to look into and redrive it.
pub fn message(event: &EventRecord, reason: &str) -> String {
    serde_json::json!({
        "eventId": event.id,
        "connectionId": event.connection_id.as_str(),
        "webhookType": event.webhook_type.as_str(),
        "locationId": event.location_id,
        "attempts": event.attempts,
        "reason": reason,
        "payload": serde_json::from_str::<serde_json::Value>(&event.payload).unwrap_or_default(),
    })
    .to_string()
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
    async fn send(&self, event: &EventRecord, reason: &str) -> Result<(), Error> {
        if self.queue_url.is_empty() {
            return Err(Error::Config("DEAD_LETTER_QUEUE_URL is not set".into()));
        }
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message(event, reason))
            .send()
            .await
            .map_err(|e| {
                Error::Store(format!(
                    "SendMessage: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                ))
            })?;
        Ok(())
    }
}

/// Keeps dead letters in memory (local runner, tests).
#[derive(Default)]
pub struct MemoryDeadLetters(Mutex<Vec<(String, String)>>);

impl MemoryDeadLetters {
    /// `(event id, reason)` of every dead letter so far.
    pub fn all(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl DeadLetters for MemoryDeadLetters {
    async fn send(&self, event: &EventRecord, reason: &str) -> Result<(), Error> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((event.id.clone(), reason.to_string()));
        Ok(())
    }
}
