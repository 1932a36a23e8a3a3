//! The `refresh` Lambda: on a schedule, keeps the Syncaroo API token fresh.
//! Wiring only; the handler lives in syncaroo-shared.

use lambda_runtime::{service_fn, LambdaEvent};
use syncaroo_shared::edge::{self, ScheduleEvent};
use syncaroo_shared::{telemetry, App};

// One thread, as every function (README, Performance).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    // One DynamoDB connection: the credentials item, then its lease, one
    // after the other.
    let (app, _, warming) = App::start_from_aws_env(1).await?;
    // Build the Syncaroo HTTP client during init (while the secrets and the
    // DynamoDB warm-up are in flight), not on the first tick.
    app.provider();
    warming.finish().await?;
    let app = &app;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ScheduleEvent>| async move {
            edge::on_schedule(app, &event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
