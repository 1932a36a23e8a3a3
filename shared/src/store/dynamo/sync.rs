//! Webhook events, synced data and location status.

use super::grants::{hook_sk, hooks_pk};
use super::item::*;
use super::items::{read, write, EventItem, FetchState, NoteItem, NoteState, StatusItem};
use super::tx::Tx;
use super::DynamoStore;
use crate::error::Error;
use crate::model::{ConnectionId, UserId};
use crate::store::datalog::{DataPage, DataRead};
use crate::store::keys::{
    self, event_id_of, event_pk, owned_pk, owned_sk, sync_pk, EVENT_SK, NOTE_SK, STATE_SK,
    STATUS_SK,
};
use crate::store::{
    EventRecord, EventStatus, EventStore, GiveUp, LocationStatus, SyncTarget, SyncedData,
    TargetNote, TargetState,
};
use crate::webhook::WebhookType;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, ReturnValue, TransactWriteItem};

/// The steps of a status written for a connection generation.
#[derive(Debug, Clone, Copy, PartialEq)]
enum StatusStep {
    Put,
    Connection,
}

/// Webhook events are kept this long (replays within it are recognised).
const EVENT_KEEP_SECS: i64 = 30 * 86_400;

fn target_pk(t: &SyncTarget) -> String {
    keys::target_pk(&t.id())
}

/// The target a `NOTE` item (a read, or a stream record's `NewImage`)
/// belongs to; `None` for any other item.
pub fn target_from(item: &Item) -> Option<SyncTarget> {
    let i: NoteItem = read(item)?;
    (keys::is_target_pk(&i.pk) && i.sk == NOTE_SK).then_some(())?;
    Some(SyncTarget {
        connection_id: ConnectionId::parse(&i.conn).ok()?,
        location_id: i.location,
        attribute_type: i.attr,
        resource_id: i.resource,
    })
}

/// A webhook event from its item (a read, or a stream record's `NewImage`);
/// `None` for any other item.
pub fn event_from(item: &Item) -> Option<EventRecord> {
    let i: EventItem = read(item)?;
    Some(EventRecord {
        id: event_id_of(&i.pk)?.to_string(),
        connection_id: ConnectionId::parse(&i.conn).ok()?,
        webhook_type: WebhookType::parse(&i.webhook_type)?,
        location_id: i.location,
        payload: i.payload,
        received_at_ms: i.received_at_ms,
        status: EventStatus::parse(&i.status)?,
        attempts: i.attempts,
        error: i.error,
    })
}

