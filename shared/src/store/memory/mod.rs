//! The embedded store: the same contract as DynamoDB, one mutex, no I/O.
//! Used by the local runner and the handler tests.
//! One file per group, as in DynamoDB: [`grants`], [`listings`],
//! [`credentials`], [`sync`].

mod credentials;
mod erase;
mod grants;
mod listings;
mod sync;

use super::Store;
use crate::error::Error;
use crate::model::{AuthCodeRecord, Connection, ConnectionId, Location, TokenRecord, UserId};
use async_trait::async_trait;
use credentials::CredState;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use sync::EventState;

#[derive(Debug)]
struct CodeState {
    record: AuthCodeRecord,
    consumed: bool,
    tokens: Vec<String>,
}

#[derive(Default)]
struct Inner {
    codes: HashMap<String, CodeState>,
    tokens: HashMap<String, TokenRecord>,
    revoked_families: HashSet<String>,
    /// Consent forms already used (their CSRF token's keyed hash), with
    /// the connection each was for.
    used_forms: HashMap<String, ConnectionId>,
    connections: HashMap<ConnectionId, Connection>,
    listings: HashMap<UserId, BTreeMap<String, Location>>,
    /// Erasures under way: when each began, the connections it has seen.
    erasures: HashMap<UserId, (i64, std::collections::BTreeSet<ConnectionId>)>,
}

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    creds: Mutex<CredState>,
    events: Mutex<EventState>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every
        // mutation below completes or does not start), so poison is ignored.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything stored, in a stable order: tests compare it before and
    /// after a refused request to show nothing was written.
    pub fn fingerprint(&self) -> String {
        let g = self.lock();
        let mut parts: Vec<String> = Vec::new();
        parts.extend(g.codes.iter().map(|(k, v)| format!("code {k} {v:?}")));
        parts.extend(g.tokens.iter().map(|(k, v)| format!("token {k} {v:?}")));
        parts.extend(g.revoked_families.iter().map(|f| format!("revoked {f}")));
        parts.extend(g.used_forms.keys().map(|f| format!("form {f}")));
        parts.extend(g.connections.iter().map(|(k, v)| format!("conn {k} {v:?}")));
        parts.extend(
            g.listings
                .iter()
                .map(|(k, v)| format!("listings {k} {v:?}")),
        );
        parts.sort();
        parts.join("\n")
    }

    /// How many items of each kind are stored (tests: "nothing written").
    pub fn counts(&self) -> (usize, usize, usize) {
        let g = self.lock();
        (g.codes.len(), g.tokens.len(), g.connections.len())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self, _connections: usize) -> Result<(), Error> {
        Ok(())
    }
}
