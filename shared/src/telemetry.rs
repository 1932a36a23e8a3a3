//! Logging set-up. Handlers log ids and outcomes, never credentials: no
//! code, token, secret or signature is ever a field or part of a message.
//!
//! The AWS SDK and the HTTP stack log whole request and response bodies at
//! DEBUG/TRACE (DynamoDB items with the Syncaroo tokens, Secrets Manager
//! values); their targets are capped at INFO whatever `RUST_LOG` says.

use tracing::Subscriber;
use tracing_subscriber::filter::Directive;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

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
    /// One JSON object a line ([`json_lines`]).
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

static MAIN_STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// When `main` began (the first call to [`init`]), for the "init done" line.
pub fn main_started() -> std::time::Instant {
    *MAIN_STARTED.get_or_init(std::time::Instant::now)
}

/// Logging as Lambda's `LoggingConfig` asks: `AWS_LAMBDA_LOG_FORMAT`
/// (Text, or JSON lines from tracing-subscriber's json formatter) and
/// `AWS_LAMBDA_LOG_LEVEL`; `RUST_LOG` wins over the level when set. To
/// stderr, which Lambda sends to CloudWatch.
pub fn init() {
    main_started();
    init_with_default("info");
}

/// Like [`init`], with another level when neither `RUST_LOG` nor
/// `AWS_LAMBDA_LOG_LEVEL` is set.
pub fn init_with_default(level: &str) {
    let env = |k: &str| std::env::var(k).ok();
    let level = lambda_level(env("AWS_LAMBDA_LOG_LEVEL").as_deref()).unwrap_or(level);
    // A second init (tests) keeps the first subscriber.
    match LogFormat::parse(env("AWS_LAMBDA_LOG_FORMAT").as_deref()) {
        LogFormat::Json => {
            let _ = json_lines(std::io::stderr, filter(level)).try_init();
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

/// One JSON object a line: `timestamp`, `level`, `target`, `message` and
/// the event's fields at the top, and inside an invocation `span` with
/// lambda_runtime's `requestId`.
pub fn json_lines<W>(writer: W, filter: EnvFilter) -> impl Subscriber + Send + Sync
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
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

    fn lines_of(level: &str, f: impl FnOnce()) -> Vec<serde_json::Value> {
        let buf = Buf::default();
        let w = buf.clone();
        tracing::subscriber::with_default(json_lines(move || w.clone(), EnvFilter::new(level)), f);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
            .collect()
    }

    #[test]
    fn json_lines_carry_level_target_message_fields_and_request_id() {
        let lines = lines_of("info", || {
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
        assert_eq!(l["connection_id"], "99");
        assert_eq!(l["attempts"], 2);
        assert_eq!(l["span"]["requestId"], "req-123");
        assert!(l["target"].as_str().unwrap().contains("telemetry"));
        let ts = l["timestamp"].as_str().unwrap();
        assert!(
            ts.len() >= 20 && &ts[10..11] == "T" && ts.ends_with('Z'),
            "{ts}"
        );
    }

    #[test]
    fn outside_an_invocation_there_is_no_request_id() {
        let lines = lines_of("info", || tracing::warn!("init done"));
        assert_eq!(lines[0]["level"], "WARN");
        assert!(lines[0].get("span").is_none());
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
