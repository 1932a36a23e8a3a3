//! Change events for the platform: after a change is stored, one Amazon
//! EventBridge entry announces it, so the platform subscribes with a rule
//! instead of reading our table.
//!
//! Seven kinds ([`Change`]): a connection confirmed (check_connection's
//! first success) or revoked (the platform API or `syncaroo-admin`), data
//! synced (a target's fetch stored), a location's status changed (a status
//! webhook applied), a sync given up (a target's fetch or a status change
//! dead-lettered), our Syncaroo API credentials needing an admin to
//! reconnect, and restored by that reconnection. Each entry's `Detail` names the connection, its user
//! and, where they apply, the location, attribute type and resource, and
//! the time of the change. A data entry carries the fetched records inline
//! while the entry fits EventBridge's 256 KB, else `"truncated": true` and
//! `dataPath`, the platform API's data route narrowed to that target.
//!
//! Delivery is at least once. The sync worker puts its entry after the
//! store write and before it records the fetch as done, so a failed put is
//! retried with the fetch and dead-lettered like one. Confirmation and
//! revocation put theirs after the write, try again twice, then send the
//! entry to the dead-letter queue (`syncaroo-admin dead-letters replay`
//! puts it again). Consumers deduplicate by the entry's content.
//!
//! Entries hold ids, times and Syncaroo's data, never a token or secret.

use crate::clock::rfc3339_ms;
use crate::config::Config;
use crate::error::{Error, Fault};
use crate::model::{ConnectionId, UserId};
use crate::store::{LocationStatus, SyncedData};

mod health;
use async_trait::async_trait;
pub use health::{needs_reauth_entry, restored_entry, sync_failed_entry, user_erased_entry};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// EventBridge's limit on one entry, as it counts it (see [`Entry::size`]).
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// Tries of an entry EventBridge refused (its call succeeded) before it is
/// given up to the caller's retry or the dead-letter queue. A call that
/// failed is retried by the SDK's own policy, never again here.
pub const REFUSED_ENTRY_ATTEMPTS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    ConnectionConfirmed,
    ConnectionRevoked,
    DataSynced,
    LocationStatusChanged,
    SyncFailed,
    CredentialsNeedReauth,
    CredentialsRestored,
    UserErased,
}

impl Change {
    pub const ALL: [Change; 8] = [
        Change::ConnectionConfirmed,
        Change::ConnectionRevoked,
        Change::DataSynced,
        Change::LocationStatusChanged,
        Change::SyncFailed,
        Change::CredentialsNeedReauth,
        Change::CredentialsRestored,
        Change::UserErased,
    ];

    /// The entry's `DetailType`, the field a rule matches on.
    pub fn detail_type(self) -> &'static str {
        match self {
            Change::ConnectionConfirmed => "Syncaroo Connection Confirmed",
            Change::ConnectionRevoked => "Syncaroo Connection Revoked",
            Change::DataSynced => "Syncaroo Data Synced",
            Change::LocationStatusChanged => "Syncaroo Location Status Changed",
            Change::SyncFailed => "Syncaroo Sync Failed",
            Change::CredentialsNeedReauth => "Syncaroo Credentials Need Reauth",
            Change::CredentialsRestored => "Syncaroo Credentials Restored",
            Change::UserErased => "Syncaroo User Erased",
        }
    }
}

/// One PutEvents entry, with PutEvents' own field names (the events file
/// of the local runner holds these, one a line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Entry {
    pub source: String,
    pub detail_type: String,
    /// A JSON object as a string, as PutEvents takes it.
    pub detail: String,
    pub event_bus_name: String,
}

impl Entry {
    pub fn new(config: &Config, change: Change, detail: &impl Serialize) -> Self {
        let detail = serde_json::to_string(detail).expect("a detail serialises to JSON");
        Self::with_detail(config, change, detail)
    }

    fn with_detail(config: &Config, change: Change, detail: String) -> Self {
        Self {
            source: config.event_source.clone(),
            detail_type: change.detail_type().into(),
            detail,
            event_bus_name: config.event_bus_name.clone(),
        }
    }

    /// The size EventBridge holds against [`MAX_ENTRY_BYTES`]: the UTF-8
    /// bytes of `Source`, `DetailType` and `Detail` (no `Time`, no
    /// `Resources` are sent).
    pub fn size(&self) -> usize {
        self.source.len() + self.detail_type.len() + self.detail.len()
    }
}

/// Where entries go: EventBridge in AWS, a file or memory locally.
#[async_trait]
pub trait ChangeSink: Send + Sync {
    async fn put(&self, entry: &Entry) -> Result<(), Error>;

    /// Opens the connection the first put will use (cold start: in
    /// parallel with the secrets fetch, so the first change event costs
    /// its request, not a TCP and TLS handshake too). Nothing by default.
    async fn warm(&self, _bus: &str) -> Result<(), Error> {
        Ok(())
    }
}

