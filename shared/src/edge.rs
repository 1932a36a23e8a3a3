//! Lambda at the edge: the one module that knows Lambda's event formats.
//! API Gateway HTTP API (2.0) requests and responses, through lambda_http,
//! become the plain `http` types the handlers take; the DynamoDB stream
//! batch (with its `batchItemFailures` answer) and the EventBridge schedule
//! event are `aws_lambda_events`' typed events, turned here into domain
//! calls. Handlers see only `http` requests and domain types.

use crate::app::App;
use crate::deadletter::DeadLetters;
use crate::handlers;
use crate::handlers::sync::Delivered;
use crate::http_util::{Request, Response};
use crate::syncaroo::ProviderError;
pub use aws_lambda_events::event::dynamodb::Event as StreamBatch;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use bytes::Bytes;
use lambda_http::Body;

pub fn from_lambda(req: lambda_http::Request) -> Request {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    // API Gateway's verdict on an AWS_IAM route: who signed the request.
    let iam = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.iam.as_ref())
            .and_then(|i| i.user_arn.clone().or_else(|| i.caller_id.clone())),
        _ => None,
    };
    let (mut parts, body) = req.into_parts();
    if let Some(arn) = iam {
        parts.extensions.insert(crate::auth::IamCaller(arn));
    }
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        // Future variants carry no body we accept.
        #[allow(unreachable_patterns)]
        _ => Bytes::new(),
    };
    http::Request::from_parts(parts, bytes)
}

pub fn to_lambda(resp: Response) -> lambda_http::Response<Body> {
    let (parts, body) = resp.into_parts();
    let body = if body.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(body.to_vec()) {
            Ok(t) => Body::Text(t),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    };
    lambda_http::Response::from_parts(parts, body)
}

/// What a function's init wires besides the secrets.
#[derive(Debug, Clone, Copy)]
pub struct Wiring {
    /// How many DynamoDB requests its paths make at once: the connections
    /// init warms ([`App::start_from_aws_env`]); each is a TLS handshake
    /// on the cold start's one thread.
    pub dynamo_connections: usize,
    /// It puts change events: EventBridge (its connection opened during
    /// init) and the dead-letter queue for entries EventBridge refuses.
    pub announces_changes: bool,
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
    let changes = app.warm_changes();
    if wiring.calls_syncaroo {
        app.provider();
    }
    warming.finish().await?;
    let _ = changes.await;
    Ok(app)
}

/// The runtime loop of an HTTP function: each API Gateway request, as a
/// plain `http` request, to `handler`.
pub async fn serve_http<'a, F, Fut>(app: &'a App, handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(&'a App, Request) -> Fut + Sync,
    Fut: std::future::Future<Output = Response> + Send + 'a,
{
    let handler = &handler;
    lambda_http::run(lambda_http::service_fn(move |req| async move {
        let req = from_lambda(req);
        test_panic(&req);
        Ok::<_, std::convert::Infallible>(to_lambda(handler(app, req).await))
    }))
    .await
}

/// Test builds only (feature `test-panic`): a request carrying
/// `x-syncaroo-test-panic` panics here, inside the handler, so the emulator
/// test can show lambda_runtime reporting it as an invocation error and the
/// same process serving the next event. Compiled out of deployed builds.
#[inline]
pub fn test_panic(req: &Request) {
    #[cfg(feature = "test-panic")]
    if req.headers().contains_key("x-syncaroo-test-panic") {
        panic!("test panic requested by x-syncaroo-test-panic");
    }
    #[cfg(not(feature = "test-panic"))]
    let _ = req;
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
            return Err(crate::error::Error::Upstream(
                "a stream record to deliver again has no sequence number".into(),
            ));
        };
        let mut f = DynamoDbBatchItemFailure::default();
        f.item_identifier = Some(seq);
        resp.batch_item_failures.push(f);
    }
    Ok(resp)
}
