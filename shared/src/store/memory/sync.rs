//! Webhook events, synced data and location status.

use super::MemoryStore;
use crate::error::Error;
use crate::model::ConnectionId;
use crate::store::{EventRecord, EventStatus, EventStore, LocationStatus, SyncedData};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub(super) struct EventState {
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
