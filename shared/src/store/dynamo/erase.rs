//! Erasing a user from the table ([`crate::store::erase`] says how each
//! kind is found): one pass discovers keys in deletion order until the
//! budget is reached, then deletes them 25 a request.

use super::connections::ended_families;
use super::item::*;
use super::{DynamoStore, GSI_FAMILY};
use crate::error::Error;
use crate::model::{ConnectionId, UserId};
use crate::store::erase::{kind, Began, Erased, ErasureStore, Scope};
use crate::store::keys::{self, CONNECTION_SK, ERASURE_SK, FAMILY_SK};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use std::collections::BTreeSet;
use std::time::Duration;

/// How long one call discovers before it deletes what it found: well
/// inside the admin function's 30 s, beside the deletes and the
/// dead-letter queue's read.
const PLAN_TIME: Duration = Duration::from_secs(10);

/// The keys to delete, in order, each counted as a kind (`None`: deleted
/// but not reported, e.g. the listings' version item).
struct Plan {
    keys: Vec<(Option<&'static str>, Item)>,
    seen: BTreeSet<(String, String)>,
    /// Partitions queried already (index or table, pk).
    queried: BTreeSet<(bool, String)>,
    budget: usize,
    /// Discovery stops here: what was planned by then is deleted, the
    /// rest is the next call's.
    deadline: std::time::Instant,
    /// How many keys were planned when the deadline passed.
    cut_at: Option<usize>,
}

impl Plan {
    /// At the budget, or out of time.
    fn full(&mut self) -> bool {
        if self.cut_at.is_none() && std::time::Instant::now() >= self.deadline {
            self.cut_at = Some(self.keys.len());
        }
        self.keys.len() > self.budget || self.cut_at.is_some()
    }

