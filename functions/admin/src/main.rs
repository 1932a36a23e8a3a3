//! The `admin` Lambda: the platform administrator's one-time handshake with
//! the Syncaroo API (connect, confirm), its status page behind the admin
//! key, and the platform API. Wiring only; the routes and handlers live in
//! syncaroo-shared.

use syncaroo_shared::edge::{self, Wiring};

// One thread: a Lambda serves one event at a time on a share of a vCPU, so
// worker threads add hand-offs, not parallelism (docs/PERFORMANCE.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    syncaroo_shared::telemetry::init();
    let app = edge::start(Wiring {
        // Listing connections reads a page's items and their last-webhook
        // times concurrently (the pool opens more as a page needs).
        dynamo_connections: 2,
        announces_changes: true,
        warms_changes: true,
        calls_syncaroo: false,
    })
    .await?;
    edge::serve_http(app, "AdminFunction").await
}
