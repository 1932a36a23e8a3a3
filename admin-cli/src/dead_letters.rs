//! The dead-letter queue (SQS): what is on it, and its re-drive through
//! `syncaroo_shared::deadletter::replay`.

use serde_json::{json, Value};
use syncaroo_shared::deadletter::DeadLetter;
use syncaroo_shared::platform_ops as ops;
use syncaroo_shared::webhook::WebhookKind;
use syncaroo_shared::{App, Error};

pub struct Queue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

/// One received message.
struct Message {
    id: String,
    receipt: String,
    letter: DeadLetter,
}

fn sqs_err(op: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    let message = format!("{op}: {}", aws_sdk_sqs::error::DisplayErrorContext(&e));
    Error::Upstream(syncaroo_shared::error::Fault::transient(message).with_source(e))
}

fn describe(letter: &DeadLetter) -> (&'static str, String, String) {
    match letter {
        DeadLetter::Webhook { hook, reason, .. } => (
            "webhook",
            format!(
                "{} webhook, connection {}, location {}{}",
                hook.webhook_type().as_str(),
                hook.connection_id,
                hook.location_id,
                match &hook.kind {
                    WebhookKind::Data(change) => format!(", {}", change.attribute.as_str()),
                    WebhookKind::Status { .. } => String::new(),
                }
            ),
            reason.clone(),
        ),
        DeadLetter::Change { entry, reason } => (
            "changeEvent",
            format!("{} on bus {}", entry.detail_type, entry.event_bus_name),
            reason.clone(),
        ),
        DeadLetter::Other { summary } => ("other", summary.clone(), String::new()),
    }
}

impl Queue {
    pub fn new(sdk: &aws_config::SdkConfig, url: &str) -> Result<Self, Error> {
        if url.is_empty() {
            return Err(Error::InvalidRequest(
                "no dead-letter queue: pass --queue-url or set DEAD_LETTER_QUEUE_URL (the stack's DeadLetterQueueUrl output)".into(),
            ));
        }
        Ok(Self {
            sqs: aws_sdk_sqs::Client::new(sdk),
            url: url.into(),
        })
    }

    /// Receives up to `max` messages, each hidden for `hide_secs`.
    async fn receive(&self, max: usize, hide_secs: i32) -> Result<Vec<Message>, Error> {
        let mut out: Vec<Message> = Vec::new();
        while out.len() < max {
            let batch = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages((max - out.len()).min(10) as i32)
                .visibility_timeout(hide_secs)
                .wait_time_seconds(0)
                .send()
                .await
                .map_err(|e| sqs_err("ReceiveMessage", e))?;
            let msgs = batch.messages();
            if msgs.is_empty() {
                break;
            }
            for m in msgs {
                out.push(Message {
                    id: m.message_id().unwrap_or_default().to_string(),
                    receipt: m.receipt_handle().unwrap_or_default().to_string(),
                    letter: DeadLetter::parse(m.body().unwrap_or_default()),
                });
            }
        }
        Ok(out)
    }

    /// Makes received messages visible again at once.
    async fn release(&self, msgs: &[&Message]) -> Result<(), Error> {
        for m in msgs {
            self.sqs
                .change_message_visibility()
                .queue_url(&self.url)
                .receipt_handle(&m.receipt)
                .visibility_timeout(0)
                .send()
                .await
                .map_err(|e| sqs_err("ChangeMessageVisibility", e))?;
        }
        Ok(())
    }

    /// What is on the queue; every message stays there.
    pub async fn list(&self, max: usize) -> Result<Vec<Value>, Error> {
        let msgs = self.receive(max, 30).await?;
        self.release(&msgs.iter().collect::<Vec<_>>()).await?;
        Ok(msgs
            .iter()
            .map(|m| {
                let (kind, what, reason) = describe(&m.letter);
                json!({"messageId": m.id, "kind": kind, "what": what, "reason": reason})
            })
            .collect())
    }

    /// Re-drives each message; a replayed one is deleted, the others are
    /// left on the queue (visible again) with the reason.
    pub async fn replay(&self, app: &App, max: usize) -> Result<Vec<Value>, Error> {
        let msgs = self.receive(max, 60).await?;
        let mut results = Vec::new();
        let mut left = Vec::new();
        for m in &msgs {
            let (kind, what, _) = describe(&m.letter);
            let result = match ops::replay(app, &m.letter).await {
                Ok(done) => {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.url)
                        .receipt_handle(&m.receipt)
                        .send()
                        .await
                        .map_err(|e| sqs_err("DeleteMessage", e))?;
                    match done {
                        ops::Replayed::Recorded(r) => format!("recorded again: {r}"),
                        ops::Replayed::Superseded(t) => {
                            format!("not recorded: {t} has had a later status webhook since")
                        }
                        ops::Replayed::Put(t) => format!("put: {t}"),
                    }
                }
                Err(e) => {
                    left.push(m);
                    format!("left on the queue: {e}")
                }
            };
            results.push(json!({"messageId": m.id, "kind": kind, "what": what, "result": result}));
        }
        self.release(&left).await?;
        Ok(results)
    }
}
