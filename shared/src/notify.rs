//! Recording a verified webhook for the sync worker: what the webhook
//! handler does on ack, and what a dead letter's replay does again.

use crate::error::Error;
use crate::store::{EventStore, SyncTarget, TargetNote};
use crate::webhook::{Webhook, WebhookKind};

/// The target a webhook notifies: a data webhook's attribute of a location
/// or resource, a status webhook's location status.
pub fn target_of(hook: &Webhook) -> SyncTarget {
    match &hook.kind {
        WebhookKind::Data(change) => SyncTarget {
            connection_id: hook.connection_id.clone(),
            location_id: hook.location_id.clone(),
            attribute_type: change.attribute.as_str().to_string(),
            resource_id: change.resource_id.clone(),
        },
        WebhookKind::Status { .. } => {
            SyncTarget::status(hook.connection_id.clone(), hook.location_id.clone())
        }
    }
}

/// Records a verified webhook for the worker: one write, which notifies its
/// target at `now_ms` (one more notification, the latest payload). A data
/// target is fetched while a notification is newer than its last fetch's
/// start (coalescing duplicates); a status target applies its latest
/// payload, ordered by the notification count (two in one millisecond
/// too). Also what a dead letter's replay calls.
pub async fn record(
    store: &dyn EventStore,
    hook: &Webhook,
    now_ms: i64,
) -> Result<serde_json::Value, Error> {
    let target = target_of(hook);
    let id = target.id();
    store
        .notify_target(&TargetNote {
            target,
            payload: hook.stored_payload(),
            notified_at_ms: now_ms,
        })
        .await?;
    Ok(serde_json::json!({ "status": "accepted", "targetId": id }))
}