    /// How many of the planned keys this call deletes: a prefix, so
    /// everything kept leaves a way to what is not.
    fn keep(&self) -> usize {
        self.budget.min(self.cut_at.unwrap_or(usize::MAX))
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
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":p", s(pk));
        let q = if gsi {
            q.index_name(GSI_FAMILY)
                .key_condition_expression("gsi1pk = :p")
        } else {
            q.key_condition_expression("pk = :p").consistent_read(true)
        };
        let mut pages = q.into_paginator().send();
        let mut items = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| store_err("Query", e))?;
            items.extend(page.items().iter().cloned());
            if stop(items.len()) {
                break;
            }
        }
        Ok(items)
    }

    /// Adds a whole partition (or index partition) to the plan, once.
    async fn plan_partition(
        &self,
        plan: &mut Plan,
        gsi: bool,
        pk: &str,
    ) -> Result<Vec<Item>, Error> {
        if !plan.queried.insert((gsi, pk.to_string())) {
            return Ok(Vec::new());
        }
        let budget = plan.budget;
        let items = self.all_of(gsi, pk, |n| n > budget).await?;
        for (pk, sk) in items.iter().filter_map(pk_sk) {
            plan.add(kind_of(&pk, &sk), &pk, &sk);
        }
        Ok(items)
    }

    /// What a connection holds besides its own item: its families' tokens
    /// and family items; its codes and forms; the partitions of its
    /// statuses, targets (notes and fetch state) and legacy events. A
    /// partition is planned whole, its indexed item with it (a status sorts
    /// after its location's data and chunks), so a plan cut short never
    /// loses the way to what it left.
    async fn plan_connection(&self, plan: &mut Plan, id: &ConnectionId) -> Result<(), Error> {
        let conn = self
            .get_consistent(key(keys::connection_pk(id), CONNECTION_SK))
            .await?;
        for family in conn.as_ref().map(ended_families).unwrap_or_default() {
            let fam = keys::family_pk(&family);
            self.plan_partition(plan, true, &fam).await?;
            if self.get_consistent(key(&fam, FAMILY_SK)).await?.is_some() {
                plan.add(Some(kind::TOKEN_FAMILIES), &fam, FAMILY_SK);
            }
            if plan.full() {
                return Ok(());
            }
        }
        let owned = self.all_of(true, &keys::owned_pk(id), |_| false).await?;
        let hooks = self.all_of(true, &keys::hooks_pk(id), |_| false).await?;
        for (pk, sk) in owned.iter().chain(&hooks).filter_map(pk_sk) {
            if plan.full() {
                return Ok(());
            }
            if pk.starts_with("SYNC#") || pk.starts_with("TARGET#") {
                self.plan_partition(plan, false, &pk).await?;
            } else {
                plan.add(kind_of(&pk, &sk), &pk, &sk);
            }
        }
        Ok(())
    }

    /// The data the user's log names, each entry right after its target's
    /// partition (a plan cut short keeps an entry only with its
    /// partition), then the log's counter.
    async fn plan_log(&self, plan: &mut Plan, user: &UserId) -> Result<(), Error> {
        let log_pk = keys::data_log_pk(user);
        let log = self.all_of(false, &log_pk, |_| false).await?;
        for entry in &log {
            if plan.full() {
                break;
            }
            let Some((pk, sk)) = pk_sk(entry) else {
                continue;
            };
            if sk == keys::DATA_LOG_SK {
                continue;
            }
            let named = (get_s(entry, "conn"), get_s(entry, "location"));
            if let (Some(conn), Some(location)) = named {
                if let Ok(c) = ConnectionId::parse(conn) {
                    self.plan_partition(plan, false, &keys::sync_pk(&c, location))
                        .await?;
                }
            }
            plan.add(Some(kind::DATA_LOG), &pk, &sk);
        }
        for (pk, sk) in log.iter().filter_map(pk_sk) {
            if sk == keys::DATA_LOG_SK {
                plan.add(Some(kind::DATA_LOG), &pk, &sk);
            }
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
    /// Gives codes, location statuses and targets' fetch state stored
    /// before erasure's index their entry in it (`OWNED#<connection>`);
    /// returns how many. Forms stored before name no connection: they
    /// expire a day after their code.
    pub async fn backfill_owned_index(&self) -> Result<usize, Error> {
        let mut indexed = 0;
        let mut items = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "(begins_with(#pk, :code) OR #sk = :status OR #sk = :state) AND attribute_not_exists(#gsi1pk)",
                )
                .projection_expression("#pk, #sk, #conn")
                .set_expression_attribute_names(names(&["pk", "sk", "gsi1pk", "conn"]))
                .expression_attribute_values(":code", s("CODE#"))
                .expression_attribute_values(":status", s(keys::STATUS_SK))
                .expression_attribute_values(":state", s(keys::STATE_SK))
                .into_paginator()
                .items()
                .send();
        while let Some(item) = items.next().await {
            let item = item.map_err(|e| store_err("Scan", e))?;
            let Some((pk, sk)) = pk_sk(&item) else {
                continue;
            };
            // A code names its connection; a status's or a target's
            // fetch state's key does (first, never encoded).
            let keyed = pk
                .strip_prefix("SYNC#")
                .or_else(|| pk.strip_prefix("TARGET#"))
                .and_then(|r| r.split_once('#'))
                .map(|(c, _)| c.to_string());
            let Some(conn) = get_s(&item, "conn").map(str::to_string).or(keyed) else {
                continue;
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
        Ok(indexed)
    }
}

#[async_trait]
impl ErasureStore for DynamoStore {
    async fn begin_erasure(
        &self,
        user: &UserId,
        now_ms: i64,
        connections: &[ConnectionId],
    ) -> Result<Began, Error> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::erasure_pk(user), ERASURE_SK)))
            .expression_attribute_values(":now", n(now_ms))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld);
        let ids: Vec<String> = connections.iter().map(|c| c.to_string()).collect();
        update = if ids.is_empty() {
            update
                .update_expression("SET #started = if_not_exists(#started, :now)")
                .set_expression_attribute_names(names(&["started"]))
        } else {
            update
                .update_expression("SET #started = if_not_exists(#started, :now) ADD #conns :ids")
                .set_expression_attribute_names(names(&["started", "conns"]))
                .expression_attribute_values(":ids", AttributeValue::Ss(ids.clone()))
        };
        let old = update
            .send()
            .await
            .map_err(|e| store_err("UpdateItem", e))?
            .attributes;
        let mut seen: BTreeSet<String> = ids.into_iter().collect();
        if let Some(AttributeValue::Ss(before)) = old.as_ref().and_then(|o| o.get("conns")) {
            seen.extend(before.iter().cloned());
        }
        Ok(Began {
            at_ms: old
                .as_ref()
                .and_then(|o| get_n(o, "started"))
                .unwrap_or(now_ms),
            now: old.is_none(),
            connections: seen
                .iter()
                .filter_map(|c| ConnectionId::parse(c).ok())
                .collect(),
        })
    }

    async fn erase_items(
        &self,
        user: &UserId,
        scope: &Scope<'_>,
        budget: usize,
    ) -> Result<Erased, Error> {
        let mut plan = Plan {
            keys: Vec::new(),
            seen: BTreeSet::new(),
            queried: BTreeSet::new(),
            budget,
            deadline: std::time::Instant::now() + PLAN_TIME,
            cut_at: None,
        };
        let conns: Vec<(String, String)> = self
            .all_of(true, &keys::user_connections_pk(user), |_| false)
            .await?
            .iter()
            .filter_map(pk_sk)
            .collect();
        // The listed connections and those the erasure saw before (their
        // items may be gone, what they held indexed late).
        let mut ids: BTreeSet<ConnectionId> = scope.connections.iter().cloned().collect();
        ids.extend(
            conns
                .iter()
                .filter_map(|(pk, _)| keys::connection_id_of(pk))
                .filter_map(|c| ConnectionId::parse(c).ok()),
        );
        // From a random place, so a call cut short by time does not always
        // spend it on the same connections.
        let mut ids: Vec<ConnectionId> = ids.into_iter().collect();
        if !ids.is_empty() {
            let at = rand::random_range(0..ids.len());
            ids.rotate_left(at);
        }
        for id in &ids {
            if !plan.full() {
                self.plan_connection(&mut plan, id).await?;
            }
        }
        self.plan_log(&mut plan, user).await?;
        self.plan_partition(&mut plan, false, &keys::user_pk(user))
            .await?;
        if scope.connection_items {
            let recorded = |pk: &str| {
                keys::connection_id_of(pk)
                    .and_then(|c| ConnectionId::parse(c).ok())
                    .is_some_and(|c| scope.connections.contains(&c))
            };
            for (pk, sk) in conns.iter().filter(|(pk, _)| recorded(pk)) {
                plan.add(Some(kind::CONNECTIONS), pk, sk);
            }
        }
        plan.full();
        let keep = plan.keep();
        // Out of time: not everything was looked at, so not proven clean.
        let mut out = Erased {
            cut_short: plan.keys.len() > keep || plan.cut_at.is_some(),
            ..Erased::default()
        };
        plan.keys.truncate(keep);
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
