//! Erasing a user: every item held for them, found through keys that name
//! the user or one of their connections, removed a bounded batch at a time.
//!
//! How each kind is found (DynamoDB; the in-memory store keeps the same
//! kinds in maps):
//! - connections: the user's connections in `gsi1` (`USERCONN#<user>`);
//! - tokens: each family the connection item lists (`families`), then the
//!   family's tokens in `gsi1` (`FAM#<family>`), and the family item;
//! - codes, consent forms, location statuses, targets' fetch state:
//!   `gsi1` under `OWNED#<connection>` (written with them; `syncaroo-admin
//!   data backfill` indexes those stored before, but for forms, which name
//!   no connection and expire a day after their code);
//! - target notifications and legacy status events: `gsi1` under
//!   `HOOKS#<connection>`;
//! - synced data and its chunks: the user's data log (`DATALOG#<user>`,
//!   read consistently) names each stored target, whose location's
//!   partition (`SYNC#<connection>#<location>`) holds heads, chunks and the
//!   status; the statuses' partitions are queried the same way;
//! - listings (`USER#<user>`) and the data log itself, by partition.
//!
//! Every item deleted leaves a way to what remains: a partition goes whole
//! with the indexed item that led to it, a log entry right after its
//! target's partition, then the log's counter, the listings, and the
//! connection items last, so a batch cut short finds the rest from them.

use crate::error::Error;
use crate::model::{ConnectionId, UserId};
use async_trait::async_trait;
use std::collections::BTreeMap;

/// The kinds an erasure reports counts of.
pub mod kind {
    pub const CONNECTIONS: &str = "connections";
    pub const CODES: &str = "codes";
    pub const TOKENS: &str = "tokens";
    pub const TOKEN_FAMILIES: &str = "tokenFamilies";
    pub const CONSENT_FORMS: &str = "consentForms";
    pub const LISTINGS: &str = "listings";
    /// A target's notification and fetch state, counted once per target.
    pub const TARGETS: &str = "targets";
    pub const STATUS_EVENTS: &str = "statusEvents";
    pub const DATA: &str = "data";
    pub const CHUNKS: &str = "chunks";
    pub const STATUSES: &str = "statuses";
    /// The user's data log: its counter and entries.
    pub const DATA_LOG: &str = "dataLog";
    pub const DEAD_LETTERS: &str = "deadLetters";
    pub const REVOKED: &str = "connectionsRevoked";
}

/// What one erasure batch removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erased {
    /// Items removed, by kind (kinds with none left out).
    pub removed: BTreeMap<&'static str, u64>,
    /// The batch stopped at its budget: more may be left.
    pub cut_short: bool,
}

impl Erased {
    pub fn add(&mut self, kind: &'static str, n: u64) {
        if n > 0 {
            *self.removed.entry(kind).or_default() += n;
        }
    }

    pub fn total(&self) -> u64 {
        self.removed.values().sum()
    }
}

/// What a batch reaches besides the user's listed connections.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// Every connection the erasure has seen: what they held is looked up
    /// by their ids, also once their items are gone.
    pub connections: &'a [ConnectionId],
    /// Whether connection items may go: only once the erasure began longer
    /// ago than the index lags and no connection was revoked in this call,
    /// so what was indexed late under them (their token families) is still
    /// found; and only the items of `connections` (one created since the
    /// erasure listed them is revoked and recorded first, by a later call).
    pub connection_items: bool,
}

/// An erasure under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Began {
    /// When it began, in milliseconds.
    pub at_ms: i64,
    /// This call began it.
    pub now: bool,
    /// Every connection of the user it has seen, sorted.
    pub connections: Vec<ConnectionId>,
}

/// The most items one call removes by default: well inside the admin
/// function's time (BatchWriteItem, 25 a request).
pub const ERASE_BUDGET: usize = 5_000;

#[async_trait]
pub trait ErasureStore: Send + Sync {
    /// Records that `user`'s erasure began at `now_ms` unless one is
    /// under way, and adds `connections` to the ones it has seen (so later
    /// calls still purge dead letters naming connections already removed).
    async fn begin_erasure(
        &self,
        user: &UserId,
        now_ms: i64,
        connections: &[ConnectionId],
    ) -> Result<Began, Error>;

    /// Removes up to `budget` of `user`'s items (their connections must be
    /// revoked first, so no writer puts any back).
    async fn erase_items(
        &self,
        user: &UserId,
        scope: &Scope<'_>,
        budget: usize,
    ) -> Result<Erased, Error>;

    /// Ends the erasure under way: `true` when there was one.
    async fn end_erasure(&self, user: &UserId) -> Result<bool, Error>;
}
