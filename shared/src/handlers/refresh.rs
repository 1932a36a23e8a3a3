//! The scheduled refresh: keeps Syncaroo's access token fresh so requests
//! rarely wait for one, and reports what it did.

use crate::app::App;
use crate::syncaroo::ProviderError;
use serde_json::{json, Value};

/// Runs once per schedule tick. Returns a summary; an error only for
/// failures worth a Lambda retry (Syncaroo or the store unavailable).
pub async fn scheduled(app: &App) -> Result<Value, ProviderError> {
    match app.provider().refresh_if_due().await {
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

/// The refresh function's whole job: an HTTP API event is an admin route
/// (`.../connect`, `.../confirm`, `.../status`); anything else is the
/// schedule.
pub async fn invoke(app: &App, payload: Value) -> Result<Value, ProviderError> {
    use crate::lambda_glue::{http_event, to_apigw_v2};
    let Some(req) = http_event(&payload) else {
        return scheduled(app).await;
    };
    use crate::public_url::{
        normalize_path, ADMIN_CONFIRM_PATH, ADMIN_CONNECT_PATH, ADMIN_STATUS_PATH,
    };
    let path = normalize_path(req.uri().path());
    let resp = match path.as_str() {
        ADMIN_CONNECT_PATH => super::admin::connect(app, req).await,
        ADMIN_CONFIRM_PATH => super::admin::confirm(app, req).await,
        ADMIN_STATUS_PATH => super::admin::status(app, req).await,
        _ => crate::error::Error::NotFound.to_html_response(),
    };
    Ok(to_apigw_v2(resp))
}
