//! The `sync` Lambda: fed by the table's stream (new webhook events only),
//! fetches what they announce. Wiring only; the worker lives in
//! syncaroo-shared.

use lambda_runtime::{service_fn, LambdaEvent};
use syncaroo_shared::deadletter::SqsDeadLetters;
use syncaroo_shared::edge::{self, StreamBatch};
use syncaroo_shared::{telemetry, App};

// One thread, as every function (README, Performance).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    // The Syncaroo and SQS clients are built while the secrets and the
    // DynamoDB warm-up are in flight.
    let (app, sdk, warming) = App::start_from_aws_env().await?;
    app.provider();
    let dlq = SqsDeadLetters::new(
        aws_sdk_sqs::Client::new(&sdk),
        &app.config.dead_letter_queue_url,
    );
    warming.finish().await?;
    let (app, dlq) = (&app, &dlq);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<StreamBatch>| async move {
            Ok::<_, lambda_runtime::Error>(edge::on_stream(app, dlq, event.payload).await)
        },
    ))
    .await
}
