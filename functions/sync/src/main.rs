//! The `sync` Lambda: fed by the table's stream (new webhook events only),
//! fetches what they announce. Wiring only; the worker lives in
//! syncaroo-shared.

use lambda_runtime::{service_fn, LambdaEvent};
use syncaroo_shared::edge::{self, StreamBatch};
use syncaroo_shared::{telemetry, App};

// One thread, as every function (README, Performance).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    // The Syncaroo, EventBridge and SQS clients are built while the secrets and the
    // DynamoDB warm-up are in flight.
    // Two DynamoDB connections: the connection's read goes beside the
    // target's.
    let (app, sdk, warming) = App::start_from_aws_env(2).await?;
    // Change events to EventBridge, dead letters to SQS.
    let app = app.with_aws_changes(&sdk);
    let changes = app.warm_changes();
    app.provider();
    warming.finish().await?;
    let _ = changes.await;
    let app = &app;
    let dlq = app.dead_letters().as_ref();
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<StreamBatch>| async move {
            edge::on_stream(app, dlq, event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
