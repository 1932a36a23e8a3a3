//! Erasing a user from the table ([`crate::store::erase`] says how each
//! kind is found): one pass discovers keys in deletion order until the
//! budget is reached, then deletes them 25 a request.

use super::connections::ended_families;
use super::item::*;
use super::{DynamoStore, GSI_FAMILY};
use crate::error::Error;
use crate::model::{ConnectionId, UserId};
use crate::store::erase::{kind, Erased, ErasureStore};
use crate::store::keys::{self, CONNECTION_SK, ERASURE_SK, FAMILY_SK};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
use std::collections::BTreeSet;
use std::time::Duration;

/// The keys to delete, in order, each counted as a kind (`None`: deleted
/// but not reported, e.g. the listings' version item).
struct Plan {
    keys: Vec<(Option<&'static str>, Item)>,
    seen: BTreeSet<(String, String)>,
    budget: usize,
}

impl Plan {
    fn full(&self) -> bool {
        self.keys.len() > self.budget
    }

    fn add(&mut self, kind: Option<&'static str>, pk: &str, sk: &str) {
        if self.seen.insert((pk.to_string(), sk.to_string())) {
            self.keys.push((kind, key(pk, sk)));
        }
    }
}

/// The kind an item of a connection's or user's partition is reported as.
fn kind_of(pk: &str, sk: &str) -> Option<&'static str> {
    Some(match () {
        _ if pk.starts_with("TOKEN#") => kind::TOKENS,
        _ if pk.starts_with("FAM#") => kind::TOKEN_FAMILIES,
        _ if pk.starts_with("CODE#") => kind::CODES,
        _ if pk.starts_with("FORM#") => kind::CONSENT_FORMS,
        _ if pk.starts_with("EVENT#") => kind::STATUS_EVENTS,
        // A target's note counts it; its fetch state goes with it.
        _ if pk.starts_with("TARGET#") && sk == keys::NOTE_SK => kind::TARGETS,
        _ if pk.starts_with("TARGET#") => return None,
        _ if sk.starts_with("DATA#") => kind::DATA,
        _ if sk.starts_with("CHUNK#") => kind::CHUNKS,
        _ if sk == keys::STATUS_SK => kind::STATUSES,
        _ if pk.starts_with("DATALOG#") => kind::DATA_LOG,
        _ if sk.starts_with(keys::LOCATION_SK_PREFIX) => kind::LISTINGS,
        _ if pk.starts_with("CONN#") => kind::CONNECTIONS,
        _ => return None,
    })
}

fn pk_sk(i: &Item) -> Option<(String, String)> {
    Some((get_s(i, "pk")?.to_string(), get_s(i, "sk")?.to_string()))
}

impl DynamoStore {
    /// Every item of a query (a table partition, read consistently, or a
    /// `gsi1` partition), every page, until `stop` says enough.
    async fn all_of(
        &self,
        gsi: bool,
        pk: &str,
        stop: impl Fn(usize) -> bool,
    ) -> Result<Vec<Item>, Error> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let q = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":p", s(pk))
                .set_exclusive_start_key(start);
            let q = if gsi {
                q.index_name(GSI_FAMILY)
                    .key_condition_expression("gsi1pk = :p")
            } else {
                q.key_condition_expression("pk = :p").consistent_read(true)
            };
            let out = q.send().await.map_err(|e| store_err("Query", e))?;
            items.extend(out.items().iter().cloned());
            start = out.last_evaluated_key;
            if start.is_none() || stop(items.len()) {
                return Ok(items);
            }
        }
    }

    /// Adds a whole partition (or index partition) to the plan.
    async fn plan_partition(
        &self,
        plan: &mut Plan,
        gsi: bool,
        pk: &str,
    ) -> Result<Vec<Item>, Error> {
        let budget = plan.budget;
        let items = self.all_of(gsi, pk, |n| n > budget).await?;
        for (pk, sk) in items.iter().filter_map(pk_sk) {
            plan.add(kind_of(&pk, &sk), &pk, &sk);
        }
        Ok(items)
    }

    /// What a connection holds besides its own item: its families' tokens
    /// and family items, its codes, forms and statuses (with their
    /// locations' partitions), its targets and legacy events.
    async fn plan_connection(&self, plan: &mut Plan, id: &ConnectionId) -> Result<(), Error> {
        let conn = self
            .get_consistent(key(keys::connection_pk(id), CONNECTION_SK))
            .await?;
        for family in conn.as_ref().map(ended_families).unwrap_or_default() {
            self.plan_partition(plan, true, &keys::family_pk(&family))
                .await?;
            let fam = keys::family_pk(&family);
            if self.get_consistent(key(&fam, FAMILY_SK)).await?.is_some() {
                plan.add(Some(kind::TOKEN_FAMILIES), &fam, FAMILY_SK);
            }
            if plan.full() {
                return Ok(());
            }
        }
        let owned = self.plan_partition(plan, true, &keys::owned_pk(id)).await?;
        for (pk, _) in owned.iter().filter_map(pk_sk) {
            if pk.starts_with("SYNC#") && !plan.full() {
                self.plan_partition(plan, false, &pk).await?;
            }
        }
        for (pk, _) in self
            .all_of(true, &keys::hooks_pk(id), |_| false)
            .await?
            .iter()
            .filter_map(pk_sk)
        {
            if plan.full() {
                return Ok(());
            }
            // Both items of a target (note and fetch state).
            self.plan_partition(plan, false, &pk).await?;
        }
        Ok(())
    }

    /// Deletes `keys`, 25 a request, until none is left unprocessed.
    async fn delete_all(&self, keys: Vec<Item>) -> Result<(), Error> {
        for batch in keys.chunks(25) {
            let mut requests: Vec<WriteRequest> = batch
                .iter()
                .map(|k| {
                    let d = DeleteRequest::builder()
                        .set_key(Some(k.clone()))
                        .build()
                        .map_err(build_err)?;
                    Ok(WriteRequest::builder().delete_request(d).build())
                })
                .collect::<Result<_, Error>>()?;
            for attempt in 0..8u32 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| store_err("BatchWriteItem", e))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
            if !requests.is_empty() {
                return Err(Error::Unavailable(
                    "erasure: DynamoDB kept items unprocessed; call again".into(),
                ));
            }
        }
        Ok(())
    }
}

