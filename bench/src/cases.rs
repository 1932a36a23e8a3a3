//! The functions the benchmark starts, with the events of their first and
//! warm invocations (files in `events/`) and what a good answer is.

use serde_json::{json, Value};

/// One function under test: its binary, the event of its first invocation,
/// the event of its warm ones, and what a good answer looks like.
pub struct Case {
    pub name: &'static str,
    pub first: &'static str,
    pub warm: &'static str,
    pub ok: fn(&Value) -> bool,
}

fn http_ok(v: &Value) -> bool {
    v["statusCode"].as_u64().is_some_and(|s| s < 500)
}

pub const CASES: &[Case] = &[
    Case {
        name: "hello",
        first: "authorize-no-session.json",
        warm: "authorize-no-session.json",
        ok: http_ok,
    },
    Case {
        name: "authorize",
        first: "authorize-no-session.json",
        warm: "authorize-consent.json",
        ok: http_ok,
    },
    Case {
        name: "token",
        first: "token-exchange.json",
        warm: "token-refresh.json",
        ok: http_ok,
    },
    Case {
        name: "check_connection",
        first: "check-connection.json",
        warm: "check-connection.json",
        ok: http_ok,
    },
    Case {
        name: "webhook",
        first: "webhook-status.json",
        warm: "webhook-status.json",
        ok: http_ok,
    },
    Case {
        name: "sync",
        first: "sync-stream.json",
        warm: "sync-stream.json",
        ok: |v| v["batchItemFailures"] == json!([]),
    },
    Case {
        name: "refresh",
        first: "refresh-schedule.json",
        warm: "refresh-schedule.json",
        ok: |v| v.get("outcome").is_some(),
    },
];