/// `Connection Confirmed`'s detail.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectionConfirmed<'a> {
    connection_id: &'a str,
    user_id: &'a str,
    confirmed_at: String,
}

/// `Connection Revoked`'s detail.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectionRevoked<'a> {
    connection_id: &'a str,
    user_id: &'a str,
    revoked_at: String,
}

/// `Connection Confirmed`: the connection, its user and when (seconds).
pub fn confirmed_entry(config: &Config, id: &ConnectionId, user: &UserId, at_secs: i64) -> Entry {
    let detail = ConnectionConfirmed {
        connection_id: id.as_str(),
        user_id: user.as_str(),
        confirmed_at: rfc3339_ms(at_secs * 1000),
    };
    Entry::new(config, Change::ConnectionConfirmed, &detail)
}

/// `Connection Revoked`: the connection, its user and when (seconds).
pub fn revoked_entry(config: &Config, id: &ConnectionId, user: &UserId, at_secs: i64) -> Entry {
    let detail = ConnectionRevoked {
        connection_id: id.as_str(),
        user_id: user.as_str(),
        revoked_at: rfc3339_ms(at_secs * 1000),
    };
    Entry::new(config, Change::ConnectionRevoked, &detail)
}

/// `Data Synced`: the target, when the fetch started, and its records (the
/// pages' `data` arrays merged, as stored) inline while the entry fits,
/// else `truncated` with `records` left out and `dataPath` naming the
/// platform API route that reads them ([`crate::store::datalog::data_path`]).
pub fn data_entry(config: &Config, d: &SyncedData, records: usize) -> Entry {
    let mut detail = DataSynced {
        connection_id: d.target.connection_id.as_str(),
        user_id: Some(d.user.as_str()),
        location_id: &d.target.location_id,
        attribute_type: &d.target.attribute_type,
        resource_id: d.target.resource_id.as_deref(),
        fetched_at: rfc3339_ms(d.fetched_at_ms),
        pages: d.pages,
        deleted: d.deleted,
        record_count: records,
        truncated: None,
        data_path: None,
    };
    // The stored data is already the JSON array: spliced in, not parsed
    // again (it can be megabytes). Sized before it is built: a
    // megabytes-long detail is never made only to be dropped.
    let rest = serde_json::to_string(&detail).expect("a detail serialises to JSON");
    let head = &rest[..rest.len() - 1];
    const RECORDS: &str = ",\"records\":";
    let inline_size = config.event_source.len()
        + Change::DataSynced.detail_type().len()
        + head.len()
        + RECORDS.len()
        + d.data.len()
        + 1;
    if inline_size <= MAX_ENTRY_BYTES {
        let inline = Entry::with_detail(
            config,
            Change::DataSynced,
            format!("{head}{RECORDS}{}}}", d.data),
        );
        debug_assert_eq!(inline.size(), inline_size);
        return inline;
    }
    detail.truncated = Some(true);
    detail.data_path = Some(crate::store::datalog::data_path(&d.user, &d.target));
    Entry::new(config, Change::DataSynced, &detail)
}

/// `Data Synced`'s detail, without its `records` (spliced in as stored).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DataSynced<'a> {
    connection_id: &'a str,
    user_id: Option<&'a str>,
    location_id: &'a str,
    attribute_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_id: Option<&'a str>,
    fetched_at: String,
    pages: u32,
    deleted: bool,
    record_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_path: Option<String>,
}

/// `Location Status Changed`'s detail.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LocationStatusChanged<'a> {
    connection_id: &'a str,
    user_id: Option<&'a str>,
    location_id: &'a str,
    received_at: String,
    meta_data: Value,
}

/// `Location Status Changed`: the location, when the webhook arrived, and
/// the webhook's `metaData` (the new status).
pub fn status_entry(config: &Config, s: &LocationStatus, user: Option<&UserId>) -> Entry {
    let detail = LocationStatusChanged {
        connection_id: s.connection_id.as_str(),
        user_id: user.map(|u| u.as_str()),
        location_id: &s.location_id,
        received_at: rfc3339_ms(s.received_at_ms),
        meta_data: serde_json::from_str(&s.meta).unwrap_or(Value::Null),
    };
    Entry::new(config, Change::LocationStatusChanged, &detail)
}

/// Puts `entry` once (the sink retries what it can: the SDK a failed
/// call, [`EventBridgeSink`] a refused entry); a failure is the caller's to
/// retry or dead-letter.
pub async fn put(sink: &dyn ChangeSink, entry: &Entry) -> Result<(), Error> {
    let put = sink.put(entry).await;
    if let Err(e) = &put {
        tracing::warn!(detail_type = %entry.detail_type, error = %e, "PutEvents failed");
    }
    put
}

