//! Logging set-up. Handlers log ids and outcomes, never credentials: no
//! code, token, secret or signature is ever a field or part of a message.
//!
//! The AWS SDK and the HTTP stack log whole request and response bodies at
//! DEBUG/TRACE (DynamoDB items with the Syncaroo tokens, Secrets Manager
//! values); their targets are capped at INFO whatever `RUST_LOG` says.

use std::fmt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::Directive;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Targets that would print credentials below INFO.
pub const CAPPED_TARGETS: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "aws_sdk_dynamodb",
    "aws_sdk_secretsmanager",
    "aws_sdk_sqs",
    "aws_config",
    "aws_runtime",
    "hyper",
    "hyper_util",
    "reqwest",
    "rustls",
    "h2",
];

/// The span lambda_runtime opens per invocation (INFO, field `requestId`):
/// kept on whatever the level, so every line can name its request.
const INVOKE_SPAN_TARGET: &str = "lambda_runtime::layers::trace";

/// `RUST_LOG` (or `default`), with [`CAPPED_TARGETS`] held at INFO.
pub fn filter(default: &str) -> EnvFilter {
    let mut f = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    for t in CAPPED_TARGETS {
        if let Ok(d) = format!("{t}=info").parse::<Directive>() {
            f = f.add_directive(d);
        }
    }
    if let Ok(d) = format!("{INVOKE_SPAN_TARGET}=info").parse::<Directive>() {
        f = f.add_directive(d);
    }
    f
}

/// Lambda's log format setting (`LoggingConfig.LogFormat`, which Lambda
/// passes as `AWS_LAMBDA_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    /// One JSON object a line: `timestamp`, `level`, `target`, `message`,
    /// `fields`, `requestId`.
    Json,
}

impl LogFormat {
    pub fn parse(v: Option<&str>) -> Self {
        match v {
            Some(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Text,
        }
    }
}

/// `AWS_LAMBDA_LOG_LEVEL` (`LoggingConfig.ApplicationLogLevel`: TRACE,
/// DEBUG, INFO, WARN, ERROR, FATAL) as a filter level.
pub fn lambda_level(v: Option<&str>) -> Option<&'static str> {
    Some(match v?.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => return None,
    })
}

/// The request id of the span it was found on.
struct RequestId(String);

/// Remembers the `requestId` of lambda_runtime's invocation span, so the
/// JSON lines can carry it.
pub struct RequestIdLayer;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for RequestIdLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut grab = Fields::default();
        attrs.record(&mut grab);
        if let (Some(serde_json::Value::String(r)), Some(span)) =
            (grab.map.remove("requestId"), ctx.span(id))
        {
            span.extensions_mut().insert(RequestId(r));
        }
    }
}

/// An event's fields as JSON, its message apart.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    map: serde_json::Map<String, serde_json::Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, v: serde_json::Value) {
        if field.name() == "message" {
            self.message = Some(match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.map.insert(field.name().to_string(), v);
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

/// Lambda's JSON log line (the shape Lambda itself uses for JSON logs,
/// which it filters by `level`).
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let request_id = ctx.event_scope().and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| span.extensions().get::<RequestId>().map(|r| r.0.clone()))
        });
        let mut line = serde_json::Map::new();
        line.insert("timestamp".into(), rfc3339_now().into());
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        line.insert("message".into(), fields.message.unwrap_or_default().into());
        if !fields.map.is_empty() {
            line.insert("fields".into(), fields.map.into());
        }
        if let Some(r) = request_id {
            line.insert("requestId".into(), r.into());
        }
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

/// Now as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn rfc3339_now() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    crate::clock::rfc3339_ms(ms)
}

static MAIN_STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// When `main` began (the first call to [`init`]), for the "init done" line.
pub fn main_started() -> std::time::Instant {
    *MAIN_STARTED.get_or_init(std::time::Instant::now)
}

/// Logging as Lambda's `LoggingConfig` asks: `AWS_LAMBDA_LOG_FORMAT`
/// (Text, or JSON lines) and `AWS_LAMBDA_LOG_LEVEL`; `RUST_LOG` wins over
/// the level when set. To stderr, which Lambda sends to CloudWatch.
pub fn init() {
    main_started();
    init_with_default("info");
}

/// Like [`init`], with another level when neither `RUST_LOG` nor
/// `AWS_LAMBDA_LOG_LEVEL` is set.
pub fn init_with_default(level: &str) {
    let env = |k: &str| std::env::var(k).ok();
    let level = lambda_level(env("AWS_LAMBDA_LOG_LEVEL").as_deref()).unwrap_or(level);
    match LogFormat::parse(env("AWS_LAMBDA_LOG_FORMAT").as_deref()) {
        LogFormat::Json => {
            let _ = tracing_subscriber::registry()
                .with(RequestIdLayer)
                .with(
                    tracing_subscriber::fmt::layer()
                        .event_format(JsonLines)
                        .with_writer(std::io::stderr)
                        .with_filter(filter(level)),
                )
                .try_init();
        }
        LogFormat::Text => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter(level))
                .with_ansi(false)
                .with_target(false)
                .with_writer(std::io::stderr)
                .try_init();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn json_lines(level: &str, f: impl FnOnce()) -> Vec<serde_json::Value> {
        let buf = Buf::default();
        let w = buf.clone();
        let sub = tracing_subscriber::registry().with(RequestIdLayer).with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLines)
                .with_writer(move || w.clone())
                .with_filter(EnvFilter::new(level)),
        );
        tracing::subscriber::with_default(sub, f);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
            .collect()
    }

    #[test]
    fn json_lines_carry_level_target_message_fields_and_request_id() {
        let lines = json_lines("info", || {
            // What lambda_runtime opens around each invocation.
            let span = tracing::info_span!(target: INVOKE_SPAN_TARGET, "Lambda runtime invoke", requestId = "req-123");
            let _g = span.enter();
            tracing::info!(connection_id = "99", attempts = 2u64, "webhook: recorded");
            tracing::debug!("not at info");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        let l = &lines[0];
        assert_eq!(l["level"], "INFO");
        assert_eq!(l["message"], "webhook: recorded");
        assert_eq!(l["fields"]["connection_id"], "99");
        assert_eq!(l["fields"]["attempts"], 2);
        assert_eq!(l["requestId"], "req-123");
        assert!(l["target"].as_str().unwrap().contains("telemetry"));
        let ts = l["timestamp"].as_str().unwrap();
        assert_eq!((ts.len(), &ts[10..11], &ts[23..]), (24, "T", "Z"), "{ts}");
    }

    #[test]
    fn outside_an_invocation_there_is_no_request_id() {
        let lines = json_lines("info", || tracing::warn!("init done"));
        assert_eq!(lines[0]["level"], "WARN");
        assert!(lines[0].get("requestId").is_none());
        assert!(lines[0].get("fields").is_none());
    }

    #[test]
    fn lambda_settings_parse() {
        assert_eq!(LogFormat::parse(Some("JSON")), LogFormat::Json);
        assert_eq!(LogFormat::parse(Some("Text")), LogFormat::Text);
        assert_eq!(LogFormat::parse(None), LogFormat::Text);
        assert_eq!(lambda_level(Some("FATAL")), Some("error"));
        assert_eq!(lambda_level(Some("WARN")), Some("warn"));
        assert_eq!(lambda_level(Some("loud")), None);
        assert_eq!(lambda_level(None), None);
    }
}
