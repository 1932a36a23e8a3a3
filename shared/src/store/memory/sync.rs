//! Webhook events, synced data and location status.

use super::erase::Budget;
use super::MemoryStore;
use crate::error::Error;
use crate::model::{ConnectionId, UserId};
use crate::store::datalog::{DataPage, DataRead, PageBuilder};
use crate::store::erase::kind;
use crate::store::{
    EventRecord, EventStatus, EventStore, GiveUp, LocationStatus, SyncTarget, SyncedData,
    TargetNote, TargetState,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Default)]
pub(super) struct EventState {
    events: HashMap<String, EventRecord>,
    targets: HashMap<SyncTarget, TargetState>,
    /// Each target's data and its place in its user's log.
    synced: HashMap<SyncTarget, (SyncedData, u64)>,
    logs: HashMap<UserId, DataLog>,
    statuses: HashMap<(ConnectionId, String), LocationStatus>,
}

/// A user's data log ([`crate::store::datalog`]): one entry per target.
struct DataLog {
    epoch: String,
    seq: u64,
    entries: BTreeMap<u64, SyncTarget>,
}

pub(super) fn ev_lock(m: &Mutex<EventState>) -> std::sync::MutexGuard<'_, EventState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl EventState {
    /// Removes what the events hold of `user` and `conns` (the data log
    /// after the data it names), as far as the budget goes.
    pub(super) fn erase(
        &mut self,
        user: &UserId,
        conns: &std::collections::HashSet<ConnectionId>,
        b: &mut Budget,
    ) {
        b.take(kind::STATUS_EVENTS, &mut self.events, |_, e| {
            conns.contains(&e.connection_id)
        });
        b.take(kind::TARGETS, &mut self.targets, |t, _| {
            conns.contains(&t.connection_id)
        });
        b.take(kind::DATA, &mut self.synced, |t, _| {
            conns.contains(&t.connection_id)
        });
        b.take(kind::STATUSES, &mut self.statuses, |(c, _), _| {
            conns.contains(c)
        });
        if b.out.cut_short {
            return;
        }
        // The entries, then the counter.
        if let Some(log) = self.logs.get_mut(user) {
            b.take_ordered(kind::DATA_LOG, &mut log.entries);
            if log.entries.is_empty() && b.one(kind::DATA_LOG) {
                self.logs.remove(user);
            }
        }
    }

    /// Whether `conn` may still be written for under generation `gen`.
    fn live(
        conns: &HashMap<ConnectionId, crate::model::Connection>,
        c: &ConnectionId,
        gen: Option<&str>,
    ) -> Result<(), Error> {
        match gen {
            Some(gen) if !crate::store::sync::generation_live(conns.get(c), gen) => {
                Err(crate::store::sync::connection_ended())
            }
            _ => Ok(()),
        }
    }
}

impl MemoryStore {
    /// When `conn`'s latest webhook (data or status) was recorded.
    pub(super) fn last_webhook_ms(&self, conn: &ConnectionId) -> Option<i64> {
        let g = ev_lock(&self.events);
        let data = g
            .targets
            .values()
            .filter(|t| &t.target.connection_id == conn)
            .map(|t| t.notified_at_ms);
        let status = g
            .events
            .values()
            .filter(|e| &e.connection_id == conn)
            .map(|e| e.received_at_ms);
        data.chain(status).max()
    }