/// Counted when a change event could be neither put nor dead-lettered.
pub const METRIC_ENTRY_LOST: &str = crate::metrics::ENTRY_LOST;

/// Amazon EventBridge, one entry per PutEvents call.
pub struct EventBridgeSink {
    client: aws_sdk_eventbridge::Client,
}

impl EventBridgeSink {
    pub fn new(client: aws_sdk_eventbridge::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl ChangeSink for EventBridgeSink {
    /// `DescribeEventBus` of the configured bus: the cheapest signed call
    /// on that bus alone (the functions may call it and PutEvents, nothing
    /// else).
    async fn warm(&self, bus: &str) -> Result<(), Error> {
        self.client
            .describe_event_bus()
            .name(bus)
            .send()
            .await
            .map(drop)
            .map_err(|err| {
                let message = format!(
                    "DescribeEventBus: {}",
                    aws_sdk_eventbridge::error::DisplayErrorContext(&err)
                );
                Error::Upstream(Fault::transient(message).with_source(err))
            })
    }

    /// One `PutEvents`; an entry refused in a successful call (throttled,
    /// an internal failure) is sent again a few times, which the SDK's
    /// retries, made for failed calls, do not do.
    async fn put(&self, e: &Entry) -> Result<(), Error> {
        use backon::{ExponentialBuilder, Retryable};
        (|| self.put_once(e))
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(50))
                    .with_max_times(REFUSED_ENTRY_ATTEMPTS - 1)
                    .with_jitter(),
            )
            .when(|failure| matches!(failure, PutFailure::Refused(_)))
            .await
            .map_err(|failure| match failure {
                PutFailure::Call(e) | PutFailure::Refused(e) => e,
            })
    }
}

/// Why a `PutEvents` did not take the entry.
enum PutFailure {
    /// The call failed (after the SDK's retries).
    Call(Error),
    /// The call succeeded and the entry was refused.
    Refused(Error),
}

impl EventBridgeSink {
    async fn put_once(&self, e: &Entry) -> Result<(), PutFailure> {
        use aws_sdk_eventbridge::types::PutEventsRequestEntry;
        let entry = PutEventsRequestEntry::builder()
            .source(&e.source)
            .detail_type(&e.detail_type)
            .detail(&e.detail)
            .event_bus_name(&e.event_bus_name)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|err| {
                let message = format!(
                    "PutEvents: {}",
                    aws_sdk_eventbridge::error::DisplayErrorContext(&err)
                );
                PutFailure::Call(Error::Upstream(Fault::transient(message).with_source(err)))
            })?;
        // A call can succeed with its entry refused (throttled, bus gone):
        // that is a failure too.
        if out.failed_entry_count() > 0 {
            let first = out.entries().first();
            return Err(PutFailure::Refused(Error::upstream(format!(
                "PutEvents refused the entry: {} {}",
                first.and_then(|r| r.error_code()).unwrap_or("?"),
                first.and_then(|r| r.error_message()).unwrap_or("")
            ))));
        }
        Ok(())
    }
}

