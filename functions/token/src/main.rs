//! The `token` Lambda: wiring only; the handler lives in syncaroo-shared.

use syncaroo_shared::edge::{self, Wiring};

// One thread: a Lambda serves one event at a time on a share of a vCPU, so
// worker threads add hand-offs, not parallelism (docs/PERFORMANCE.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    syncaroo_shared::telemetry::init();
    let app = edge::start(Wiring {
        // Each grant is one transaction.
        dynamo_connections: 1,
        announces_changes: false,
        warms_changes: false,
        calls_syncaroo: false,
    })
    .await?;
    edge::serve_http(app, "TokenFunction").await
}
