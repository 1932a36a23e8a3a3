//! The scheduled refresh: keeps Syncaroo's access token fresh so requests
//! rarely wait for one, and reports what it did. The refresh function's
//! only job (on the schedule); the admin handshake is the admin function's.

use crate::app::App;
use crate::syncaroo::ProviderError;
use serde_json::{json, Value};

/// Runs once per schedule tick. Returns a summary; an error only for
/// failures worth a Lambda retry (Syncaroo or the store unavailable).
pub async fn scheduled(app: &App) -> Result<Value, ProviderError> {
    let result = app.provider().refresh_if_due().await;
    // Reauth is a state: reported on every tick, 1 or 0, so its alarm
    // clears once an admin reconnects.
    let needs = matches!(result, Err(ProviderError::NeedsReauth(_)));
    crate::metrics::count(crate::metrics::NEEDS_REAUTH, u64::from(needs));
    match result {
        Ok(outcome) => {
            tracing::info!(?outcome, "scheduled refresh");
            Ok(serde_json::to_value(outcome).unwrap_or(Value::Null))
        }
        // Nothing to do until an admin acts: not a failure of this run.
        Err(
            e @ (ProviderError::NotConnected
            | ProviderError::NeedsReauth(_)
            | ProviderError::NotConfigured),
        ) => {
            tracing::warn!(error = %e, "scheduled refresh skipped");
            Ok(json!({ "outcome": "skipped", "reason": e.to_string() }))
        }
        Err(e) => {
            tracing::error!(error = %e, "scheduled refresh failed");
            Err(e)
        }
    }
}
