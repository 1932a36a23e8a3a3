//! The items of the table as serde structs, read and written with
//! `serde_dynamo`: each names its attributes once, in its fields, instead
//! of a chain of `get_s`/`get_n` lookups and `insert`s. Field names are the
//! stored attribute names, so items written before these structs existed
//! read unchanged (a test reads items in that form). Optional attributes
//! are `Option`, may be absent, and are left out when `None` (serde_dynamo
//! would write `{"NULL": true}`, which DynamoDB refuses in an index key and
//! ignores as a TTL); `ttl` is a number of epoch seconds. Attributes a
//! struct does not name are ignored on read.
//!
//! Most writes stay update expressions: they change some attributes of an
//! item under a condition, which no item struct expresses. Whole items
//! written at once (a token, a code, a legacy event) are written from their
//! struct.

use super::item::Item;
use serde::{Deserialize, Serialize};

/// Reads `item` as `T`; `None` when it does not have `T`'s shape.
pub(super) fn read<T: serde::de::DeserializeOwned>(item: &Item) -> Option<T> {
    serde_dynamo::from_item(item.clone()).ok()
}

/// Reads `item`, taken by value, as `T`: its strings move into `T`'s
/// fields instead of being copied (synced data's heads and chunks hold up
/// to 300 KB each).
pub(super) fn read_owned<T: serde::de::DeserializeOwned>(item: Item) -> Option<T> {
    serde_dynamo::from_item(item).ok()
}

/// `value` as an item. Our item structs are flat records of strings,
/// numbers and booleans, which always serialise.
pub(super) fn write<T: Serialize>(value: &T) -> Item {
    serde_dynamo::to_item(value).expect("an item struct serialises")
}

/// `CONN#<id>` / `CONNECTION`.
#[derive(Deserialize)]
pub(super) struct ConnectionItem {
    pub pk: String,
    pub user: String,
    pub client: String,
    pub status: String,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The token families ended by a revocation (a string set).
    #[serde(default)]
    pub revoked_fams: Vec<String>,
    /// The connection's generation (absent: created before them).
    #[serde(default)]
    pub gen: String,
}

/// `TOKEN#<hash>` / `TOKEN`.
#[derive(Serialize, Deserialize)]
pub(super) struct TokenItem {
    pub pk: String,
    #[serde(default)]
    pub sk: String,
    pub kind: String,
    pub conn: String,
    pub user: String,
    pub client: String,
    pub family: String,
    pub expires_at: i64,
    #[serde(default)]
    pub revoked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    /// The family's tokens, in the GSI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
}

/// `CODE#<hash>` / `CODE`: a consent's code (written whole, unconsumed;
/// redemption reads it back from the cancellation).
#[derive(Serialize)]
pub(super) struct CodeItem<'a> {
    pub pk: String,
    pub sk: &'a str,
    pub conn: &'a str,
    pub user: &'a str,
    pub client: &'a str,
    pub redirect: &'a str,
    pub family: &'a str,
    pub expires_at: i64,
    pub consumed: bool,
    pub ttl: i64,
    /// Found by erasure under its connection, in the GSI.
    pub gsi1pk: String,
    pub gsi1sk: String,
}

/// `SYNCAROO` / `CREDENTIALS`.
#[derive(Deserialize)]
pub(super) struct CredentialsItem {
    pub access_token: String,
    pub expires_at: i64,
    pub refresh_token: String,
    pub version: u64,
    pub lease_owner: Option<String>,
    pub lease_until_ms: Option<i64>,
    pub status: String,
    pub reason: Option<String>,
    #[serde(default)]
    pub updated_at: i64,
}

/// A target's `NOTE` item (also a stream record's `NewImage`).
#[derive(Deserialize)]
pub(super) struct NoteItem {
    pub pk: String,
    pub sk: String,
    pub conn: String,
    pub location: String,
    pub attr: String,
    pub resource: Option<String>,
}

/// `EVENT#<id>` / `EVENT`: a webhook an earlier version recorded.
#[derive(Serialize, Deserialize)]
pub(super) struct EventItem {
    pub pk: String,
    #[serde(default)]
    pub sk: String,
    pub conn: String,
    #[serde(rename = "type")]
    pub webhook_type: String,
    pub location: String,
    pub payload: String,
    pub received_at_ms: i64,
    pub status: String,
    #[serde(default)]
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    /// The connection's webhooks by time, in the GSI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
}

fn empty_object() -> String {
    "{}".into()
}

/// A target's `NOTE` item, as the worker reads it: its latest notification.
#[derive(Deserialize)]
pub(super) struct NoteState {
    #[serde(default = "empty_object")]
    pub payload: String,
    #[serde(default)]
    pub notified_at_ms: i64,
    #[serde(default)]
    pub notifications: u64,
}

/// A target's `STATE` item: its fetches, written by the worker only.
#[derive(Deserialize)]
pub(super) struct FetchState {
    pub fetch_started_ms: Option<i64>,
    pub fetched_through: Option<u64>,
    pub given_up_through: Option<u64>,
    #[serde(default)]
    pub attempts: u32,
    pub error: Option<String>,
    pub failed_at_ms: Option<i64>,
    pub failed_attempts: Option<u32>,
}

/// A location's `STATUS` item: its latest status webhook.
#[derive(Deserialize)]
pub(super) struct StatusItem {
    #[serde(default = "empty_object")]
    pub meta: String,
    #[serde(default)]
    pub received_at_ms: i64,
    #[serde(default)]
    pub event_id: String,
    /// 0 (or absent): stored before statuses were numbered.
    #[serde(default)]
    pub seq: i64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `SYNC#<conn>#<loc>` / `DATA#<attr>#<resource>`: a target's synced data,
/// inline (`data`) or over chunk items of its generation (`gen`, `chunks`).
#[derive(Serialize, Deserialize)]
pub(super) struct HeadItem {
    pub pk: String,
    pub sk: String,
    /// Absent: written before generations (legacy chunk keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunks: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default)]
    pub pages: u32,
    #[serde(default)]
    pub fetched_at_ms: i64,
    #[serde(default)]
    pub event_id: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
    /// The user whose data log holds it, and its place there; absent on
    /// heads written before the log (until the backfill logs them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_at_ms: Option<i64>,
}

/// A chunk of a head's generation.
#[derive(Deserialize)]
pub(super) struct ChunkItem {
    pub data: String,
    pub fetched_at_ms: i64,
}

/// `DATALOG#<user>` / `LOG`: a user's data log counter and epoch.
#[derive(Deserialize)]
pub(super) struct LogCounterItem {
    pub seq: u64,
    pub epoch: String,
}

/// `DATALOG#<user>` / `SEQ#<n>`: one target's place in its user's log.
#[derive(Serialize, Deserialize)]
pub(super) struct LogEntryItem {
    pub pk: String,
    pub sk: String,
    pub seq: u64,
    pub conn: String,
    pub location: String,
    pub attr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}
