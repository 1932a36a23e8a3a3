//! The embedded store: the same contract as DynamoDB, one mutex, no I/O.
//! Used by the local runner and the handler tests.

use super::{CodeRedemption, RedeemError, RefreshRotation, RotateError, Store};
use crate::error::Error;
use crate::model::{
    AuthCodeRecord, Connection, ConnectionId, ConnectionStatus, Location, TokenKind, TokenRecord,
    UserId, UserListings,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

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
    connections: HashMap<ConnectionId, Connection>,
    listings: HashMap<UserId, BTreeMap<String, Location>>,
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
    async fn ping(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn begin_authorization(&self, code: &AuthCodeRecord, now: i64) -> Result<(), Error> {
        let mut g = self.lock();
        if let Some(c) = g.connections.get(&code.connection_id) {
            if c.user_id != code.user_id {
                return Err(Error::Conflict(
                    "this Syncaroo connection is linked to another account".into(),
                ));
            }
        }
        if g.codes.contains_key(&code.hash) {
            return Err(Error::Store("code hash collision".into()));
        }
        g.codes.insert(
            code.hash.clone(),
            CodeState {
                record: code.clone(),
                consumed: false,
                tokens: vec![],
            },
        );
        g.connections
            .entry(code.connection_id.clone())
            .or_insert_with(|| Connection {
                id: code.connection_id.clone(),
                user_id: code.user_id.clone(),
                client_id: code.client_id.clone(),
                status: ConnectionStatus::Pending,
                created_at: now,
                confirmed_at: None,
            });
        Ok(())
    }

    async fn redeem_code(&self, r: &CodeRedemption) -> Result<(), RedeemError> {
        let mut g = self.lock();
        let Some(state) = g.codes.get_mut(&r.code_hash) else {
            return Err(RedeemError::NotFound);
        };
        if state.consumed {
            return Err(RedeemError::Replayed {
                family: state.record.family.clone(),
                tokens: state.tokens.clone(),
            });
        }
        if state.record.expires_at <= r.now {
            return Err(RedeemError::Expired);
        }
        let rec = &state.record;
        if rec.client_id != r.client_id
            || rec.connection_id != r.connection_id
            || rec.user_id != r.user_id
            || rec.family != r.family
            || r.redirect_uri
                .as_ref()
                .is_some_and(|u| u != &rec.redirect_uri)
        {
            return Err(RedeemError::Mismatch);
        }
        match g.connections.get(&r.connection_id) {
            Some(c) if c.user_id == r.user_id => {}
            _ => return Err(RedeemError::Mismatch),
        }
        let state = g.codes.get_mut(&r.code_hash).expect("checked above");
        state.consumed = true;
        state.tokens = vec![r.access.hash.clone(), r.refresh.hash.clone()];
        g.tokens.insert(r.access.hash.clone(), r.access.clone());
        g.tokens.insert(r.refresh.hash.clone(), r.refresh.clone());
        let conn = g
            .connections
            .get_mut(&r.connection_id)
            .expect("checked above");
        conn.status = ConnectionStatus::Authorized;
        Ok(())
    }

    async fn rotate_refresh(&self, r: &RefreshRotation) -> Result<(), RotateError> {
        let mut g = self.lock();
        if g.revoked_families.contains(&r.family) {
            return Err(RotateError::Revoked);
        }
        let Some(old) = g.tokens.get(&r.old_hash) else {
            return Err(RotateError::NotFound);
        };
        if old.kind != TokenKind::Refresh || old.client_id != r.client_id || old.family != r.family
        {
            return Err(RotateError::Mismatch);
        }
        if old.revoked {
            return Err(RotateError::Revoked);
        }
        if old.expires_at <= r.now {
            return Err(RotateError::Expired);
        }
        if let Some(used) = old.used_at {
            if used <= r.grace_floor {
                return Err(RotateError::Reused {
                    family: old.family.clone(),
                });
            }
        }
        let old = g.tokens.get_mut(&r.old_hash).expect("checked above");
        old.used_at.get_or_insert(r.now);
        g.tokens.insert(r.access.hash.clone(), r.access.clone());
        g.tokens.insert(r.refresh.hash.clone(), r.refresh.clone());
        Ok(())
    }

    async fn revoke_family(&self, family: &str, known: &[String], _now: i64) -> Result<(), Error> {
        let mut g = self.lock();
        g.revoked_families.insert(family.to_string());
        for t in g.tokens.values_mut() {
            if t.family == family || known.contains(&t.hash) {
                t.revoked = true;
            }
        }
        Ok(())
    }

    async fn get_token(&self, hash: &str) -> Result<Option<TokenRecord>, Error> {
        Ok(self.lock().tokens.get(hash).cloned())
    }

    async fn get_connection(&self, id: &ConnectionId) -> Result<Option<Connection>, Error> {
        Ok(self.lock().connections.get(id).cloned())
    }

    async fn confirm_connection(
        &self,
        id: &ConnectionId,
        user: &UserId,
        now: i64,
    ) -> Result<(), Error> {
        let mut g = self.lock();
        match g.connections.get_mut(id) {
            Some(c) if &c.user_id == user => {
                c.status = ConnectionStatus::Confirmed;
                c.confirmed_at.get_or_insert(now);
                Ok(())
            }
            _ => Err(Error::InvalidToken(
                "the connection is not linked to this token".into(),
            )),
        }
    }

    async fn put_listings(&self, listings: &UserListings) -> Result<(), Error> {
        let mut g = self.lock();
        let m = g.listings.entry(listings.user_id.clone()).or_default();
        for (k, v) in &listings.locations {
            m.insert(k.clone(), v.clone());
        }
        Ok(())
    }

    async fn list_locations(&self, user: &UserId) -> Result<Vec<Location>, Error> {
        Ok(self
            .lock()
            .listings
            .get(user)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }
}

use super::CredentialsStore;
use crate::syncaroo::{CredentialStatus, NewCredentials, SyncarooCredentials};

#[derive(Default)]
struct CredState {
    creds: Option<SyncarooCredentials>,
    states: HashMap<String, i64>,
}

fn cred_lock(m: &Mutex<CredState>) -> std::sync::MutexGuard<'_, CredState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl CredentialsStore for MemoryStore {
    async fn get_credentials(&self) -> Result<Option<SyncarooCredentials>, Error> {
        Ok(cred_lock(&self.creds).creds.clone())
    }

    async fn put_credentials(&self, new: &NewCredentials, now: i64) -> Result<u64, Error> {
        let mut g = cred_lock(&self.creds);
        let version = g.creds.as_ref().map_or(0, |c| c.version) + 1;
        g.creds = Some(SyncarooCredentials {
            access_token: new.access_token.clone(),
            expires_at: new.expires_at,
            refresh_token: new.refresh_token.clone(),
            version,
            lease_owner: None,
            lease_until_ms: None,
            status: CredentialStatus::Active,
            reason: None,
            updated_at: now,
        });
        Ok(version)
    }

    async fn acquire_lease(
        &self,
        version: u64,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, Error> {
        let mut g = cred_lock(&self.creds);
        let Some(c) = g.creds.as_mut() else {
            return Ok(false);
        };
        let free = c.lease_until_ms.is_none_or(|u| u <= now_ms);
        if c.version != version || !free || c.status != CredentialStatus::Active {
            return Ok(false);
        }
        c.lease_owner = Some(owner.to_string());
        c.lease_until_ms = Some(until_ms);
        Ok(true)
    }

    async fn complete_refresh(
        &self,
        version: u64,
        owner: &str,
        new: &NewCredentials,
        now: i64,
    ) -> Result<bool, Error> {
        let mut g = cred_lock(&self.creds);
        let Some(c) = g.creds.as_mut() else {
            return Ok(false);
        };
        if c.version != version || c.lease_owner.as_deref() != Some(owner) {
            return Ok(false);
        }
        c.access_token = new.access_token.clone();
        c.refresh_token = new.refresh_token.clone();
        c.expires_at = new.expires_at;
        c.version += 1;
        c.lease_owner = None;
        c.lease_until_ms = None;
        c.updated_at = now;
        Ok(true)
    }

    async fn release_lease(&self, owner: &str) -> Result<(), Error> {
        let mut g = cred_lock(&self.creds);
        if let Some(c) = g.creds.as_mut() {
            if c.lease_owner.as_deref() == Some(owner) {
                c.lease_owner = None;
                c.lease_until_ms = None;
            }
        }
        Ok(())
    }

    async fn mark_needs_reauth(&self, reason: &str, now: i64) -> Result<(), Error> {
        let mut g = cred_lock(&self.creds);
        if let Some(c) = g.creds.as_mut() {
            c.status = CredentialStatus::NeedsReauth;
            c.reason = Some(reason.to_string());
            c.lease_owner = None;
            c.lease_until_ms = None;
            c.updated_at = now;
        }
        Ok(())
    }

    async fn put_oauth_state(&self, hash: &str, expires_at: i64) -> Result<(), Error> {
        cred_lock(&self.creds)
            .states
            .insert(hash.to_string(), expires_at);
        Ok(())
    }

    async fn take_oauth_state(&self, hash: &str, now: i64) -> Result<bool, Error> {
        let mut g = cred_lock(&self.creds);
        Ok(matches!(g.states.remove(hash), Some(exp) if exp > now))
    }
}

use super::{EventRecord, EventStatus, EventStore, LocationStatus, SyncedData};

#[derive(Default)]
struct EventState {
    events: HashMap<String, EventRecord>,
    synced: HashMap<(ConnectionId, String, String, Option<String>), SyncedData>,
    statuses: HashMap<(ConnectionId, String), LocationStatus>,
}

fn ev_lock(m: &Mutex<EventState>) -> std::sync::MutexGuard<'_, EventState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemoryStore {
    /// How many webhook events are recorded (tests: "nothing recorded").
    pub fn event_count(&self) -> usize {
        ev_lock(&self.events).events.len()
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn record_event(&self, e: &EventRecord) -> Result<bool, Error> {
        let mut g = ev_lock(&self.events);
        if g.events.contains_key(&e.id) {
            return Ok(false);
        }
        g.events.insert(e.id.clone(), e.clone());
        Ok(true)
    }

    async fn get_event(&self, id: &str) -> Result<Option<EventRecord>, Error> {
        Ok(ev_lock(&self.events).events.get(id).cloned())
    }

    async fn start_attempt(&self, id: &str) -> Result<Option<u32>, Error> {
        let mut g = ev_lock(&self.events);
        match g.events.get_mut(id) {
            Some(e) if e.status == EventStatus::Pending => {
                e.attempts += 1;
                Ok(Some(e.attempts))
            }
            Some(_) => Ok(None),
            None => Err(Error::NotFound),
        }
    }

    async fn finish_event(
        &self,
        id: &str,
        status: EventStatus,
        error: Option<&str>,
    ) -> Result<(), Error> {
        let mut g = ev_lock(&self.events);
        let e = g.events.get_mut(id).ok_or(Error::NotFound)?;
        e.status = status;
        e.error = error.map(str::to_string);
        Ok(())
    }

    async fn put_synced(&self, d: &SyncedData) -> Result<bool, Error> {
        let mut g = ev_lock(&self.events);
        let k = (
            d.connection_id.clone(),
            d.location_id.clone(),
            d.attribute_type.clone(),
            d.resource_id.clone(),
        );
        if g.synced
            .get(&k)
            .is_some_and(|old| old.fetched_at_ms >= d.fetched_at_ms)
        {
            return Ok(false);
        }
        g.synced.insert(k, d.clone());
        Ok(true)
    }

    async fn get_synced(
        &self,
        connection: &ConnectionId,
        location: &str,
        attribute_type: &str,
        resource: Option<&str>,
    ) -> Result<Option<SyncedData>, Error> {
        let k = (
            connection.clone(),
            location.to_string(),
            attribute_type.to_string(),
            resource.map(str::to_string),
        );
        Ok(ev_lock(&self.events).synced.get(&k).cloned())
    }

    async fn put_location_status(&self, s: &LocationStatus) -> Result<bool, Error> {
        let mut g = ev_lock(&self.events);
        let k = (s.connection_id.clone(), s.location_id.clone());
        if g.statuses
            .get(&k)
            .is_some_and(|old| old.received_at_ms >= s.received_at_ms)
        {
            return Ok(false);
        }
        g.statuses.insert(k, s.clone());
        Ok(true)
    }

    async fn get_location_status(
        &self,
        connection: &ConnectionId,
        location: &str,
    ) -> Result<Option<LocationStatus>, Error> {
        Ok(ev_lock(&self.events)
            .statuses
            .get(&(connection.clone(), location.to_string()))
            .cloned())
    }
}
