//! Webhook notifications, the data their fetches stored, location status.

use crate::error::Error;
use crate::model::ConnectionId;
use crate::webhook::WebhookType;
use async_trait::async_trait;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    Pending,
    Done,
    Failed,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "done" => Some(Self::Done),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A webhook delivery as recorded at ack time.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// `<connectionId>:<sha256 of the canonical payload>`.
    pub id: String,
    pub connection_id: ConnectionId,
    pub webhook_type: WebhookType,
    pub location_id: String,
    /// The body without its `hash`, as JSON.
    pub payload: String,
    pub received_at_ms: i64,
    pub status: EventStatus,
    pub attempts: u32,
    pub error: Option<String>,
}

/// What a data webhook's `apiUrl` returned, every page of it.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncedData {
    pub connection_id: ConnectionId,
    pub location_id: String,
    pub attribute_type: String,
    pub resource_id: Option<String>,
    /// The `data` arrays of all pages, concatenated, as JSON.
    pub data: String,
    pub pages: u32,
    pub fetched_at_ms: i64,
    pub event_id: String,
}

/// The last status webhook of a location.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationStatus {
    pub connection_id: ConnectionId,
    pub location_id: String,
    /// The webhook's `metaData`, as JSON.
    pub meta: String,
    pub received_at_ms: i64,
    pub event_id: String,
}

/// Webhook events and what their processing stored.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Records a delivery once: `Ok(false)` if this payload was recorded
    /// before (a duplicate delivery). One conditional write.
    async fn record_event(&self, e: &EventRecord) -> Result<bool, Error>;

    async fn get_event(&self, id: &str) -> Result<Option<EventRecord>, Error>;

    /// Counts one processing attempt; `None` when the event is already
    /// done or failed (a redelivery must not be applied twice).
    async fn start_attempt(&self, id: &str) -> Result<Option<u32>, Error>;

    async fn finish_event(
        &self,
        id: &str,
        status: EventStatus,
        error: Option<&str>,
    ) -> Result<(), Error>;

    /// Stores fetched data unless data fetched later is already stored:
    /// `Ok(false)` when this write lost to a later fetch.
    async fn put_synced(&self, d: &SyncedData) -> Result<bool, Error>;

    async fn get_synced(
        &self,
        connection: &ConnectionId,
        location: &str,
        attribute_type: &str,
        resource: Option<&str>,
    ) -> Result<Option<SyncedData>, Error>;

    /// Stores a status unless a later one is stored: `Ok(false)` if older.
    async fn put_location_status(&self, s: &LocationStatus) -> Result<bool, Error>;

    async fn get_location_status(
        &self,
        connection: &ConnectionId,
        location: &str,
    ) -> Result<Option<LocationStatus>, Error>;
}
