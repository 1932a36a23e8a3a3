//! The `sync` Lambda: fed by the table's stream (new webhook events only),
//! fetches what they announce. Wiring only; the worker lives in
//! syncaroo-shared.

use lambda_runtime::{service_fn, LambdaEvent};
use syncaroo_shared::edge::{self, StreamBatch, Wiring};

// One thread, as every function (docs/PERFORMANCE.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    syncaroo_shared::telemetry::init();
    let app = edge::start(Wiring {
        // The connection's read goes beside the target's.
        dynamo_connections: 2,
        announces_changes: true,
        warms_changes: true,
        calls_syncaroo: true,
    })
    .await?;
    let (app, dlq) = (&app, app.dead_letters());
    let dlq = dlq.as_ref();
    lambda_runtime::run(service_fn(
        move |batch: LambdaEvent<StreamBatch>| async move {
            edge::on_stream(app, dlq, batch.payload, Some(batch.context.deadline))
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
