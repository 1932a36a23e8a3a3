//! Metrics as CloudWatch Embedded Metric Format lines on stdout: Lambda
//! ships them to CloudWatch Logs, which turns them into metrics with no API
//! call on the request path. Alarms in template.yaml watch them.

pub const NAMESPACE: &str = "SyncarooBridge";

// Every metric the bundle emits, all in [`NAMESPACE`] without dimensions:
// template.yaml's dashboard and alarms name only these
// (tests/check_metrics.py reads both).

/// A notification's wait: from its webhook's arrival to its fetch (or
/// status change) stored, in milliseconds.
pub const SYNC_LAG: &str = "SyncLag";
/// Data pages fetched from Syncaroo's API, and their bytes.
pub const PAGES_FETCHED: &str = "SyncPagesFetched";
pub const BYTES_FETCHED: &str = "SyncBytesFetched";
/// A fetch or status change that failed (retried or given up).
pub const FETCH_FAILED: &str = "SyncFetchFailed";
/// A fetch or status change given up on and dead-lettered.
pub const DEAD_LETTERED: &str = "SyncEventFailed";
/// A webhook for a location that is not the connection's user's.
pub const QUARANTINED: &str = "WebhookQuarantined";
/// A change event neither put nor dead-lettered.
pub const ENTRY_LOST: &str = "ChangeEventLost";
/// Our Syncaroo API token refreshed.
pub const TOKEN_REFRESHED: &str = "SyncarooTokenRefreshed";
/// Our Syncaroo API credentials need an admin to reconnect: a gauge, 1 or
/// 0 on every refresh tick (and 1 when a refresh is refused).
pub const NEEDS_REAUTH: &str = "SyncarooNeedsReauth";

/// A metric's CloudWatch unit.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Count,
    Milliseconds,
    Bytes,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Bytes => "Bytes",
        }
    }
}

/// The EMF document for one count.
pub fn emf_line(name: &str, value: u64, now_ms: i64) -> String {
    emf(name, Unit::Count, value, now_ms)
}

fn emf(name: &str, unit: Unit, value: u64, now_ms: i64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[]],
                "Metrics": [{ "Name": name, "Unit": unit.as_str() }]
            }]
        },
        name: value
    })
    .to_string()
}

/// Emits one count (and logs it, so it is also visible locally).
pub fn count(name: &str, value: u64) {
    emit(name, Unit::Count, value);
}

/// Emits one value in `unit` (and logs it).
pub fn emit(name: &str, unit: Unit, value: u64) {
    if EMF_TO_STDOUT.load(std::sync::atomic::Ordering::Relaxed) {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        println!("{}", emf(name, unit, value, now_ms));
    }
    tracing::info!(metric = name, value, "metric");
}

/// Whether [`emit`] prints the embedded-metric-format line (Lambda's
/// stdout goes to CloudWatch Logs, which extracts the metric): on, but for
/// the local runner, whose stdout is a person's terminal (the metric is
/// still logged).
static EMF_TO_STDOUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Turns the EMF lines on stdout off (the local runner) or on.
pub fn print_emf(on: bool) {
    EMF_TO_STDOUT.store(on, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_value_carries_its_unit() {
        let v: serde_json::Value = serde_json::from_str(&super::emf(
            super::SYNC_LAG,
            super::Unit::Milliseconds,
            42,
            5,
        ))
        .unwrap();
        assert_eq!(v["SyncLag"], 42);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Milliseconds"
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([[]])
        );
    }

    #[test]
    fn emf_names_the_metric_twice() {
        let v: serde_json::Value =
            serde_json::from_str(&super::emf_line("SyncarooNeedsReauth", 1, 5)).unwrap();
        assert_eq!(v["SyncarooNeedsReauth"], 1);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "SyncarooNeedsReauth"
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "SyncarooBridge"
        );
    }
}
