//! Metrics as CloudWatch Embedded Metric Format lines on stdout: Lambda
//! ships them to CloudWatch Logs, which turns them into metrics with no API
//! call on the request path. Alarms in template.yaml watch them.

pub const NAMESPACE: &str = "SyncarooBridge";

/// The EMF document for one count.
pub fn emf_line(name: &str, value: u64, now_ms: i64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[]],
                "Metrics": [{ "Name": name, "Unit": "Count" }]
            }]
        },
        name: value
    })
    .to_string()
}

/// Emits one count (and logs it, so it is also visible locally).
pub fn count(name: &str, value: u64) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    println!("{}", emf_line(name, value, now_ms));
    tracing::info!(metric = name, value, "metric");
}

#[cfg(test)]
mod tests {
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
