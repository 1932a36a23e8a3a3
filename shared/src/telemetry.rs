//! Logging set-up. Handlers log ids and outcomes, never credentials: no
//! code, token, secret or signature is ever a field or part of a message.

use tracing_subscriber::EnvFilter;

/// Plain text to stderr (CloudWatch takes it as is), level from `RUST_LOG`.
pub fn init() {
    init_with_default("info");
}

/// Like [`init`], with another level when `RUST_LOG` is not set.
pub fn init_with_default(level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}
