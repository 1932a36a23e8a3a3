//! Webhook notifications, the data their fetches stored, location status.

use crate::error::Error;
use crate::model::{ConnectionId, UserId};
use crate::store::datalog::{DataPage, DataRead};
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

/// A webhook as earlier versions recorded it at ack time (one item per
/// status webhook; the worker hands one still pending to its target).
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// `<connectionId>:status:<locationId>:<received ms>:<random>`.
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

/// What a data webhook announces a change of: one fetch refreshes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SyncTarget {
    pub connection_id: ConnectionId,
    pub location_id: String,
    /// `locations`, `resources` or `rates`.
    pub attribute_type: String,
    pub resource_id: Option<String>,
}

/// The attribute type that names a location's status target: what its
/// status webhooks notify (never a data webhook's, which must be
/// `locations`, `resources` or `rates`).
pub const STATUS_TARGET: &str = "status";

impl SyncTarget {
    /// The target a location's status webhooks notify: its notification
    /// count orders them, its payload is the latest.
    pub fn status(connection_id: ConnectionId, location_id: String) -> Self {
        Self {
            connection_id,
            location_id,
            attribute_type: STATUS_TARGET.into(),
            resource_id: None,
        }
    }

    /// A location's status target (applied, never fetched).
    pub fn is_status(&self) -> bool {
        self.attribute_type == STATUS_TARGET
    }

    /// A readable id (logs, dead letters, the stored data's origin), one
    /// per target: its fields joined unambiguously ([`super::keys`]).
    pub fn id(&self) -> String {
        super::keys::target_id(
            &self.connection_id,
            &self.location_id,
            &self.attribute_type,
            self.resource_id.as_deref(),
        )
    }
}

/// A notification: the target changed at Syncaroo; its latest `apiUrl` is
/// in the payload.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetNote {
    pub target: SyncTarget,
    /// The latest webhook body without its `hash`, as JSON.
    pub payload: String,
    pub notified_at_ms: i64,
}

/// A target's notifications and fetches: the sync item.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetState {
    pub target: SyncTarget,
    pub payload: String,
    /// When the latest notification arrived.
    pub notified_at_ms: i64,
    /// How many notifications arrived in all: also each one's sequence
    /// number, which orders them exactly (two in one millisecond too).
    pub notifications: u64,
    /// When the last successful fetch started.
    pub fetch_started_ms: Option<i64>,
    /// The notifications that fetch covers: all recorded before it started.
    pub fetched_through: Option<u64>,
    /// The notifications a failed fetch gave up on (dead-lettered): not
    /// tried again until a newer one arrives.
    pub given_up_through: Option<u64>,
    /// Failed tries since the last success.
    pub attempts: u32,
    pub error: Option<String>,
    /// The last give-up: when, and after how many tries.
    pub failed_at_ms: Option<i64>,
    pub failed_attempts: Option<u32>,
}

impl TargetState {
    /// A notification is newer than the last successful fetch's start (and
    /// than those given up on): fetch.
    pub fn due(&self) -> bool {
        let covered = self
            .fetched_through
            .unwrap_or(0)
            .max(self.given_up_through.unwrap_or(0));
        self.notifications > covered
    }

    /// Its latest notifications were given up on and no fetch since
    /// covered them.
    pub fn failing(&self) -> bool {
        self.given_up_through
            .is_some_and(|g| g > self.fetched_through.unwrap_or(0))
    }
}

/// A target given up on (dead-lettered).
#[derive(Debug, Clone, PartialEq)]
pub struct GiveUp<'a> {
    /// The notifications given up on: not tried again until a newer one.
    pub through: u64,
    pub reason: &'a str,
    /// The tries made.
    pub attempts: u32,
    pub at_ms: i64,
}

/// The most one fetch stores: the DynamoDB store splits it over 300 KB
/// chunk items written in one transaction (4 MB at most).
pub const MAX_STORED_BYTES: usize = 3 * 1024 * 1024;