/// The event item for `e`: also what the stream delivers to the worker.
/// `ttl_shift` as in [`DynamoStore::with_ttl_shift`].
pub fn event_item(e: &EventRecord, ttl_shift: i64) -> Item {
    write(&EventItem {
        pk: event_pk(&e.id),
        sk: EVENT_SK.into(),
        conn: e.connection_id.as_str().into(),
        webhook_type: e.webhook_type.as_str().into(),
        location: e.location_id.clone(),
        payload: e.payload.clone(),
        received_at_ms: e.received_at_ms,
        status: e.status.as_str().into(),
        attempts: e.attempts,
        // Recorded pending; an error is written when it is given up.
        error: None,
        ttl: Some(e.received_at_ms / 1000 + EVENT_KEEP_SECS + ttl_shift),
        // The connection's webhooks by time (its last webhook, in one query).
        gsi1pk: Some(hooks_pk(&e.connection_id)),
        gsi1sk: Some(hook_sk(e.received_at_ms)),
    })
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn notify_target(&self, note: &TargetNote) -> Result<(), Error> {
        let t = &note.target;
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(target_pk(t), NOTE_SK)))
            .expression_attribute_values(":conn", s(t.connection_id.as_str()))
            .expression_attribute_values(":loc", s(&t.location_id))
            .expression_attribute_values(":attr", s(&t.attribute_type))
            .expression_attribute_values(":p", s(&note.payload))
            .expression_attribute_values(":at", n(note.notified_at_ms))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(
                ":ttl",
                n(note.notified_at_ms / 1000 + EVENT_KEEP_SECS + self.ttl_shift),
            );
        let mut set = "SET #conn = :conn, #location = :loc, #attr = :attr, #payload = :p, \
                       #notified_at_ms = :at, #ttl = :ttl, #gsi1pk = :hooks, #gsi1sk = :hook_at"
            .to_string();
        req = req
            .expression_attribute_values(":hooks", s(hooks_pk(&t.connection_id)))
            .expression_attribute_values(":hook_at", s(hook_sk(note.notified_at_ms)));
        let mut attrs = vec![
            "gsi1pk",
            "gsi1sk",
            "conn",
            "location",
            "attr",
            "payload",
            "notified_at_ms",
            "ttl",
            "notifications",
        ];
        if let Some(r) = &t.resource_id {
            set.push_str(", #resource = :res");
            attrs.push("resource");
            req = req.expression_attribute_values(":res", s(r));
        }
        req.update_expression(format!("{set} ADD #notifications :one"))
            .set_expression_attribute_names(names(&attrs))
            .send()
            .await
            .map_err(|e| store_err("UpdateItem", e))?;
        Ok(())
    }

    async fn get_target(&self, t: &SyncTarget) -> Result<Option<TargetState>, Error> {
        // Both items in one consistent read of the partition.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .set_expression_attribute_names(names(&["pk"]))
            .expression_attribute_values(":pk", s(target_pk(t)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_err("Query", e))?;
        target_state(t, out.items())
    }

    async fn forget_target(&self, t: &SyncTarget) -> Result<(), Error> {
        let delete = |sk: &'static str| {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(target_pk(t), sk)))
                .send()
        };
        let (a, b) = tokio::join!(delete(NOTE_SK), delete(STATE_SK));
        a.map_err(|e| store_err("DeleteItem", e))?;
        b.map_err(|e| store_err("DeleteItem", e))?;
        Ok(())
    }

    async fn connection_targets(
        &self,
        connection: &ConnectionId,
    ) -> Result<Vec<TargetState>, Error> {
        let notes = self.hook_keys(connection).await?;
        let mut all = Vec::new();
        // The index is eventually consistent: a key found there is read
        // from the table (a target gone since is left out).
        for keys in notes.chunks(50) {
            let mut wanted = Vec::new();
            for k in keys {
                wanted.push(key(k.clone(), NOTE_SK));
                wanted.push(key(k.clone(), STATE_SK));
            }
            let items = self.batch_get_consistent(wanted).await?;
            for pk in keys {
                let mine: Vec<Item> = items
                    .iter()
                    .filter(|i| get_s(i, "pk") == Some(pk.as_str()))
                    .cloned()
                    .collect();
                let Some(note) = mine.iter().find(|i| get_s(i, "sk") == Some(NOTE_SK)) else {
                    continue;
                };
                let target = target_from(note)
                    .ok_or_else(|| Error::corrupt(format!("target item {pk} is malformed")))?;
                all.extend(target_state(&target, &mine)?);
            }
        }
        all.sort_by_key(|t| t.target.id());
        Ok(all)
    }

    async fn start_fetch(&self, t: &SyncTarget) -> Result<u32, Error> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(target_pk(t), STATE_SK)))
            // Indexed under its connection: erasure finds it without its
            // note (whose ttl may have passed).
            .update_expression("SET #gsi1pk = :owned, #gsi1sk = :self ADD #attempts :one")
            .set_expression_attribute_names(names(&["attempts", "gsi1pk", "gsi1sk"]))
            .expression_attribute_values(":owned", s(owned_pk(&t.connection_id)))
            .expression_attribute_values(":self", s(owned_sk(&target_pk(t), STATE_SK)))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| store_err("UpdateItem", e))?;
        Ok(out
            .attributes()
            .and_then(|a| get_n(a, "attempts"))
            .unwrap_or(1) as u32)
    }

    async fn fetch_done(&self, t: &SyncTarget, started_ms: i64, through: u64) -> Result<(), Error> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(target_pk(t), STATE_SK)))
            .update_expression(
                "SET #fetch_started_ms = :s, #fetched_through = :c, #attempts = :zero REMOVE #error",
            )
            // Its fetch began with `start_fetch`, which wrote the item: one
            // gone since was erased, and is not written again.
            .condition_expression(
                "attribute_exists(#pk) AND (attribute_not_exists(#fetched_through) OR #fetched_through < :c)",
            )
            .set_expression_attribute_names(names(&[
                "pk",
                "fetch_started_ms",
                "fetched_through",
                "attempts",
                "error",
            ]))
            .expression_attribute_values(":s", n(started_ms))
            .expression_attribute_values(":c", n(through as i64))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        // Not written: a fetch covering as much or more is recorded already.
        conditional(res, "UpdateItem").map(|_| ())
    }

    async fn give_up(&self, t: &SyncTarget, up: &GiveUp<'_>) -> Result<(), Error> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(target_pk(t), STATE_SK)))
            .update_expression(
                "SET #given_up_through = :g, #attempts = :zero, #error = :e, \
                 #failed_at_ms = :at, #failed_attempts = :tries",
            )
            // As in `fetch_done`: an erased target is not written again.
            .condition_expression("attribute_exists(#pk)")
            .set_expression_attribute_names(names(&[
                "pk",
                "given_up_through",
                "attempts",
                "error",
                "failed_at_ms",
                "failed_attempts",
            ]))
            .expression_attribute_values(":g", n(up.through as i64))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":e", s(up.reason))
            .expression_attribute_values(":at", n(up.at_ms))
            .expression_attribute_values(":tries", n(i64::from(up.attempts)))
            .send()
            .await;
        conditional(res, "UpdateItem").map(|_| ())
    }

    async fn record_event(&self, e: &EventRecord) -> Result<bool, Error> {
        self.put_if(
            event_item(e, self.ttl_shift),
            "attribute_not_exists(#pk)",
            &["pk"],
            vec![],
        )
        .await
    }

    async fn get_event(&self, id: &str) -> Result<Option<EventRecord>, Error> {
        let item = self.get_consistent(key(event_pk(id), EVENT_SK)).await?;
        Ok(item.as_ref().and_then(event_from))
    }

    async fn start_attempt(&self, id: &str) -> Result<Option<u32>, Error> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(event_pk(id), EVENT_SK)))
            .update_expression("ADD #attempts :one")
            .condition_expression("attribute_exists(#pk) AND #status = :pending")
            .set_expression_attribute_names(names(&["attempts", "pk", "status"]))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":pending", s(EventStatus::Pending.as_str()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match res {
            Ok(out) => Ok(out
                .attributes()
                .and_then(|a| get_n(a, "attempts"))
                .map(|n| n as u32)),
            Err(e) if is_ccf(&e) => Ok(None),
            Err(e) => Err(store_err("UpdateItem", e)),
        }
    }

    async fn finish_event(
        &self,
        id: &str,
        status: EventStatus,
        error: Option<&str>,
    ) -> Result<(), Error> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(event_pk(id), EVENT_SK)))
            .expression_attribute_values(":st", s(status.as_str()));
        req = match error {
            Some(err) => req
                .update_expression("SET #status = :st, #error = :err")
                .set_expression_attribute_names(names(&["status", "error"]))
                .expression_attribute_values(":err", s(err)),
            None => req
                .update_expression("SET #status = :st REMOVE #error")
                .set_expression_attribute_names(names(&["status", "error"])),
        };
        req.send().await.map_err(|e| store_err("UpdateItem", e))?;
        Ok(())
    }

    async fn put_synced(&self, d: &SyncedData) -> Result<bool, Error> {
        self.write_synced(d).await
    }

    async fn read_data(&self, user: &UserId, read: &DataRead) -> Result<DataPage, Error> {
        self.read_log(user, read).await
    }

    async fn get_synced(
        &self,
        connection: &ConnectionId,
        location: &str,
        attribute_type: &str,
        resource: Option<&str>,
    ) -> Result<Option<SyncedData>, Error> {
        let target = SyncTarget {
            connection_id: connection.clone(),
            location_id: location.to_string(),
            attribute_type: attribute_type.to_string(),
            resource_id: resource.map(str::to_string),
        };
        Ok(self.read_synced(&target).await?.map(|(d, _)| d))
    }

    async fn put_location_status(&self, st: &LocationStatus) -> Result<bool, Error> {
        let pk = sync_pk(&st.connection_id, &st.location_id);
        let mut item = key(pk.clone(), STATUS_SK);
        item.insert("meta".into(), s(&st.meta));
        item.insert("received_at_ms".into(), n(st.received_at_ms));
        item.insert("event_id".into(), s(&st.event_id));
        item.insert("seq".into(), n(st.seq as i64));
        // Found by erasure under its connection.
        item.insert("gsi1pk".into(), s(owned_pk(&st.connection_id)));
        item.insert("gsi1sk".into(), s(owned_sk(&pk, STATUS_SK)));
        // Ordered by the status target's notification count; a status
        // stored before statuses had one is older than any that has. The
        // same number again is the same status applied again (a retry
        // after its change event failed): applied, so it is announced.
        const LATER: &str =
            "attribute_not_exists(#pk) OR attribute_not_exists(#seq) OR #seq <= :seq";
        let Some(gen) = &st.connection_gen else {
            return self
                .put_if(
                    item,
                    LATER,
                    &["pk", "seq"],
                    vec![(":seq", n(st.seq as i64))],
                )
                .await;
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(LATER)
            .set_expression_attribute_names(names(&["pk", "seq"]))
            .expression_attribute_values(":seq", n(st.seq as i64))
            .build()
            .map_err(build_err)?;
        let tx = Tx::new()
            .step(
                StatusStep::Put,
                TransactWriteItem::builder().put(put).build(),
            )
            .step(
                StatusStep::Connection,
                self.connection_live(&st.connection_id, gen)?,
            );
        match self.run(tx).await? {
            Ok(()) => Ok(true),
            Err(c) if c.failed(StatusStep::Connection).is_some() => {
                Err(crate::store::sync::connection_ended())
            }
            Err(c) if c.failed(StatusStep::Put).is_some() => Ok(false),
            Err(c) => Err(c.unexpected("location status")),
        }
    }

    async fn get_location_status(
        &self,
        connection: &ConnectionId,
        location: &str,
    ) -> Result<Option<LocationStatus>, Error> {
        let item = self
            .get_consistent(key(sync_pk(connection, location), STATUS_SK))
            .await?;
        let Some(item) = item.as_ref() else {
            return Ok(None);
        };
        let i: StatusItem = read(item).ok_or_else(|| {
            Error::corrupt(format!("status item of location {location} is malformed"))
        })?;
        Ok(Some(LocationStatus {
            connection_id: connection.clone(),
            location_id: location.to_string(),
            meta: i.meta,
            received_at_ms: i.received_at_ms,
            event_id: i.event_id,
            seq: u64::try_from(i.seq).unwrap_or(0),
            connection_gen: None,
        }))
    }
}

