//! Recording a verified webhook for the sync worker: what the webhook
//! handler does on ack, and what a dead letter's replay does again.

use crate::crypto;
use crate::error::Error;
use crate::store::{EventRecord, EventStatus, EventStore, SyncTarget, TargetNote};
use crate::webhook::{Webhook, WebhookType};

/// The target a data webhook notifies; `None` for a status webhook.
pub fn target_of(hook: &Webhook) -> Option<SyncTarget> {
    (hook.webhook_type == WebhookType::Data).then(|| SyncTarget {
        connection_id: hook.connection_id.clone(),
        location_id: hook.location_id.clone(),
        attribute_type: hook.attribute_type.clone().unwrap_or_default(),
        resource_id: hook.resource_id.clone(),
    })
}

/// Records a verified webhook for the worker, as received at
/// `received_at_ms`: a data webhook notifies its target (at `now_ms`, so a
/// fetch starting after it covers it), a status webhook is recorded as
/// its own event. Also what a dead letter's replay calls.
pub async fn record(
    store: &dyn EventStore,
    hook: &Webhook,
    now_ms: i64,
    received_at_ms: i64,
) -> Result<serde_json::Value, Error> {
    Ok(match target_of(hook) {
        // Data: mark the target; the worker fetches while a notification
        // is newer than its last fetch's start (coalescing duplicates).
        Some(target) => {
            let id = target.id();
            store
                .notify_target(&TargetNote {
                    target,
                    payload: hook.stored_payload(),
                    notified_at_ms: now_ms,
                })
                .await?;
            serde_json::json!({ "status": "accepted", "targetId": id })
        }
        // Status: each delivery is a change of state, kept with its
        // receipt time and applied in arrival order.
        None => {
            let event = EventRecord {
                id: format!(
                    "{}:status:{}:{received_at_ms}:{}",
                    hook.connection_id,
                    hook.location_id,
                    crypto::random_b64(9)
                ),
                connection_id: hook.connection_id.clone(),
                webhook_type: hook.webhook_type,
                location_id: hook.location_id.clone(),
                payload: hook.stored_payload(),
                received_at_ms,
                status: EventStatus::Pending,
                attempts: 0,
                error: None,
            };
            store.record_event(&event).await?;
            serde_json::json!({ "status": "accepted", "eventId": event.id })
        }
    })
}