    /// How many webhook events are recorded (tests: "nothing recorded").
    pub fn event_count(&self) -> usize {
        let g = ev_lock(&self.events);
        g.events.len() + g.targets.len()
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn notify_target(&self, note: &TargetNote) -> Result<(), Error> {
        let mut g = ev_lock(&self.events);
        let t = g
            .targets
            .entry(note.target.clone())
            .or_insert_with(|| TargetState {
                target: note.target.clone(),
                payload: String::new(),
                notified_at_ms: 0,
                notifications: 0,
                fetch_started_ms: None,
                fetched_through: None,
                given_up_through: None,
                attempts: 0,
                error: None,
                failed_at_ms: None,
                failed_attempts: None,
            });
        t.payload = note.payload.clone();
        t.notified_at_ms = note.notified_at_ms;
        t.notifications += 1;
        Ok(())
    }

    async fn get_target(&self, target: &SyncTarget) -> Result<Option<TargetState>, Error> {
        Ok(ev_lock(&self.events).targets.get(target).cloned())
    }

    async fn start_fetch(&self, target: &SyncTarget) -> Result<u32, Error> {
        let mut g = ev_lock(&self.events);
        let t = g.targets.get_mut(target).ok_or(Error::NotFound)?;
        t.attempts += 1;
        Ok(t.attempts)
    }

    async fn fetch_done(
        &self,
        target: &SyncTarget,
        started_ms: i64,
        through: u64,
    ) -> Result<(), Error> {
        let mut g = ev_lock(&self.events);
        let t = g.targets.get_mut(target).ok_or(Error::NotFound)?;
        if t.fetched_through.is_none_or(|c| c < through) {
            t.fetch_started_ms = Some(started_ms);
            t.fetched_through = Some(through);
            t.attempts = 0;
            t.error = None;
        }
        Ok(())
    }

    async fn give_up(&self, target: &SyncTarget, up: &GiveUp<'_>) -> Result<(), Error> {
        let mut g = ev_lock(&self.events);
        let t = g.targets.get_mut(target).ok_or(Error::NotFound)?;
        t.given_up_through = Some(up.through);
        t.attempts = 0;
        t.error = Some(up.reason.to_string());
        t.failed_at_ms = Some(up.at_ms);
        t.failed_attempts = Some(up.attempts);
        Ok(())
    }

    async fn forget_target(&self, target: &SyncTarget) -> Result<(), Error> {
        ev_lock(&self.events).targets.remove(target);
        Ok(())
    }

    async fn connection_targets(
        &self,
        connection: &ConnectionId,
    ) -> Result<Vec<TargetState>, Error> {
        let g = ev_lock(&self.events);
        let mut all: Vec<TargetState> = g
            .targets
            .values()
            .filter(|t| &t.target.connection_id == connection)
            .cloned()
            .collect();
        all.sort_by_key(|t| t.target.id());
        Ok(all)
    }

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
        let conns = self.lock();
        EventState::live(
            &conns.connections,
            &d.target.connection_id,
            d.connection_gen.as_deref(),
        )?;
        let mut g = ev_lock(&self.events);
        let g = &mut *g;
        let old = g.synced.get(&d.target);
        if old.is_some_and(|(old, _)| old.fetched_at_ms > d.fetched_at_ms) {
            return Ok(false);
        }
        if let Some((old, seq)) = old {
            if let Some(log) = g.logs.get_mut(&old.user) {
                log.entries.remove(seq);
            }
        }
        let log = g.logs.entry(d.user.clone()).or_insert_with(|| DataLog {
            epoch: crate::crypto::random_b64(6),
            seq: 0,
            entries: BTreeMap::new(),
        });
        log.seq += 1;
        log.entries.insert(log.seq, d.target.clone());
        g.synced.insert(d.target.clone(), (d.clone(), log.seq));
        Ok(true)
    }

    async fn read_data(&self, user: &UserId, read: &DataRead) -> Result<DataPage, Error> {
        let g = ev_lock(&self.events);
        let Some(log) = g.logs.get(user) else {
            return Ok(PageBuilder::new(read, "").finish(false));
        };
        let mut page = PageBuilder::new(read, &log.epoch);
        let mut rest = log.entries.range(page.after() + 1..).peekable();
        while !page.is_full() {
            let Some((&seq, target)) = rest.next() else {
                break;
            };
            match g.synced.get(target) {
                Some((d, at)) if *at == seq && read.filter.matches(target) => {
                    page.offer(seq, d.clone())
                }
                _ => page.pass(seq),
            }
        }
        Ok(page.finish(rest.peek().is_some()))
    }

    async fn get_synced(
        &self,
        connection: &ConnectionId,
        location: &str,
        attribute_type: &str,
        resource: Option<&str>,
    ) -> Result<Option<SyncedData>, Error> {
        let k = SyncTarget {
            connection_id: connection.clone(),
            location_id: location.to_string(),
            attribute_type: attribute_type.to_string(),
            resource_id: resource.map(str::to_string),
        };
        Ok(ev_lock(&self.events).synced.get(&k).map(|(d, _)| d.clone()))
    }

    async fn put_location_status(&self, s: &LocationStatus) -> Result<bool, Error> {
        let conns = self.lock();
        EventState::live(
            &conns.connections,
            &s.connection_id,
            s.connection_gen.as_deref(),
        )?;
        let mut g = ev_lock(&self.events);
        let k = (s.connection_id.clone(), s.location_id.clone());
        if g.statuses.get(&k).is_some_and(|old| old.seq > s.seq) {
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
