//! The far side of the functions' requests as the benchmark sees it: the
//! recorders in front of DynamoDB Local and moto and, with `--rtt-ms`, the
//! links' account of everything behind them; how long it kept a cold or
//! warm request waiting, and what `BENCH_DEBUG=1` prints of it.

use crate::netem;
use std::time::{Duration, Instant};
use syncaroo_tests::ddb_proxy::Recorder;

/// The recorders in front of DynamoDB Local, Secrets Manager and
/// EventBridge (moto).
pub struct Servers {
    pub ddb: Recorder,
    pub sm: Recorder,
    pub eb: Recorder,
    /// With `--rtt-ms`: the far side's time as the links saw it (TLS
    /// server, hops and server together).
    pub owed: netem::Owed,
}

impl Servers {
    /// How long, within `[from, to)`, the far side of any endpoint owed
    /// an answer: the recorders' spans (the servers alone) and, behind a
    /// link, the link's (everything past it), overlaps counted once.
    pub fn waiting(&self, from: Instant, to: Instant) -> Duration {
        let calls = [&self.ddb, &self.sm, &self.eb]
            .into_iter()
            .flat_map(|r| r.between(from, to))
            .map(|c| (c.sent, c.answered));
        let owed = self.owed.between(from, to).into_iter();
        syncaroo_tests::ddb_proxy::covered(calls.chain(owed.map(|s| (s.start, s.end))), to)
    }

    /// The far side's time on a cold request's path: behind links, as
    /// [`netem::Owed::on_cold_path`] has it; on plain loopback, the
    /// recorders' waits.
    pub fn on_cold_path(&self, cold: &netem::Cold) -> Duration {
        if self.owed.between(cold.started, cold.at).is_empty() {
            self.waiting(cold.started, cold.at)
        } else {
            self.owed.on_cold_path(cold)
        }
    }
}

/// BENCH_DEBUG: each request the servers saw, timed from `from`.
pub fn debug_calls(
    name: &str,
    what: &str,
    calls: &[syncaroo_tests::ddb_proxy::Call],
    from: Instant,
) {
    for c in calls {
        eprintln!(
            "  {name} {what}{}: sent +{:?} answered +{:?}",
            c.op,
            c.sent.saturating_duration_since(from),
            c.answered.map(|a| a.saturating_duration_since(from))
        );
    }
}

/// The links' spans of far-side time begun since `from`.
pub fn debug_owed(name: &str, owed: &netem::Owed, from: Instant, to: Instant) {
    for s in owed.between(from, to) {
        eprintln!(
            "  {name} far side owed on connection {} from +{:?} to +{:?}",
            s.conn,
            s.start.saturating_duration_since(from),
            s.end.map(|b| b.saturating_duration_since(from))
        );
    }
}