/// What a data webhook's `apiUrl` returned, every page of it.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncedData {
    /// What was fetched: a data target.
    pub target: SyncTarget,
    /// The connection's user: whose data log orders it
    /// ([`crate::store::datalog`]).
    pub user: UserId,
    /// The `data` arrays of all pages, concatenated, as JSON.
    pub data: String,
    pub pages: u32,
    pub fetched_at_ms: i64,
    /// When it was stored (the worker's clock when it wrote it; items
    /// stored before this was kept read back their fetch time).
    pub stored_at_ms: i64,
    pub event_id: String,
    /// Syncaroo answered 404 or 410 for it: deleted there (`data` is `[]`).
    pub deleted: bool,
    /// The connection's generation the fetch began under: the write is
    /// refused ([`CONNECTION_ENDED`]) once the connection was revoked,
    /// erased or started afresh. `None`: not checked (a tool or test that
    /// stores without a connection; the worker always names one).
    pub connection_gen: Option<String>,
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
    /// Its place among the location's status webhooks (the status
    /// target's notification count when it was acked): a later one has a
    /// larger number, even in the same millisecond. 0: stored before
    /// statuses had one (any numbered status is later). Stored unless a
    /// larger one is; the same one again is applied again (a retry).
    pub seq: u64,
    /// As [`SyncedData::connection_gen`].
    pub connection_gen: Option<String>,
}

/// Why a write named with a connection generation is refused: the
/// connection was revoked, erased or started afresh since the work began.
/// The worker drops that work (and the target's notes); nothing is
/// written back for a connection that ended.
pub const CONNECTION_ENDED: &str = "the connection was revoked or erased since this work began";

pub fn connection_ended() -> Error {
    Error::Conflict(CONNECTION_ENDED.into())
}

pub fn is_connection_ended(e: &Error) -> bool {
    matches!(e, Error::Conflict(m) if m == CONNECTION_ENDED)
}

/// Whether `c` still is the generation `gen` names, and live.
pub fn generation_live(c: Option<&crate::model::Connection>, gen: &str) -> bool {
    c.is_some_and(|c| c.generation == gen && c.status != crate::model::ConnectionStatus::Revoked)
}

/// Webhook events and what their processing stored.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Marks the target: its latest notification time and payload, one
    /// more notification. One write; never refused as a duplicate.
    async fn notify_target(&self, note: &TargetNote) -> Result<(), Error>;

    async fn get_target(&self, target: &SyncTarget) -> Result<Option<TargetState>, Error>;

    /// Counts a fetch attempt: the attempts since the last success.
    async fn start_fetch(&self, target: &SyncTarget) -> Result<u32, Error>;

    /// A fetch that started at `started_ms`, after `through` notifications
    /// were recorded, succeeded: recorded unless one covering more already
    /// was; attempts back to 0.
    async fn fetch_done(
        &self,
        target: &SyncTarget,
        started_ms: i64,
        through: u64,
    ) -> Result<(), Error>;

    /// The fetch for the first `g.through` notifications is dead-lettered:
    /// not tried again until a newer notification.
    async fn give_up(&self, target: &SyncTarget, g: &GiveUp<'_>) -> Result<(), Error>;

    /// Removes a target's notification and fetch state (a target of a
    /// connection that ended); nothing when there are none.
    async fn forget_target(&self, target: &SyncTarget) -> Result<(), Error>;

    /// Every target of `connection` (data and status) with its state.
    async fn connection_targets(
        &self,
        connection: &ConnectionId,
    ) -> Result<Vec<TargetState>, Error>;

    /// Records a status delivery: `Ok(false)` if this id was recorded
    /// before. One conditional write.
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
    /// `Ok(false)` when this write lost to a later fetch. A stored write
    /// takes the next place in its user's data log, in the same write.
    /// Refused with [`CONNECTION_ENDED`] when `d.connection_gen` names a
    /// generation that ended.
    async fn put_synced(&self, d: &SyncedData) -> Result<bool, Error>;

    /// A page of `user`'s synced data in the order it was stored, after
    /// `read.after` ([`crate::store::datalog`]'s rule).
    async fn read_data(&self, user: &UserId, read: &DataRead) -> Result<DataPage, Error>;

    async fn get_synced(
        &self,
        connection: &ConnectionId,
        location: &str,
        attribute_type: &str,
        resource: Option<&str>,
    ) -> Result<Option<SyncedData>, Error>;

    /// Stores a status unless a later one is stored: `Ok(false)` if older;
    /// refused as [`Self::put_synced`] for an ended generation.
    async fn put_location_status(&self, s: &LocationStatus) -> Result<bool, Error>;

    async fn get_location_status(
        &self,
        connection: &ConnectionId,
        location: &str,
    ) -> Result<Option<LocationStatus>, Error>;
}
