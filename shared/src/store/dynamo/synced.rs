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

use super::item::*;
use super::tx::Tx;
use super::DynamoStore;
use crate::error::Error;
use crate::model::ConnectionId;
use crate::store::keys::{chunk_sk, data_sk, sync_pk};
use crate::store::{SyncTarget, SyncedData};
use aws_sdk_dynamodb::types::{Delete, Put, ReturnValue, TransactWriteItem, Update};
use futures_util::{StreamExt, TryStreamExt};

/// Synced data larger than this is split over chunk items (a DynamoDB item
/// holds 400 KB).
const CHUNK_BYTES: usize = 300 * 1024;

/// Staged chunks not committed within this long are swept by DynamoDB.
const STAGED_KEEP_SECS: i64 = 86_400;

/// Chunk puts in flight at once: a few for speed, few enough that memory
/// stays near one chunk each.
const STAGE_CONCURRENCY: usize = 3;

/// Commit attempts when other writes of the same target keep replacing the
/// head between our read and our commit.
const COMMIT_ATTEMPTS: usize = 5;

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

/// What a head says about the chunks of its generation.
#[derive(Debug, Clone, PartialEq)]
struct Generation {
    /// `None`: written before generations (legacy chunk keys).
    gen: Option<String>,
    chunks: usize,
    fetched_at_ms: i64,
}

impl Generation {
    fn of(head: &Item) -> Self {
        Self {
            gen: get_s(head, "gen").map(str::to_string),
            chunks: get_n(head, "chunks").unwrap_or(0).max(0) as usize,
            fetched_at_ms: get_n(head, "fetched_at_ms").unwrap_or(0),
        }
    }
}

/// Where one target's items live.
struct Place<'a> {
    pk: String,
    attribute_type: &'a str,
    resource: Option<&'a str>,
}

impl Place<'_> {
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

/// The steps of a large write's commit.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Commit {
    /// The head, guarded by the generation read before.
    Head,
    /// A staged chunk of the new generation made permanent.
    Keep,
    /// A chunk of the replaced generation deleted.
    Drop,
}

