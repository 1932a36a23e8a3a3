//! Reading a user's data log ([`crate::store::datalog`]): its entries after
//! the cursor, by a strongly consistent query, and each entry's data; and
//! the backfill that logs heads stored before the log existed.

use super::item::*;
use super::items::{read_owned, LogCounterItem, LogEntryItem};
use super::DynamoStore;
use crate::error::Error;
use crate::model::{ConnectionId, UserId};
use crate::store::datalog::{DataPage, DataRead, PageBuilder};
use crate::store::keys::{data_key_target, data_log_entry_sk, data_log_pk, DATA_LOG_SK};
use crate::store::SyncTarget;

/// Entries one query reads (they are small: ids and a number).
const QUERY_PAGE: i32 = 200;

/// Targets whose data is read at once: up to 3 MB each in memory.
const READ_AHEAD: usize = 8;

impl DynamoStore {
    /// A page of `user`'s log after `read.after`.
    pub(super) async fn read_log(&self, user: &UserId, read: &DataRead) -> Result<DataPage, Error> {
        let pk = data_log_pk(user);
        let Some(counter) = self.get_consistent(key(pk.clone(), DATA_LOG_SK)).await? else {
            return Ok(PageBuilder::new(read, "").finish(false));
        };
        let counter: LogCounterItem =
            read_owned(counter).ok_or_else(|| Error::corrupt("a data log counter is malformed"))?;
        let mut page = PageBuilder::new(read, &counter.epoch);
        loop {
            let (entries, more) = self.log_entries(&pk, page.after()).await?;
            let mut rest = entries.into_iter().peekable();
            while !page.is_full() && rest.peek().is_some() {
                let mut batch = Vec::new();
                let mut wanted = 0;
                while wanted < page.room().min(READ_AHEAD) {
                    let Some(e) = rest.next() else { break };
                    wanted += usize::from(read.filter.matches(&e.1));
                    batch.push(e);
                }
                let reads = batch.iter().map(|(_, t)| async {
                    match read.filter.matches(t) {
                        true => self.read_synced(t).await,
                        false => Ok(None),
                    }
                });
                let found = futures_util::future::try_join_all(reads).await?;
                let mut batch = batch.into_iter().zip(found).peekable();
                while let Some(((seq, _), found)) = batch.next_if(|_| !page.is_full()) {
                    match found {
                        // Still at this place: its data is this entry's.
                        Some((d, Some(at))) if at == seq => page.offer(seq, d),
                        // Filtered out, gone, or stored again since (its
                        // new entry comes later).
                        _ => page.pass(seq),
                    }
                }
                if batch.peek().is_some() {
                    return Ok(page.finish(true));
                }
            }
            if page.is_full() || !more {
                let unread = rest.peek().is_some() || more;
                return Ok(page.finish(unread));
            }
        }
    }

    /// The log's entries after `after`, in order (one query), and whether
    /// the query stopped before the end.
    async fn log_entries(
        &self,
        pk: &str,
        after: u64,
    ) -> Result<(Vec<(u64, SyncTarget)>, bool), Error> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
            .set_expression_attribute_names(names(&["pk", "sk"]))
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":from", s(data_log_entry_sk(after.saturating_add(1))))
            .expression_attribute_values(":to", s(data_log_entry_sk(u64::MAX)))
            .consistent_read(true)
            .limit(QUERY_PAGE)
            .send()
            .await
            .map_err(|e| store_err("Query", e))?;
        let more = out.last_evaluated_key.is_some();
        let malformed = || Error::corrupt("a data log entry is malformed");
        let entries = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| {
                let e: LogEntryItem = read_owned(i).ok_or_else(malformed)?;
                let target = SyncTarget {
                    connection_id: ConnectionId::parse(&e.conn).map_err(|_| malformed())?,
                    location_id: e.location,
                    attribute_type: e.attr,
                    resource_id: e.resource,
                };
                Ok((e.seq, target))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok((entries, more))
    }
}

/// The steps of logging a head stored before the log.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Backfill {
    /// The head takes its place (condition: not logged yet).
    Head,
    /// The user's log counter (condition: the number read).
    Log,
    Entry,
}

impl DynamoStore {
    /// Logs every synced-data head stored before the data log (no
    /// `log_seq`), in table order: each takes its user's next number, as a
    /// store does. Idempotent: a head already logged (by an earlier run or
    /// a store since) is left as it is. Returns how many it logged.
    pub async fn backfill_data_log(&self) -> Result<usize, Error> {
        let mut logged = 0;
        let mut items = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(#sk, :data) AND attribute_not_exists(#log_seq)")
            .projection_expression("#pk, #sk")
            .set_expression_attribute_names(names(&["pk", "sk", "log_seq"]))
            .expression_attribute_values(":data", s("DATA#"))
            .into_paginator()
            .items()
            .send();
        while let Some(item) = items.next().await {
            let item = item.map_err(|e| store_err("Scan", e))?;
            let (Some(pk), Some(sk)) = (get_s(&item, "pk"), get_s(&item, "sk")) else {
                continue;
            };
            if self.log_head(pk, sk).await? {
                logged += 1;
            }
        }
        Ok(logged)
    }

    /// Gives the head at `pk`/`sk` its user's next log number; `false` when
    /// it has one already (or is gone).
    async fn log_head(&self, pk: &str, sk: &str) -> Result<bool, Error> {
        let malformed = || Error::corrupt(format!("synced data key {pk} / {sk} is malformed"));
        let (conn, location, attr, resource) = data_key_target(pk, sk).ok_or_else(malformed)?;
        let connection = ConnectionId::parse(&conn).map_err(|_| malformed())?;
        let user = self.user_of(&connection).await?;
        let entry = |seq| LogEntryItem {
            pk: data_log_pk(&user),
            sk: data_log_entry_sk(seq),
            seq,
            conn: conn.clone(),
            location: location.clone(),
            attr: attr.clone(),
            resource: resource.clone(),
        };
        for _ in 0..12 {
            let counter = self
                .get_consistent(key(data_log_pk(&user), DATA_LOG_SK))
                .await?;
            let seq = super::synced::log_seq(counter)?;
            let next = seq.unwrap_or(0) + 1;
            let head = aws_sdk_dynamodb::types::Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk.to_string(), sk)))
                .update_expression("SET #user = :user, #log_seq = :seq")
                .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#log_seq)")
                .set_expression_attribute_names(names(&["user", "log_seq", "pk"]))
                .expression_attribute_values(":user", s(user.as_str()))
                .expression_attribute_values(":seq", n(next as i64))
                .build()
                .map_err(build_err)?;
            let tx = super::tx::Tx::new()
                .step(
                    Backfill::Head,
                    aws_sdk_dynamodb::types::TransactWriteItem::builder()
                        .update(head)
                        .build(),
                )
                .step(Backfill::Log, self.counter_step(&user, seq)?)
                .step(
                    Backfill::Entry,
                    self.put(super::items::write(&entry(next)), None)?,
                );
            match self.run(tx).await? {
                Ok(()) => return Ok(true),
                Err(c) if c.failed(Backfill::Head).is_some() => return Ok(false),
                Err(c) if c.failed(Backfill::Log).is_some() => continue,
                Err(c) => return Err(c.unexpected("data log backfill")),
            }
        }
        Err(Error::Unavailable(
            "data log backfill: the user's log kept changing under concurrent writes".into(),
        ))
    }
}
