//! Persistence behind one trait per group of what is stored, with a DynamoDB and an in-memory
//! implementation. Every "exactly once" here is a conditional write or a
//! transaction in DynamoDB and a single critical section in memory; the
//! conformance suite in `tests/` runs the same cases against both.

pub mod credentials;
pub mod datalog;
pub mod dynamo;
pub mod erase;
pub mod grants;
pub mod keys;
pub mod listings;
pub mod memory;
pub mod sync;

use crate::error::Error;
use async_trait::async_trait;

pub use credentials::CredentialsStore;
pub use dynamo::DynamoStore;
pub use erase::{Erased, ErasureStore};
pub use grants::{
    CodeRedemption, ConnectionInfo, GrantStore, RedeemError, RefreshRotation, RotateError,
};
pub use listings::ListingStore;
pub use memory::MemoryStore;
pub use sync::{
    EventRecord, EventStatus, EventStore, GiveUp, LocationStatus, SyncTarget, SyncedData,
    TargetNote, TargetState,
};

/// Everything a deployment stores: the groups together, as the functions'
/// `App` holds it. Handlers and helpers name the narrowest group they need.
#[async_trait]
pub trait Store:
    GrantStore + ListingStore + CredentialsStore + EventStore + ErasureStore + Send + Sync
{
    /// Cheap reads, `connections` at once, that open and warm that many
    /// connections (TCP, TLS) during init: as many as the function's request
    /// paths run in parallel, so each of those finds an idle connection
    /// instead of opening one, and no handshake is made that no path uses.
    async fn ping(&self, connections: usize) -> Result<(), Error>;
}
