//! Logging set-up. Handlers log ids and outcomes, never credentials: no
//! code, token, secret or signature is ever a field or part of a message.
//!
//! The AWS SDK and the HTTP stack log whole request and response bodies at
//! DEBUG/TRACE (DynamoDB items with the Syncaroo tokens, Secrets Manager
//! values); their targets are capped at INFO whatever `RUST_LOG` says.

use tracing_subscriber::filter::Directive;
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

/// `RUST_LOG` (or `default`), with [`CAPPED_TARGETS`] held at INFO.
pub fn filter(default: &str) -> EnvFilter {
    let mut f = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    for t in CAPPED_TARGETS {
        if let Ok(d) = format!("{t}=info").parse::<Directive>() {
            f = f.add_directive(d);
        }
    }
    f
}

static MAIN_STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// When `main` began (the first call to [`init`]), for the "init done" line.
pub fn main_started() -> std::time::Instant {
    *MAIN_STARTED.get_or_init(std::time::Instant::now)
}

/// Plain text to stderr (CloudWatch takes it as is), level from `RUST_LOG`.
pub fn init() {
    main_started();
    init_with_default("info");
}

/// Like [`init`], with another level when `RUST_LOG` is not set.
pub fn init_with_default(level: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(level))
        .with_ansi(false)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}
