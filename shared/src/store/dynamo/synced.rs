//! A target's synced data: a head item, and chunk items when the data is
//! larger than one item holds.
//!
//! Chunks are written one small request at a time, never as one
//! transaction of megabytes: the SDK holds such a request several times
//! over while it serialises and sends it, which made the largest allowed
//! fetch peak at over five times its size (tests/tests/fetch_memory.rs).
//! So each write has a generation (`gen`, random): its chunks are staged
//! under keys of their own with a one-day `ttl`, and a small transaction
//! then commits the head (naming the generation and how many chunks), makes
//! the staged chunks permanent and deletes the previous generation's. A
//! reader follows the head to its generation, so it never sees a mix of
//! two fetches; a write that dies before its commit leaves only staged
//! chunks, which expire.
//!
//! Items written before generations existed (a head without `gen`, chunks
//! under `CHUNK#<attr>#<resource>#<nnn>`) are read as they are and replaced
//! by the next write like any other generation.
//!
//! Every commit also takes the next place in the user's data log
//! ([`crate::store::datalog`]): the log's counter, conditional on the number
//! read with the head, its new entry, and the deletion of the target's
//! previous entry are steps of the same transaction.

use super::item::*;
use super::items::{read_owned, ChunkItem, HeadItem, LogCounterItem, LogEntryItem};
use super::tx::Tx;
use super::DynamoStore;
use crate::error::Error;
use crate::model::{ConnectionId, UserId};
use crate::store::keys::{chunk_sk, data_log_entry_sk, data_log_pk, data_sk, sync_pk, DATA_LOG_SK};
use crate::store::{SyncTarget, SyncedData};
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;
use std::time::Duration;

/// Synced data larger than this is split over chunk items (a DynamoDB item
/// holds 400 KB).
const CHUNK_BYTES: usize = 300 * 1024;

/// Staged chunks not committed within this long are swept by DynamoDB.
const STAGED_KEEP_SECS: i64 = 86_400;

/// Chunk puts in flight at once: a few for speed, few enough that memory
/// stays near one chunk each.
const STAGE_CONCURRENCY: usize = 3;

/// Commit attempts when other writes replace the head, or take the user's
/// next log number, between our read and our commit: the targets of one
/// user stored at once take turns, one per round.
const COMMIT_ATTEMPTS: u32 = 12;

/// `data` in pieces of at most [`CHUNK_BYTES`], cut at char boundaries.
fn chunks(data: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() > CHUNK_BYTES {
        let mut cut = CHUNK_BYTES;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, tail) = rest.split_at(cut);
        out.push(head);
        rest = tail;
    }
    out.push(rest);
    out
}

/// What a head says about its generation and its place in the log (its
/// data is not read: the item is taken by value and dropped).
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Generation {
    /// `None`: written before generations (legacy chunk keys).
    gen: Option<String>,
    #[serde(default)]
    chunks: usize,
    #[serde(default)]
    fetched_at_ms: i64,
    user: Option<String>,
    log_seq: Option<u64>,
}

/// Where one target's items live.
pub(super) struct Place<'a> {
    pk: String,
    attribute_type: &'a str,
    resource: Option<&'a str>,
}

impl<'a> Place<'a> {
    pub(super) fn of(t: &'a SyncTarget) -> Self {
        Self {
            pk: sync_pk(&t.connection_id, &t.location_id),
            attribute_type: &t.attribute_type,
            resource: t.resource_id.as_deref(),
        }
    }
    fn head(&self) -> Item {
        key(
            self.pk.clone(),
            &data_sk(self.attribute_type, self.resource),
        )
    }
    fn chunk(&self, gen: Option<&str>, i: usize) -> Item {
        key(
            self.pk.clone(),
            &chunk_sk(self.attribute_type, self.resource, gen, i),
        )
    }
}

/// The steps of a write's commit.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Commit {
    /// The head, guarded by the generation read before.
    Head,
    /// The user's log counter, guarded by the number read before.
    Log,
    /// The target's new log entry.
    Entry,
    /// The target's previous log entry deleted.
    Unlog,
    /// A staged chunk of the new generation made permanent.
    Keep,
    /// A chunk of the replaced generation deleted.
    Drop,
    /// The connection is still the generation the fetch began under.
    Connection,
}

/// One commit's new generation.
struct NewHead<'a> {
    d: &'a SyncedData,
    gen: &'a str,
    /// Chunk items staged for it; 0: the data is in the head.
    chunks: usize,
}

