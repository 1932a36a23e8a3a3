//! The `refresh` Lambda: on a schedule, keeps the Syncaroo API token fresh.
//! Wiring only; the handler lives in syncaroo-shared.

use lambda_runtime::{service_fn, LambdaEvent};
use syncaroo_shared::edge::{self, ScheduleEvent, Wiring};

// One thread, as every function (docs/PERFORMANCE.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    syncaroo_shared::telemetry::init();
    let app = edge::start(Wiring {
        // The credentials item, then its lease, one after the other.
        dynamo_connections: 1,
        // `Syncaroo Credentials Need Reauth` when Syncaroo refuses our
        // refresh token.
        announces_changes: true,
        // Rare: the entry's put opens its own connection, init opens none.
        warms_changes: false,
        calls_syncaroo: true,
    })
    .await?;
    let app = &app;
    lambda_runtime::run(service_fn(
        move |tick: LambdaEvent<ScheduleEvent>| async move {
            edge::on_schedule(app, &tick.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