impl DynamoStore {
    /// Stores `d` unless a later fetch is stored (`Ok(false)`).
    pub(super) async fn write_synced(&self, d: &SyncedData) -> Result<bool, Error> {
        let place = Place {
            pk: sync_pk(&d.target.connection_id, &d.target.location_id),
            attribute_type: &d.target.attribute_type,
            resource: d.target.resource_id.as_deref(),
        };
        let gen = crate::crypto::random_b64(6);
        let mut head = place.head();
        head.insert("gen".into(), s(&gen));
        head.insert("pages".into(), n(d.pages as i64));
        head.insert("fetched_at_ms".into(), n(d.fetched_at_ms));
        head.insert("event_id".into(), s(&d.event_id));
        if d.deleted {
            head.insert(
                "deleted".into(),
                aws_sdk_dynamodb::types::AttributeValue::Bool(true),
            );
        }
        let parts = chunks(&d.data);
        if parts.len() == 1 {
            head.insert("data".into(), s(&d.data));
            return self.put_head_alone(&place, head, d.fetched_at_ms).await;
        }
        head.insert("chunks".into(), n(parts.len() as i64));
        self.stage_chunks(&place, &gen, &parts, d.fetched_at_ms)
            .await?;
        for _ in 0..COMMIT_ATTEMPTS {
            let old = self.get_consistent(place.head()).await?;
            let old = old.as_ref().map(Generation::of);
            if old
                .as_ref()
                .is_some_and(|o| o.fetched_at_ms > d.fetched_at_ms)
            {
                // A later fetch is stored: ours is dropped (its staged
                // chunks expire; deleting them now is only tidier).
                self.delete_chunks(&place, Some(&gen), parts.len()).await;
                return Ok(false);
            }
            let tx = self.commit_steps(&place, head.clone(), &gen, parts.len(), old.as_ref())?;
            match self.run(tx).await? {
                Ok(()) => return Ok(true),
                // The head changed since we read it: read it again.
                Err(c) if c.failed(Commit::Head).is_some() => continue,
                Err(c) => return Err(c.unexpected("synced data")),
            }
        }
        Err(Error::Unavailable(
            "synced data: the head kept changing under concurrent writes".into(),
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
    /// (`old`); each staged chunk made permanent; the old generation's
    /// chunks deleted. At most 1 + 2 x 11 steps (3 MB in 300 KB chunks).
    fn commit_steps(
        &self,
        place: &Place<'_>,
        head: Item,
        gen: &str,
        count: usize,
        old: Option<&Generation>,
    ) -> Result<Tx<Commit>, Error> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(head));
        put = match old {
            None => put
                .condition_expression("attribute_not_exists(#pk)")
                .set_expression_attribute_names(names(&["pk"])),
            Some(Generation { gen: Some(g), .. }) => put
                .condition_expression("#gen = :old_gen")
                .set_expression_attribute_names(names(&["gen"]))
                .expression_attribute_values(":old_gen", s(g)),
            Some(Generation {
                gen: None,
                fetched_at_ms,
                ..
            }) => put
                .condition_expression("attribute_not_exists(#gen) AND #fetched_at_ms = :old_at")
                .set_expression_attribute_names(names(&["gen", "fetched_at_ms"]))
                .expression_attribute_values(":old_at", n(*fetched_at_ms)),
        };
        let mut tx = Tx::new().step(
            Commit::Head,
            TransactWriteItem::builder()
                .put(put.build().map_err(build_err)?)
                .build(),
        );
        for i in 0..count {
            let keep = Update::builder()
                .table_name(&self.table)
                .set_key(Some(place.chunk(Some(gen), i)))
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

    /// Stores data that fits its head item; the chunks of the generation it
    /// replaces (the old head names them) are deleted after. `Ok(false)`: a
    /// later fetch is stored.
    async fn put_head_alone(
        &self,
        place: &Place<'_>,
        head: Item,
        fetched_at_ms: i64,
    ) -> Result<bool, Error> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(head))
            .condition_expression("attribute_not_exists(#pk) OR #fetched_at_ms <= :f")
            .set_expression_attribute_names(names(&["pk", "fetched_at_ms"]))
            .expression_attribute_values(":f", n(fetched_at_ms))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let old = match res {
            Ok(out) => out.attributes().map(Generation::of),
            Err(e) if is_ccf(&e) => return Ok(false),
            Err(e) => return Err(store_err("PutItem", e)),
        };
        if let Some(old) = old {
            self.delete_chunks(place, old.gen.as_deref(), old.chunks)
                .await;
        }
        Ok(true)
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

    /// The synced data of a target, head and chunks, or `None`.
    pub(super) async fn read_synced(
        &self,
        connection: &ConnectionId,
        location: &str,
        attribute_type: &str,
        resource: Option<&str>,
    ) -> Result<Option<SyncedData>, Error> {
        let place = Place {
            pk: sync_pk(connection, location),
            attribute_type,
            resource,
        };
        let Some(item) = self.get_consistent(place.head()).await? else {
            return Ok(None);
        };
        let generation = Generation::of(&item);
        let data = match get_n(&item, "chunks") {
            None => get_s(&item, "data").unwrap_or("[]").to_string(),
            Some(_) => {
                let mut data = String::new();
                for i in 0..generation.chunks {
                    let c = self
                        .get_consistent(place.chunk(generation.gen.as_deref(), i))
                        .await?;
                    // Gone: a later write replaced this generation between
                    // our reads.
                    match c.filter(|c| get_n(c, "fetched_at_ms") == Some(generation.fetched_at_ms))
                    {
                        Some(c) => data.push_str(get_s(&c, "data").unwrap_or("")),
                        None => {
                            return Err(Error::Unavailable(
                                "synced data changed while being read: read again".into(),
                            ))
                        }
                    }
                }
                data
            }
        };
        Ok(Some(SyncedData {
            target: SyncTarget {
                connection_id: connection.clone(),
                location_id: location.to_string(),
                attribute_type: attribute_type.to_string(),
                resource_id: resource.map(str::to_string),
            },
            data,
            pages: get_n(&item, "pages").unwrap_or(0) as u32,
            fetched_at_ms: generation.fetched_at_ms,
            event_id: get_s(&item, "event_id").unwrap_or_default().to_string(),
            deleted: get_bool(&item, "deleted"),
        }))
    }
}
