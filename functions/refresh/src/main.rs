//! The `refresh` Lambda: on a schedule, keeps the Syncaroo API token fresh;
//! behind the admin routes, runs the one-time connect handshake. Wiring
//! only; the handlers live in syncaroo-shared.

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use syncaroo_shared::{handlers, telemetry, App};

// One thread, as every function (README, Performance).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let (app, _, warming) = App::start_from_aws_env().await?;
    // Build the Syncaroo HTTP client during init (while the secrets and the
    // DynamoDB warm-up are in flight), not on the first tick.
    app.provider();
    warming.finish().await?;
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handlers::refresh::invoke(app, event.payload)
            .await
            .map_err(lambda_runtime::Error::from)
    }))
    .await
}
