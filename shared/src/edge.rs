//! Lambda at the edge: the one module that knows Lambda's event formats.
//! API Gateway HTTP API (2.0) requests and responses go through lambda_http
//! to the function's axum router ([`crate::router`]); the DynamoDB stream
//! batch (with its `batchItemFailures` answer) and the EventBridge schedule
//! event are `aws_lambda_events`' typed events, turned here into domain
//! calls. Handlers see only `http` requests and domain types.

use crate::app::App;
use crate::deadletter::DeadLetters;
use crate::handlers;
use crate::handlers::sync::Delivered;
use crate::router;
use crate::syncaroo::ProviderError;
pub use aws_lambda_events::event::dynamodb::Event as StreamBatch;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

/// What a function's init wires besides the secrets.
#[derive(Debug, Clone, Copy)]
pub struct Wiring {
    /// How many DynamoDB requests its paths make at once: the connections
    /// init warms ([`App::start_from_aws_env`]); each is a TLS handshake
    /// on the cold start's one thread.
    pub dynamo_connections: usize,
    /// It puts change events: EventBridge and the dead-letter queue for
    /// entries EventBridge refuses.
    pub announces_changes: bool,
    /// Its requests put change events as they go: EventBridge's connection
    /// is opened during init (a function whose entries are rare opens it
    /// at its first put instead, adding nothing to init).
    pub warms_changes: bool,
    /// It calls the Syncaroo API: its HTTP client is built during init.
    pub calls_syncaroo: bool,
}

/// What every function does once per cold start: one SDK config, the
/// secrets fetched and the DynamoDB connections warmed, and what `wiring`
/// adds, all in parallel; the app its handler serves with.
pub async fn start(wiring: Wiring) -> Result<App, crate::error::Error> {
    let (app, sdk, warming) = App::start_from_aws_env(wiring.dynamo_connections).await?;
    let app = if wiring.announces_changes {
        app.with_aws_changes(&sdk)
    } else {
        app
    };
    let changes = if wiring.warms_changes {
        Some(app.warm_changes())
    } else {
        None
    };
    if wiring.calls_syncaroo {
        app.provider();
    }
    warming.finish().await?;
    if let Some(changes) = changes {
        let _ = changes.await;
    }
    Ok(app)
}

/// The runtime loop of an HTTP function: each API Gateway request, through
/// lambda_http, to the rows of the router that `function` (its
/// template.yaml resource name) serves. The shape of aws-lambda-rust-runtime's
/// `http-axum` example, with the path normalised first ([`router::service`]).
pub async fn serve_http(app: App, function: &str) -> Result<(), lambda_http::Error> {
    if !crate::routes::ROUTES.iter().any(|r| r.function == function) {
        // A misspelt name would serve nothing but 404s: refuse to start.
        return Err(format!("no route of the table is served by {function}").into());
    }
    lambda_http::run(router::service(router::router(app, Some(function)))).await
}

/// The schedule's tick (an EventBridge scheduled event): the refresh
/// function's only event.
pub type ScheduleEvent = EventBridgeEvent;

/// A tick of the refresh schedule: keeps the Syncaroo token fresh. Returns
/// the summary the function answers with.
pub async fn on_schedule(
    app: &App,
    tick: &ScheduleEvent,
) -> Result<serde_json::Value, ProviderError> {
    tracing::debug!(detail_type = %tick.detail_type, source = %tick.source, "schedule tick");
    handlers::refresh::scheduled(app).await
}

/// What a stream batch delivers to the worker, each with the sequence
/// number that names it in `batchItemFailures` (`None`: the record has
/// none, which DynamoDB streams always set): notified targets, data and
/// status (an INSERT or MODIFY of a target's `NOTE` item), and webhooks an
/// earlier version recorded as events (an INSERT of an `EVENT#` item).
/// Anything else (the template's filter lets nothing else through) is
/// skipped.
pub fn stream_events(batch: StreamBatch) -> Vec<(Option<String>, Delivered)> {
    let mut out = Vec::with_capacity(batch.records.len());
    for record in batch.records {
        let seq = record.change.sequence_number.filter(|s| !s.is_empty());
        let image: crate::store::dynamo::Item = record.change.new_image.into();
        let delivered = match record.event_name.as_str() {
            "INSERT" | "MODIFY" => crate::store::dynamo::target_from(&image).map(Delivered::Target),
            _ => None,
        }
        .or_else(|| {
            (record.event_name == "INSERT")
                .then(|| crate::store::dynamo::event_from(&image))
                .flatten()
                .map(Delivered::Event)
        });
        match delivered {
            Some(d) => out.push((seq, d)),
            None => tracing::warn!(
                sequence = seq.as_deref().unwrap_or(""),
                event_name = %record.event_name,
                "stream record is neither a notified target nor a new webhook event; skipped"
            ),
        }
    }
    out
}

/// The sync function's whole job: processes the batch's events and names
/// the ones to redeliver. A record to redeliver that has no sequence number
/// cannot be named (Lambda reads an empty identifier as "the whole batch"),
/// so the invocation fails, said out loud, and the batch comes again.
///
/// `deadline_ms`: the invocation's deadline (milliseconds since the epoch,
/// Lambda's context): records it cannot cover are handed back.
pub async fn on_stream(
    app: &App,
    dlq: &dyn DeadLetters,
    batch: StreamBatch,
    deadline_ms: Option<u64>,
) -> Result<DynamoDbEventResponse, crate::error::Error> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    // A deadline already past when the invocation starts is no deadline
    // Lambda gives (an emulator's may be): the checks then go by none.
    let deadline = deadline_ms
        .filter(|ms| *ms > now_ms)
        .map(|ms| std::time::Instant::now() + std::time::Duration::from_millis(ms - now_ms));
    if deadline.is_none() && deadline_ms.is_some() {
        tracing::warn!("the invocation's deadline had passed when it started: ignored");
    }
    let failed = handlers::sync::process_batch(app, dlq, stream_events(batch), deadline).await;
    let mut resp = DynamoDbEventResponse::default();
    for seq in failed {
        let Some(seq) = seq else {
            tracing::error!(
                "a stream record to deliver again has no sequence number: failing the whole batch"
            );
            return Err(crate::error::Error::upstream(
                "a stream record to deliver again has no sequence number",
            ));
        };
        let mut f = DynamoDbBatchItemFailure::default();
        f.item_identifier = Some(seq);
        resp.batch_item_failures.push(f);
    }
    Ok(resp)
}