/// A target's state from its partition's items (`NOTE`, and `STATE` once
/// the worker wrote it); `None` without a note.
fn target_state(t: &SyncTarget, items: &[Item]) -> Result<Option<TargetState>, Error> {
    let find = |sk: &str| items.iter().find(|i| get_s(i, "sk") == Some(sk));
    let Some(note) = find(NOTE_SK) else {
        return Ok(None);
    };
    let malformed = || Error::corrupt(format!("target item {} is malformed", t.id()));
    let note: NoteState = read(note).ok_or_else(malformed)?;
    let state: Option<FetchState> = match find(STATE_SK) {
        Some(i) => Some(read(i).ok_or_else(malformed)?),
        None => None,
    };
    let state = state.as_ref();
    Ok(Some(TargetState {
        target: t.clone(),
        payload: note.payload,
        notified_at_ms: note.notified_at_ms,
        notifications: note.notifications,
        fetch_started_ms: state.and_then(|s| s.fetch_started_ms),
        fetched_through: state.and_then(|s| s.fetched_through),
        given_up_through: state.and_then(|s| s.given_up_through),
        attempts: state.map_or(0, |s| s.attempts),
        error: state.and_then(|s| s.error.clone()),
        failed_at_ms: state.and_then(|s| s.failed_at_ms),
        failed_attempts: state.and_then(|s| s.failed_attempts),
    }))
}
