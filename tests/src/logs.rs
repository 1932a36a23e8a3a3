//! Captures every log line the code under test writes, so a test can check
//! that no credential ever reaches them.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs (once per test binary) a global subscriber at TRACE, with the
/// production filter's caps on the SDK and HTTP crates, writing into a
/// buffer, and returns that buffer.
pub fn capture() -> Captured {
    static CAP: OnceLock<Captured> = OnceLock::new();
    CAP.get_or_init(|| {
        let cap = Captured::default();
        tracing_subscriber::fmt()
            .with_env_filter(syncaroo_shared::telemetry::filter("trace"))
            .with_ansi(false)
            .with_writer(cap.clone())
            .init();
        cap
    })
    .clone()
}

/// Captures only what this thread logs (all of a current-thread test's
/// tasks), until the guard drops: a test that asserts what is *absent* from
/// the logs is not confounded by tests running beside it in the binary,
/// which the global [`capture`] also records.
pub fn capture_here() -> (Captured, tracing::subscriber::DefaultGuard) {
    let cap = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(syncaroo_shared::telemetry::filter("trace"))
        .with_ansi(false)
        .with_writer(cap.clone())
        .finish();
    (cap.clone(), tracing::subscriber::set_default(subscriber))
}