impl DynamoStore {
    /// Gives codes and location statuses stored before erasure's index
    /// their entry in it (`OWNED#<connection>`); returns how many. Forms
    /// stored before name no connection: they expire a day after their
    /// code.
    pub async fn backfill_owned_index(&self) -> Result<usize, Error> {
        let mut indexed = 0;
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "(begins_with(#pk, :code) OR #sk = :status) AND attribute_not_exists(#gsi1pk)",
                )
                .projection_expression("#pk, #sk, #conn")
                .set_expression_attribute_names(names(&["pk", "sk", "gsi1pk", "conn"]))
                .expression_attribute_values(":code", s("CODE#"))
                .expression_attribute_values(":status", s(keys::STATUS_SK))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_err("Scan", e))?;
            for item in out.items.unwrap_or_default() {
                let Some((pk, sk)) = pk_sk(&item) else {
                    continue;
                };
                // A code names its connection; a status's key does.
                let conn = match get_s(&item, "conn") {
                    Some(c) => c.to_string(),
                    None => match pk.strip_prefix("SYNC#").and_then(|r| r.split_once('#')) {
                        Some((c, _)) => c.to_string(),
                        None => continue,
                    },
                };
                let Ok(conn) = ConnectionId::parse(&conn) else {
                    continue;
                };
                let res = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key(&pk, &sk)))
                    .update_expression("SET #gsi1pk = :g, #gsi1sk = :gs")
                    .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#gsi1pk)")
                    .set_expression_attribute_names(names(&["pk", "gsi1pk", "gsi1sk"]))
                    .expression_attribute_values(":g", s(keys::owned_pk(&conn)))
                    .expression_attribute_values(":gs", s(keys::owned_sk(&pk, &sk)))
                    .send()
                    .await;
                if conditional(res, "UpdateItem")? {
                    indexed += 1;
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(indexed);
            }
        }
    }
}

#[async_trait]
impl ErasureStore for DynamoStore {
    async fn begin_erasure(&self, user: &UserId, now_ms: i64) -> Result<(i64, bool), Error> {
        let k = key(keys::erasure_pk(user), ERASURE_SK);
        let mut item = k.clone();
        item.insert("started_ms".into(), n(now_ms));
        if self
            .put_if(item, "attribute_not_exists(#pk)", &["pk"], vec![])
            .await?
        {
            return Ok((now_ms, true));
        }
        let began = self
            .get_consistent(k)
            .await?
            .and_then(|i| get_n(&i, "started_ms"))
            .unwrap_or(now_ms);
        Ok((began, false))
    }

    async fn erase_items(&self, user: &UserId, budget: usize) -> Result<Erased, Error> {
        let mut plan = Plan {
            keys: Vec::new(),
            seen: BTreeSet::new(),
            budget,
        };
        let conns: Vec<(String, String)> = self
            .all_of(true, &keys::user_connections_pk(user), |_| false)
            .await?
            .iter()
            .filter_map(pk_sk)
            .collect();
        for (pk, _) in &conns {
            let Some(id) = keys::connection_id_of(pk).and_then(|c| ConnectionId::parse(c).ok())
            else {
                continue;
            };
            if !plan.full() {
                self.plan_connection(&mut plan, &id).await?;
            }
        }
        // The data the user's log names, then the log, the listings and
        // last the connections (what the next call finds the rest from).
        let log_pk = keys::data_log_pk(user);
        let log = self.all_of(false, &log_pk, |_| false).await?;
        for entry in &log {
            let (Some(conn), Some(location)) = (get_s(entry, "conn"), get_s(entry, "location"))
            else {
                continue;
            };
            if plan.full() {
                break;
            }
            if let Ok(c) = ConnectionId::parse(conn) {
                self.plan_partition(&mut plan, false, &keys::sync_pk(&c, location))
                    .await?;
            }
        }
        for (pk, sk) in log.iter().filter_map(pk_sk) {
            plan.add(Some(kind::DATA_LOG), &pk, &sk);
        }
        self.plan_partition(&mut plan, false, &keys::user_pk(user))
            .await?;
        for (pk, sk) in &conns {
            plan.add(Some(kind::CONNECTIONS), pk, sk);
        }
        let mut out = Erased {
            cut_short: plan.keys.len() > budget,
            ..Erased::default()
        };
        plan.keys.truncate(budget);
        let (kinds, keys): (Vec<_>, Vec<_>) = plan.keys.into_iter().unzip();
        self.delete_all(keys).await?;
        for k in kinds.into_iter().flatten() {
            out.add(k, 1);
        }
        Ok(out)
    }

    async fn end_erasure(&self, user: &UserId) -> Result<bool, Error> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::erasure_pk(user), ERASURE_SK)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| store_err("DeleteItem", e))?;
        Ok(out.attributes.is_some())
    }
}