/// The last number a user's data log counter (as read) has given out;
/// `None`: no log yet.
pub(super) fn log_seq(counter: Option<Item>) -> Result<Option<u64>, Error> {
    counter
        .map(|i| {
            read_owned::<LogCounterItem>(i)
                .map(|c| c.seq)
                .ok_or_else(|| Error::corrupt("a data log counter is malformed"))
        })
        .transpose()
}

/// A pause before commit attempt `attempt` (from 1): random, growing, so
/// writers that collided do not collide again.
fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let cap_ms = (5u64 << attempt.min(5)).min(150);
    Duration::from_millis(rand::rng().random_range(0..=cap_ms))
}

impl DynamoStore {
    /// Stores `d` unless a later fetch is stored (`Ok(false)`).
    pub(super) async fn write_synced(&self, d: &SyncedData) -> Result<bool, Error> {
        let place = Place::of(&d.target);
        let gen = crate::crypto::random_b64(6);
        let parts = chunks(&d.data);
        let staged = if parts.len() > 1 {
            self.stage_chunks(&place, &gen, &parts, d.fetched_at_ms)
                .await?;
            parts.len()
        } else {
            0
        };
        drop(parts);
        let new = NewHead {
            d,
            gen: &gen,
            chunks: staged,
        };
        let log_key = key(data_log_pk(&d.user), DATA_LOG_SK);
        for attempt in 0..COMMIT_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let (old, counter) = tokio::try_join!(
                self.get_consistent(place.head()),
                self.get_consistent(log_key.clone())
            )?;
            let old: Option<Generation> = match old {
                None => None,
                Some(i) => Some(
                    read_owned(i)
                        .ok_or_else(|| Error::corrupt("a synced data head is malformed"))?,
                ),
            };
            if old
                .as_ref()
                .is_some_and(|o| o.fetched_at_ms > d.fetched_at_ms)
            {
                // A later fetch is stored: ours is dropped (its staged
                // chunks expire; deleting them now is only tidier).
                self.delete_chunks(&place, Some(&gen), staged).await;
                return Ok(false);
            }
            let seq = log_seq(counter)?;
            // The two reads are not one snapshot: a write committed between
            // them shows in the head but not in the counter read first. The
            // counter covers every place it gave, so read both again.
            if old
                .as_ref()
                .and_then(|o| o.log_seq)
                .is_some_and(|at| at > seq.unwrap_or(0))
            {
                continue;
            }
            let tx = self.commit_steps(&place, &new, old.as_ref(), seq)?;
            match self.run(tx).await? {
                Ok(()) => return Ok(true),
                // The head or the log moved since we read them: again.
                Err(c) if c.any_failed(&[Commit::Head, Commit::Log]) => continue,
                Err(c) if c.failed(Commit::Connection).is_some() => {
                    self.delete_chunks(&place, Some(&gen), staged).await;
                    return Err(crate::store::sync::connection_ended());
                }
                Err(c) => return Err(c.unexpected("synced data")),
            }
        }
        Err(Error::Unavailable(
            "synced data: the head or the user's data log kept changing under concurrent writes"
                .into(),
        ))
    }

    /// Writes each chunk as its own item, staged (with a `ttl`) until the
    /// commit makes it permanent.
    async fn stage_chunks(
        &self,
        place: &Place<'_>,
        gen: &str,
        parts: &[&str],
        fetched_at_ms: i64,
    ) -> Result<(), Error> {
        let expires = self.ttl(fetched_at_ms / 1000 + STAGED_KEEP_SECS);
        // By index: a closure over borrowed items is not `Send` for every
        // lifetime, as the trait's boxed future needs.
        futures_util::stream::iter(0..parts.len())
            .map(|i| {
                let mut c = place.chunk(Some(gen), i);
                c.insert("data".into(), s(parts[i]));
                c.insert("fetched_at_ms".into(), n(fetched_at_ms));
                c.insert("ttl".into(), expires.clone());
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(c))
                    .send()
            })
            .buffer_unordered(STAGE_CONCURRENCY)
            .map_err(|e| store_err("PutItem", e))
            .try_for_each(|_| async { Ok(()) })
            .await
    }

    /// The commit: the head, on condition that it is still the one read
    /// (`old`); the user's log counter, on condition that it is still
    /// `seq` (`None`: no log yet), and the target's entry moved to the
    /// counter's next number; each staged chunk made permanent; the old
    /// generation's chunks deleted. At most 4 + 2 x 11 steps (3 MB in
    /// 300 KB chunks).
    fn commit_steps(
        &self,
        place: &Place<'_>,
        new: &NewHead<'_>,
        old: Option<&Generation>,
        seq: Option<u64>,
    ) -> Result<Tx<Commit>, Error> {
        let next = seq.unwrap_or(0) + 1;
        let mut tx = Tx::new()
            .step(Commit::Head, self.head_step(place, new, old, next)?)
            .step(Commit::Log, self.counter_step(&new.d.user, seq)?);
        if let Some(gen) = &new.d.connection_gen {
            let check = self.connection_live(&new.d.target.connection_id, gen)?;
            tx = tx.step(Commit::Connection, check);
        }
        let entry = LogEntryItem {
            pk: data_log_pk(&new.d.user),
            sk: data_log_entry_sk(next),
            seq: next,
            conn: new.d.target.connection_id.to_string(),
            location: new.d.target.location_id.clone(),
            attr: new.d.target.attribute_type.clone(),
            resource: new.d.target.resource_id.clone(),
        };
        tx = tx.step(Commit::Entry, self.put(super::items::write(&entry), None)?);
        if let Some(Generation {
            user: Some(user),
            log_seq: Some(at),
            ..
        }) = old
        {
            let user = UserId::parse(user)
                .map_err(|_| Error::corrupt("a synced data head names a malformed user"))?;
            let del = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(data_log_pk(&user), &data_log_entry_sk(*at))))
                .build()
                .map_err(build_err)?;
            tx = tx.step(
                Commit::Unlog,
                TransactWriteItem::builder().delete(del).build(),
            );
        }
        for i in 0..new.chunks {
            let keep = Update::builder()
                .table_name(&self.table)
                .set_key(Some(place.chunk(Some(new.gen), i)))
                .update_expression("REMOVE #ttl")
                .condition_expression("attribute_exists(#pk)")
                .set_expression_attribute_names(names(&["ttl", "pk"]))
                .build()
                .map_err(build_err)?;
            tx = tx.step(
                Commit::Keep,
                TransactWriteItem::builder().update(keep).build(),
            );
        }
        if let Some(old) = old {
            for i in 0..old.chunks {
                let del = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(place.chunk(old.gen.as_deref(), i)))
                    .build()
                    .map_err(build_err)?;
                tx = tx.step(
                    Commit::Drop,
                    TransactWriteItem::builder().delete(del).build(),
                );
            }
        }
        Ok(tx)
    }

    /// The new head, on condition that the head is still `old`.
    fn head_step(
        &self,
        place: &Place<'_>,
        new: &NewHead<'_>,
        old: Option<&Generation>,
        log_seq: u64,
    ) -> Result<TransactWriteItem, Error> {
        let d = new.d;
        let inline = new.chunks == 0;
        let head = HeadItem {
            pk: place.pk.clone(),
            sk: data_sk(place.attribute_type, place.resource),
            gen: Some(new.gen.to_string()),
            chunks: (!inline).then_some(new.chunks as u64),
            data: inline.then(|| d.data.clone()),
            pages: d.pages,
            fetched_at_ms: d.fetched_at_ms,
            event_id: d.event_id.clone(),
            deleted: d.deleted,
            user: Some(d.user.to_string()),
            log_seq: Some(log_seq),
            stored_at_ms: Some(d.stored_at_ms),
        };
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(super::items::write(&head)));
        // Still the head read: its generation (or, before generations, its
        // fetch time) and its place in the log (a backfill may have given
        // it one since).
        let (condition, attrs): (String, &[&str]) = match old {
            None => ("attribute_not_exists(#pk)".into(), &["pk"]),
            Some(o) => {
                let generation = match &o.gen {
                    Some(g) => {
                        put = put.expression_attribute_values(":old_gen", s(g));
                        "#gen = :old_gen"
                    }
                    None => {
                        put = put.expression_attribute_values(":old_at", n(o.fetched_at_ms));
                        "attribute_not_exists(#gen) AND #fetched_at_ms = :old_at"
                    }
                };
                let place = match o.log_seq {
                    Some(at) => {
                        put = put.expression_attribute_values(":old_seq", n(at as i64));
                        "#log_seq = :old_seq"
                    }
                    None => "attribute_not_exists(#log_seq)",
                };
                let attrs: &[&str] = match o.gen {
                    Some(_) => &["gen", "log_seq"],
                    None => &["gen", "fetched_at_ms", "log_seq"],
                };
                (format!("{generation} AND {place}"), attrs)
            }
        };
        let put = put
            .condition_expression(condition)
            .set_expression_attribute_names(names(attrs));
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(build_err)?)
            .build())
    }

    /// The user's log counter to `seq + 1`, on condition that it is still
    /// `seq` (`None`: not written yet, so it gets its epoch now).
    pub(super) fn counter_step(
        &self,
        user: &UserId,
        seq: Option<u64>,
    ) -> Result<TransactWriteItem, Error> {
        let next = seq.unwrap_or(0) + 1;
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(data_log_pk(user), DATA_LOG_SK)))
            .update_expression("SET #seq = :next, #epoch = if_not_exists(#epoch, :epoch)")
            .expression_attribute_values(":next", n(next as i64))
            .expression_attribute_values(":epoch", s(crate::crypto::random_b64(6)));
        let update = match seq {
            None => update
                .condition_expression("attribute_not_exists(#pk)")
                .set_expression_attribute_names(names(&["seq", "epoch", "pk"])),
            Some(cur) => update
                .condition_expression("#seq = :cur")
                .set_expression_attribute_names(names(&["seq", "epoch"]))
                .expression_attribute_values(":cur", n(cur as i64)),
        };
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(build_err)?)
            .build())
    }

    /// Deletes a generation's chunks. No head names them any more, so a
    /// reader never sees them; one left by a failed delete is only storage,
    /// and is logged.
    async fn delete_chunks(&self, place: &Place<'_>, gen: Option<&str>, count: usize) {
        let deletes = (0..count).map(|i| {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(place.chunk(gen, i)))
                .send()
        });
        if let Err(e) = futures_util::future::try_join_all(deletes).await {
            tracing::error!(error = %store_err("DeleteItem", e), "chunks of an earlier fetch not deleted");
        }
    }

    /// The synced data of a target, head and chunks, with its place in its
    /// user's log (`None`: stored before the log), or `None`.
    pub(super) async fn read_synced(
        &self,
        target: &SyncTarget,
    ) -> Result<Option<(SyncedData, Option<u64>)>, Error> {
        let place = Place::of(target);
        let Some(item) = self.get_consistent(place.head()).await? else {
            return Ok(None);
        };
        let head: HeadItem =
            read_owned(item).ok_or_else(|| Error::corrupt("a synced data head is malformed"))?;
        let data = match (head.chunks, head.data) {
            (None, data) => data.unwrap_or_else(|| "[]".into()),
            (Some(count), _) => {
                self.read_chunks(
                    &place,
                    head.gen.as_deref(),
                    count as usize,
                    head.fetched_at_ms,
                )
                .await?
            }
        };
        let user = match head.user {
            Some(u) => UserId::parse(&u)
                .map_err(|_| Error::corrupt("a synced data head names a malformed user"))?,
            // Stored before the log: the connection names its user.
            None => self.user_of(&target.connection_id).await?,
        };
        let synced = SyncedData {
            target: target.clone(),
            user,
            data,
            pages: head.pages,
            fetched_at_ms: head.fetched_at_ms,
            stored_at_ms: head.stored_at_ms.unwrap_or(head.fetched_at_ms),
            event_id: head.event_id,
            deleted: head.deleted,
            connection_gen: None,
        };
        Ok(Some((synced, head.log_seq)))
    }

    /// A generation's chunks, joined; an error when a later write replaced
    /// the generation between our reads.
    async fn read_chunks(
        &self,
        place: &Place<'_>,
        gen: Option<&str>,
        count: usize,
        fetched_at_ms: i64,
    ) -> Result<String, Error> {
        let reads = (0..count).map(|i| self.get_consistent(place.chunk(gen, i)));
        let parts = futures_util::future::try_join_all(reads).await?;
        let mut data = String::new();
        for part in parts {
            match part.and_then(read_owned::<ChunkItem>) {
                Some(c) if c.fetched_at_ms == fetched_at_ms => data.push_str(&c.data),
                _ => {
                    return Err(Error::Unavailable(
                        "synced data changed while being read: read again".into(),
                    ))
                }
            }
        }
        Ok(data)
    }

    /// The user a connection belongs to (data stored before the log).
    pub(super) async fn user_of(&self, connection: &ConnectionId) -> Result<UserId, Error> {
        use crate::store::GrantStore;
        match self.get_connection(connection).await? {
            Some(c) => Ok(c.user_id),
            None => Err(Error::corrupt(format!(
                "synced data of connection {connection}, which is not stored"
            ))),
        }
    }
}