/// Appends each entry as one JSON line (the local runner's
/// `--events-out FILE`).
pub struct FileSink {
    path: std::path::PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl FileSink {
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self {
            path: path.into(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    fn fault(&self, e: std::io::Error) -> Error {
        let message = format!("{}: {e}", self.path.display());
        Error::Upstream(Fault::transient(message).with_source(e))
    }
}

#[async_trait]
impl ChangeSink for FileSink {
    async fn put(&self, entry: &Entry) -> Result<(), Error> {
        use tokio::io::AsyncWriteExt;
        let mut line = serde_json::to_vec(entry)
            .map_err(|e| Error::Upstream(Fault::permanent("an entry as JSON").with_source(e)))?;
        line.push(b'\n');
        let _one_writer = self.lock.lock().await;
        let mut f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await
            .map_err(|e| self.fault(e))?;
        f.write_all(&line).await.map_err(|e| self.fault(e))
    }
}

/// Keeps entries in memory (tests, the local demo).
#[derive(Default)]
pub struct MemorySink(Mutex<Vec<Entry>>);

impl MemorySink {
    pub fn entries(&self) -> Vec<Entry> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl ChangeSink for MemorySink {
    async fn put(&self, entry: &Entry) -> Result<(), Error> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry.clone());
        Ok(())
    }
}

/// Every entry to each sink in turn (the local runner: memory for `demo`,
/// and the events file when asked for).
pub struct Tee(pub Vec<Arc<dyn ChangeSink>>);

#[async_trait]
impl ChangeSink for Tee {
    async fn put(&self, entry: &Entry) -> Result<(), Error> {
        for s in &self.0 {
            s.put(entry).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ConnectionId;
    use serde_json::json;

    fn config() -> Config {
        Config::from_lookup(|k| match k {
            "EVENT_BUS_NAME" => Some("platform-bus".into()),
            _ => None,
        })
        .unwrap()
    }

    fn synced(data: String) -> SyncedData {
        SyncedData {
            target: crate::store::SyncTarget {
                connection_id: ConnectionId::parse("99").unwrap(),
                location_id: "1198".into(),
                attribute_type: "rates".into(),
                resource_id: None,
            },
            user: UserId::parse("1").unwrap(),
            data,
            pages: 2,
            fetched_at_ms: 1_795_806_000_250,
            stored_at_ms: 1_795_806_001_000,
            event_id: "origin".into(),
            deleted: false,
            connection_gen: None,
        }
    }

    /// AWS's documented calculation (PutEvents entry size): the UTF-8
    /// bytes of Source, DetailType and Detail, counted here on the parts
    /// the way its Java sample does, not through `Entry::size`.
    fn aws_size(source: &str, detail_type: &str, detail: &str) -> usize {
        [source, detail_type, detail]
            .iter()
            .map(|s| s.len()) // a Rust str is its UTF-8 bytes
            .sum()
    }

    #[test]
    fn the_detail_types_are_exactly_the_documented_names() {
        let names: Vec<&str> = Change::ALL.iter().map(|c| c.detail_type()).collect();
        assert_eq!(
            names,
            [
                "Syncaroo Connection Confirmed",
                "Syncaroo Connection Revoked",
                "Syncaroo Data Synced",
                "Syncaroo Location Status Changed",
                "Syncaroo Sync Failed",
                "Syncaroo Credentials Need Reauth",
                "Syncaroo Credentials Restored",
                "Syncaroo User Erased",
            ]
        );
    }

    #[test]
    fn an_entry_names_its_source_and_bus_and_carries_a_json_detail() {
        let e = revoked_entry(
            &config(),
            &ConnectionId::parse("99").unwrap(),
            &UserId::parse("u-1").unwrap(),
            1_245_073_530,
        );
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({
                "Source": "syncaroo-bridge",
                "DetailType": "Syncaroo Connection Revoked",
                "Detail": r#"{"connectionId":"99","userId":"u-1","revokedAt":"2009-06-15T13:45:30.000Z"}"#,
                "EventBusName": "platform-bus",
            })
        );
    }

    #[test]
    fn records_are_inline_up_to_the_limit_and_truncated_past_it() {
        let c = config();
        // Records whose entry is exactly the limit, then one byte more.
        let probe = data_entry(&c, &synced(r#"[""]"#.into()), 1);
        let room = MAX_ENTRY_BYTES - probe.size();
        // Non-ASCII on purpose: the limit counts bytes, not characters.
        let fits = format!(r#"["{}{}"]"#, "é".repeat(room / 2), "a".repeat(room % 2));
        let at_limit = data_entry(&c, &synced(fits.clone()), 1);
        assert_eq!(
            aws_size(&at_limit.source, &at_limit.detail_type, &at_limit.detail),
            MAX_ENTRY_BYTES
        );
        let d: Value = serde_json::from_str(&at_limit.detail).unwrap();
        assert_eq!(d["records"], serde_json::from_str::<Value>(&fits).unwrap());
        assert!(d.get("truncated").is_none());

        let over = format!(r#"["{}a"]"#, &fits[2..fits.len() - 2]);
        let e = data_entry(&c, &synced(over), 1);
        let d: Value = serde_json::from_str(&e.detail).unwrap();
        assert_eq!(d["truncated"], true);
        assert!(d.get("records").is_none());
        assert_eq!(
            d["dataPath"],
            "/api/platform/users/1/data?connectionId=99&locationId=1198&attributeType=rates&locationLevel=true"
        );
        assert!(d.get("stored").is_none(), "no table key: {d}");
        assert_eq!(
            (d["recordCount"].clone(), d["pages"].clone()),
            (json!(1), json!(2))
        );
        assert!(e.size() < 1024);
    }

    #[test]
    fn a_data_entry_names_its_target_and_fetch_time() {
        let mut s = synced(r#"[{"rate":"daily"}]"#.into());
        s.target.resource_id = Some("7843".into());
        let e = data_entry(&config(), &s, 1);
        let d: Value = serde_json::from_str(&e.detail).unwrap();
        assert_eq!(
            d,
            json!({
                "connectionId": "99", "userId": "1", "locationId": "1198",
                "attributeType": "rates", "resourceId": "7843",
                "fetchedAt": "2026-11-27T19:00:00.250Z", "pages": 2,
                "deleted": false, "recordCount": 1, "records": [{"rate": "daily"}],
            })
        );
    }
}
