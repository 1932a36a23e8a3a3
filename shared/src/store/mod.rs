//! Persistence behind one trait, with a DynamoDB and an in-memory
//! implementation. Every "exactly once" here is a conditional write or a
//! transaction in DynamoDB and a single critical section in memory; the
//! conformance suite in `tests/` runs the same cases against both.

pub mod dynamo;
pub mod memory;

use crate::error::Error;
use crate::model::{
    AuthCodeRecord, Connection, ConnectionId, Location, TokenRecord, UserId, UserListings,
};
use async_trait::async_trait;

pub use dynamo::DynamoStore;
pub use memory::MemoryStore;

/// Redeem a code and issue its first tokens, in one atomic step.
#[derive(Debug, Clone)]
pub struct CodeRedemption {
    pub code_hash: String,
    pub client_id: String,
    /// Present when the token request carried one: must then match.
    pub redirect_uri: Option<String>,
    pub connection_id: ConnectionId,
    pub user_id: UserId,
    pub family: String,
    pub now: i64,
    pub access: TokenRecord,
    pub refresh: TokenRecord,
}

#[derive(Debug)]
pub enum RedeemError {
    NotFound,
    Expired,
    /// Issued to another client, redirect URI or connection.
    Mismatch,
    /// Already redeemed: the caller revokes `family` and `tokens`.
    Replayed {
        family: String,
        tokens: Vec<String>,
    },
    Store(Error),
}

/// Exchange a refresh token for a new pair, in one atomic step.
#[derive(Debug, Clone)]
pub struct RefreshRotation {
    pub old_hash: String,
    pub client_id: String,
    pub family: String,
    pub now: i64,
    /// A refresh token first used after this instant may be used again
    /// (a client's network retry); one used earlier is a replay.
    pub grace_floor: i64,
    pub access: TokenRecord,
    pub refresh: TokenRecord,
}

#[derive(Debug)]
pub enum RotateError {
    NotFound,
    Expired,
    Revoked,
    Mismatch,
    /// Used before, outside the grace window: the caller revokes `family`.
    Reused {
        family: String,
    },
    Store(Error),
}

#[async_trait]
pub trait Store: CredentialsStore + EventStore + Send + Sync {
    /// Cheap reads that warm the connections (TLS, DNS) during init: as
    /// many as a request path runs in parallel (two), so each of those
    /// finds an idle connection instead of queueing behind the other.
    async fn ping(&self) -> Result<(), Error>;

    /// Stores a new code and binds the connection to the user (as pending)
    /// atomically. A connection already bound to another user is a
    /// [`Error::Conflict`] and nothing is written.
    async fn begin_authorization(&self, code: &AuthCodeRecord, now: i64) -> Result<(), Error>;

    /// Consumes the code, stores both tokens and marks the connection
    /// authorized: all or nothing, and only once per code.
    async fn redeem_code(&self, r: &CodeRedemption) -> Result<(), RedeemError>;

    /// Marks the old refresh token used and stores the new pair: all or
    /// nothing; refused for a revoked family.
    async fn rotate_refresh(&self, r: &RefreshRotation) -> Result<(), RotateError>;

    /// Revokes every token of a family (plus `known` hashes, which may not
    /// be indexed yet) and refuses the family's refresh tokens from now on.
    async fn revoke_family(&self, family: &str, known: &[String], now: i64) -> Result<(), Error>;

    /// A token by its keyed hash, read strongly consistent.
    async fn get_token(&self, hash: &str) -> Result<Option<TokenRecord>, Error>;

    async fn get_connection(&self, id: &ConnectionId) -> Result<Option<Connection>, Error>;

    /// Marks the connection confirmed (idempotent: the first time is kept).
    async fn confirm_connection(
        &self,
        id: &ConnectionId,
        user: &UserId,
        now: i64,
    ) -> Result<(), Error>;

    /// Inserts or replaces the given locations of one user.
    async fn put_listings(&self, listings: &UserListings) -> Result<(), Error>;

    /// Every location of a user, ordered by ID.
    async fn list_locations(&self, user: &UserId) -> Result<Vec<Location>, Error>;
}

use crate::syncaroo::{NewCredentials, SyncarooCredentials};

/// The Syncaroo API credentials item and the admin connect state. Every
/// step is a conditional write, so any number of processes can share it.
#[async_trait]
pub trait CredentialsStore: Send + Sync {
    /// Read strongly consistent.
    async fn get_credentials(&self) -> Result<Option<SyncarooCredentials>, Error>;

    /// Stores a pair from the admin handshake: version + 1, status active,
    /// lease cleared.
    async fn put_credentials(&self, new: &NewCredentials, now: i64) -> Result<u64, Error>;

    /// Takes the refresh lease if the item is still at `version` and no
    /// live lease is held. `Ok(false)`: someone else has it.
    async fn acquire_lease(
        &self,
        version: u64,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, Error>;

    /// Stores the refreshed pair if `owner` still holds the lease at
    /// `version`: version + 1, lease cleared. `Ok(false)`: the lease was lost.
    async fn complete_refresh(
        &self,
        version: u64,
        owner: &str,
        new: &NewCredentials,
        now: i64,
    ) -> Result<bool, Error>;

    /// Gives the lease back (refresh failed, old pair still good).
    async fn release_lease(&self, owner: &str) -> Result<(), Error>;

    /// Stops every caller from using or refreshing the credentials.
    async fn mark_needs_reauth(&self, reason: &str, now: i64) -> Result<(), Error>;

    /// Stores the keyed hash of an admin connect `state` until `expires_at`.
    async fn put_oauth_state(&self, hash: &str, expires_at: i64) -> Result<(), Error>;

    /// Consumes a state: true once, if it exists and has not expired.
    async fn take_oauth_state(&self, hash: &str, now: i64) -> Result<bool, Error>;
}

use crate::webhook::WebhookType;

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
