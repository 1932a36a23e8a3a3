//! DynamoDB, single table. Item layout (also in docs/ARCHITECTURE.md):
//!
//! | item | pk | sk | notes |
//! |---|---|---|---|
//! | code | `CODE#<hmac>` | `CODE` | `expires_at`, `consumed`, token hashes once redeemed; `ttl` a day after expiry so replays are still recognised |
//! | token | `TOKEN#<hmac>` | `TOKEN` | `kind`, `conn`, `user`, `client`, `family`, `expires_at`, `revoked`, `used_at`; GSI `gsi1` on `gsi1pk = FAM#<family>` |
//! | family | `FAM#<family>` | `FAMILY` | `revoked`: refresh of a revoked family is refused |
//! | connection | `CONN#<connectionId>` | `CONNECTION` | `user`, `client`, `status`, `created_at`, `confirmed_at` |
//! | location | `USER#<userId>` | `LOC#<locationId>` | `doc`: the location JSON in the guide's schema |

use super::{CodeRedemption, RedeemError, RefreshRotation, RotateError, Store};
use crate::error::Error;
use crate::model::{
    AuthCodeRecord, Connection, ConnectionId, ConnectionStatus, Location, TokenKind, TokenRecord,
    UserId, UserListings,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, ConditionCheck,
    GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, Put,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TimeToLiveSpecification,
    TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

pub type Item = HashMap<String, AttributeValue>;

/// Seconds a used or expired credential's item is kept so a replay is still
/// recognised as one before DynamoDB's TTL deletes it.
const KEEP_AFTER_EXPIRY: i64 = 86_400;
pub const GSI_FAMILY: &str = "gsi1";

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Seconds added to every `ttl` attribute written (see
    /// [`DynamoStore::with_ttl_shift`]); zero in production.
    ttl_shift: i64,
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
pub fn get_s<'a>(item: &'a Item, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}
pub fn get_n(item: &Item, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}
pub fn get_bool(item: &Item, k: &str) -> bool {
    item.get(k)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
}
pub fn key(pk: impl Into<String>, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

pub fn store_err<E: std::error::Error + 'static>(op: &str, e: E) -> Error {
    Error::Store(format!("{op}: {}", DisplayErrorContext(e)))
}

/// `#name -> name` for every attribute an expression names: DynamoDB
/// reserves hundreds of words (`user`, `status`, `consumed`...), so every
/// expression refers to attributes through placeholders.
pub fn names(attrs: &[&str]) -> Option<HashMap<String, String>> {
    Some(
        attrs
            .iter()
            .map(|a| (format!("#{a}"), a.to_string()))
            .collect(),
    )
}

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> Error {
    Error::Store(format!("request build: {e}"))
}

fn conn_pk(id: &ConnectionId) -> String {
    format!("CONN#{id}")
}
fn token_pk(hash: &str) -> String {
    format!("TOKEN#{hash}")
}
fn family_pk(f: &str) -> String {
    format!("FAM#{f}")
}

/// The cancellation reasons of a cancelled transaction, or the error.
fn cancellation(e: SdkError<TransactWriteItemsError>) -> Result<Vec<CancellationReason>, Error> {
    match e {
        SdkError::ServiceError(se) => match se.into_err() {
            TransactWriteItemsError::TransactionCanceledException(c) => {
                Ok(c.cancellation_reasons().to_vec())
            }
            other => Err(store_err("TransactWriteItems", other)),
        },
        other => Err(store_err("TransactWriteItems", other)),
    }
}

fn failed_condition(r: &CancellationReason) -> bool {
    r.code() == Some("ConditionalCheckFailed")
}

fn token_item(t: &TokenRecord, ttl_shift: i64) -> Item {
    let mut item = key(token_pk(&t.hash), "TOKEN");
    item.insert("kind".into(), s(t.kind.as_str()));
    item.insert("conn".into(), s(t.connection_id.as_str()));
    item.insert("user".into(), s(t.user_id.as_str()));
    item.insert("client".into(), s(&t.client_id));
    item.insert("family".into(), s(&t.family));
    item.insert("expires_at".into(), n(t.expires_at));
    item.insert("revoked".into(), AttributeValue::Bool(t.revoked));
    item.insert(
        "ttl".into(),
        n(t.expires_at + KEEP_AFTER_EXPIRY + ttl_shift),
    );
    item.insert("gsi1pk".into(), s(family_pk(&t.family)));
    item.insert("gsi1sk".into(), s(token_pk(&t.hash)));
    if let Some(u) = t.used_at {
        item.insert("used_at".into(), n(u));
    }
    item
}

fn token_from(item: &Item) -> Option<TokenRecord> {
    Some(TokenRecord {
        hash: get_s(item, "pk")?.strip_prefix("TOKEN#")?.to_string(),
        kind: TokenKind::parse(get_s(item, "kind")?)?,
        connection_id: ConnectionId::parse(get_s(item, "conn")?).ok()?,
        user_id: UserId::parse(get_s(item, "user")?).ok()?,
        client_id: get_s(item, "client")?.to_string(),
        family: get_s(item, "family")?.to_string(),
        expires_at: get_n(item, "expires_at")?,
        revoked: get_bool(item, "revoked"),
        used_at: get_n(item, "used_at"),
    })
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            ttl_shift: 0,
        }
    }

    /// Adds `secs` to every `ttl` attribute this store writes.
    ///
    /// Records carry their lifetimes in the handlers' clock (`expires_at`,
    /// checked by the code itself), while DynamoDB's TTL sweeper deletes
    /// items by the real clock. In production both clocks are the wall
    /// clock and the shift is zero. Tests run the handlers on a fixed clock
    /// (the time the `events/` files were made at), which the wall clock
    /// leaves behind; they set the shift to "wall clock now minus the fixed
    /// clock", so the sweeper sees the lifetimes the test meant on any date.
    pub fn with_ttl_shift(mut self, secs: i64) -> Self {
        self.ttl_shift = secs;
        self
    }

    /// The `ttl` attribute for an item DynamoDB may delete after `at`
    /// (seconds on the handlers' clock).
    fn ttl(&self, at: i64) -> AttributeValue {
        n(at + self.ttl_shift)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// A transaction step that stores a newly issued token (never over one).
    fn put_new_token(&self, t: &TokenRecord) -> Result<TransactWriteItem, Error> {
        self.put(
            token_item(t, self.ttl_shift),
            Some("attribute_not_exists(pk)"),
        )
    }

    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, Error> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string))
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Runs a transaction. `Ok(Err(reasons))` is a cancellation (a failed
    /// condition). A cancellation caused only by another transaction in
    /// flight on the same items (`TransactionConflict`, as when many callers
    /// race for one code) is retried with a short jittered backoff, so the
    /// losers see the winner's result instead of an error.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Vec<CancellationReason>>, Error> {
        const ATTEMPTS: u32 = 6;
        for attempt in 1..=ATTEMPTS {
            let res = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let reasons = match res {
                Ok(_) => return Ok(Ok(())),
                Err(e) => cancellation(e)?,
            };
            let conflict = reasons
                .iter()
                .any(|r| r.code() == Some("TransactionConflict"));
            let failed = reasons.iter().any(failed_condition);
            if conflict && !failed && attempt < ATTEMPTS {
                let base = 5u64 << attempt;
                let jitter = rand::random::<u64>() % base;
                tokio::time::sleep(std::time::Duration::from_millis(base + jitter)).await;
                continue;
            }
            return Ok(Err(reasons));
        }
        unreachable!("the last attempt returns")
    }

    /// A strongly consistent `GetItem`.
    async fn get_consistent(&self, key: Item) -> Result<Option<Item>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_err("GetItem", e))?;
        Ok(out.item)
    }

    /// `PutItem` under `condition` (attributes named `#name`, values given);
    /// `Ok(false)` when the condition did not hold.
    async fn put_if(
        &self,
        item: Item,
        condition: &str,
        attrs: &[&str],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, Error> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(names(attrs));
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_ccf(&e) => Ok(false),
            Err(e) => Err(store_err("PutItem", e)),
        }
    }

    /// Creates the table with its index and TTL, if missing. The stack
    /// creates it in AWS; this is for DynamoDB Local and the local runner.
    pub async fn ensure_table(&self) -> Result<(), Error> {
        let exists = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await;
        if exists.is_ok() {
            return Ok(());
        }
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_err)
        };
        let ks = |name: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(t)
                .build()
                .map_err(build_err)
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(GSI_FAMILY)
            .key_schema(ks("gsi1pk", KeyType::Hash)?)
            .key_schema(ks("gsi1sk", KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .build()
            .map_err(build_err)?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .attribute_definitions(attr("gsi1pk")?)
            .attribute_definitions(attr("gsi1sk")?)
            .key_schema(ks("pk", KeyType::Hash)?)
            .key_schema(ks("sk", KeyType::Range)?)
            .global_secondary_indexes(gsi)
            .send()
            .await;
        if let Err(e) = created {
            let raced = e
                .as_service_error()
                .is_some_and(|se| se.is_resource_in_use_exception());
            if !raced {
                return Err(store_err("CreateTable", e));
            }
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name("ttl")
                    .build()
                    .map_err(build_err)?,
            )
            .send()
            .await
            .map_err(|e| store_err("UpdateTimeToLive", e))?;
        Ok(())
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn ping(&self) -> Result<(), Error> {
        let read = || async {
            self.client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key("PING", "PING")))
                .send()
                .await
                .map_err(|e| store_err("GetItem", e))
        };
        let (a, b) = tokio::join!(read(), read());
        a?;
        b?;
        Ok(())
    }

    async fn begin_authorization(&self, code: &AuthCodeRecord, now: i64) -> Result<(), Error> {
        let mut code_item = key(format!("CODE#{}", code.hash), "CODE");
        code_item.insert("conn".into(), s(code.connection_id.as_str()));
        code_item.insert("user".into(), s(code.user_id.as_str()));
        code_item.insert("client".into(), s(&code.client_id));
        code_item.insert("redirect".into(), s(&code.redirect_uri));
        code_item.insert("family".into(), s(&code.family));
        code_item.insert("expires_at".into(), n(code.expires_at));
        code_item.insert("consumed".into(), AttributeValue::Bool(false));
        code_item.insert("ttl".into(), self.ttl(code.expires_at + KEEP_AFTER_EXPIRY));
        let put_code = self.put(code_item, Some("attribute_not_exists(pk)"))?;
        // Bind the connection to this user, creating it if new.
        let bind = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(conn_pk(&code.connection_id), "CONNECTION")))
            .update_expression(
                "SET #user = :u, #client = if_not_exists(#client, :c), #status = if_not_exists(#status, :pending), #created_at = if_not_exists(#created_at, :now)",
            )
            .condition_expression("attribute_not_exists(#pk) OR #user = :u")
            .set_expression_attribute_names(names(&["pk", "user", "client", "status", "created_at"]))
            .expression_attribute_values(":u", s(code.user_id.as_str()))
            .expression_attribute_values(":c", s(&code.client_id))
            .expression_attribute_values(":pending", s(ConnectionStatus::Pending.as_str()))
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(build_err)?;
        let res = self
            .transact(vec![
                put_code,
                TransactWriteItem::builder().update(bind).build(),
            ])
            .await?;
        match res {
            Ok(()) => Ok(()),
            Err(reasons) => {
                if reasons.get(1).is_some_and(failed_condition) {
                    Err(Error::Conflict(
                        "this Syncaroo connection is linked to another account".into(),
                    ))
                } else {
                    Err(Error::Store(format!(
                        "authorization not stored: {reasons:?}"
                    )))
                }
            }
        }
    }

    async fn redeem_code(&self, r: &CodeRedemption) -> Result<(), RedeemError> {
        let st = |e: Error| RedeemError::Store(e);
        let mut cond = String::from(
            "attribute_exists(#pk) AND #consumed = :f AND #expires_at > :now AND #client = :c AND #conn = :conn AND #user = :u AND #family = :fam",
        );
        let mut consume = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(format!("CODE#{}", r.code_hash), "CODE")))
            .update_expression("SET #consumed = :t, #consumed_at = :now, #tokens = :tokens")
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .expression_attribute_values(":now", n(r.now))
            .expression_attribute_values(":c", s(&r.client_id))
            .expression_attribute_values(":conn", s(r.connection_id.as_str()))
            .expression_attribute_values(":u", s(r.user_id.as_str()))
            .expression_attribute_values(":fam", s(&r.family))
            .expression_attribute_values(
                ":tokens",
                AttributeValue::L(vec![s(&r.access.hash), s(&r.refresh.hash)]),
            )
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(uri) = &r.redirect_uri {
            cond.push_str(" AND #redirect = :ru");
            consume = consume.expression_attribute_values(":ru", s(uri));
        }
        let mut attrs = vec![
            "pk",
            "consumed",
            "consumed_at",
            "tokens",
            "expires_at",
            "client",
            "conn",
            "user",
            "family",
        ];
        if r.redirect_uri.is_some() {
            attrs.push("redirect");
        }
        let consume = consume
            .set_expression_attribute_names(names(&attrs))
            .condition_expression(cond)
            .build()
            .map_err(|e| st(build_err(e)))?;
        let authorize_conn = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(conn_pk(&r.connection_id), "CONNECTION")))
            .update_expression("SET #status = :authorized, #authorized_at = :now")
            .condition_expression("attribute_exists(#pk) AND #user = :u")
            .set_expression_attribute_names(names(&["pk", "user", "status", "authorized_at"]))
            .expression_attribute_values(":u", s(r.user_id.as_str()))
            .expression_attribute_values(":authorized", s(ConnectionStatus::Authorized.as_str()))
            .expression_attribute_values(":now", n(r.now))
            .build()
            .map_err(|e| st(build_err(e)))?;
        let items = vec![
            TransactWriteItem::builder().update(consume).build(),
            self.put_new_token(&r.access).map_err(st)?,
            self.put_new_token(&r.refresh).map_err(st)?,
            TransactWriteItem::builder().update(authorize_conn).build(),
        ];
        let Err(reasons) = self.transact(items).await.map_err(st)? else {
            return Ok(());
        };
        let Some(code_reason) = reasons.first() else {
            return Err(st(Error::Store(
                "transaction cancelled without reasons".into(),
            )));
        };
        if failed_condition(code_reason) {
            let Some(old) = code_reason.item() else {
                return Err(RedeemError::NotFound);
            };
            if get_bool(old, "consumed") {
                let tokens = old
                    .get("tokens")
                    .and_then(|v| v.as_l().ok())
                    .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
                    .unwrap_or_default();
                return Err(RedeemError::Replayed {
                    family: get_s(old, "family").unwrap_or_default().to_string(),
                    tokens,
                });
            }
            if get_n(old, "expires_at").unwrap_or(0) <= r.now {
                return Err(RedeemError::Expired);
            }
            return Err(RedeemError::Mismatch);
        }
        if reasons.get(3).is_some_and(failed_condition) {
            return Err(RedeemError::Mismatch);
        }
        Err(st(Error::Store(format!(
            "code redemption not stored: {reasons:?}"
        ))))
    }

    async fn rotate_refresh(&self, r: &RefreshRotation) -> Result<(), RotateError> {
        let st = |e: Error| RotateError::Store(e);
        let family_ok = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(family_pk(&r.family), "FAMILY")))
            .condition_expression("attribute_not_exists(#revoked) OR #revoked = :f")
            .set_expression_attribute_names(names(&["revoked"]))
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .build()
            .map_err(|e| st(build_err(e)))?;
        let use_old = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(token_pk(&r.old_hash), "TOKEN"))
            )
            .update_expression("SET #used_at = if_not_exists(#used_at, :now)")
            .condition_expression(
                "attribute_exists(#pk) AND #kind = :refresh AND #revoked = :f AND #expires_at > :now AND #client = :c AND #family = :fam AND (attribute_not_exists(#used_at) OR #used_at > :floor)",
            )
            .set_expression_attribute_names(names(&[
                "pk", "used_at", "kind", "revoked", "expires_at", "client", "family",
            ]))
            .expression_attribute_values(":refresh", s(TokenKind::Refresh.as_str()))
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .expression_attribute_values(":now", n(r.now))
            .expression_attribute_values(":c", s(&r.client_id))
            .expression_attribute_values(":fam", s(&r.family))
            .expression_attribute_values(":floor", n(r.grace_floor))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| st(build_err(e)))?;
        let items = vec![
            TransactWriteItem::builder()
                .condition_check(family_ok)
                .build(),
            TransactWriteItem::builder().update(use_old).build(),
            self.put_new_token(&r.access).map_err(st)?,
            self.put_new_token(&r.refresh).map_err(st)?,
        ];
        let Err(reasons) = self.transact(items).await.map_err(st)? else {
            return Ok(());
        };
        if reasons.first().is_some_and(failed_condition) {
            return Err(RotateError::Revoked);
        }
        if let Some(reason) = reasons.get(1).filter(|r| failed_condition(r)) {
            let Some(old) = reason.item().and_then(token_from) else {
                return Err(RotateError::NotFound);
            };
            if old.kind != TokenKind::Refresh
                || old.client_id != r.client_id
                || old.family != r.family
            {
                return Err(RotateError::Mismatch);
            }
            if old.revoked {
                return Err(RotateError::Revoked);
            }
            if old.expires_at <= r.now {
                return Err(RotateError::Expired);
            }
            return Err(RotateError::Reused { family: old.family });
        }
        Err(st(Error::Store(format!(
            "refresh rotation not stored: {reasons:?}"
        ))))
    }

    async fn revoke_family(&self, family: &str, known: &[String], now: i64) -> Result<(), Error> {
        let mut fam = key(family_pk(family), "FAMILY");
        fam.insert("revoked".into(), AttributeValue::Bool(true));
        fam.insert("revoked_at".into(), n(now));
        fam.insert("ttl".into(), self.ttl(now + 400 * 86_400));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(fam))
            .send()
            .await
            .map_err(|e| store_err("PutItem", e))?;
        let mut hashes: Vec<String> = known.to_vec();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI_FAMILY)
            .key_condition_expression("gsi1pk = :f")
            .expression_attribute_values(":f", s(family_pk(family)))
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| store_err("Query", e))?;
            if let Some(h) = get_s(&item, "pk").and_then(|pk| pk.strip_prefix("TOKEN#")) {
                if !hashes.iter().any(|k| k == h) {
                    hashes.push(h.to_string());
                }
            }
        }
        for h in hashes {
            let res = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(token_pk(&h), "TOKEN")))
                .update_expression("SET #revoked = :t, #revoked_at = :now")
                .condition_expression("attribute_exists(#pk)")
                .set_expression_attribute_names(names(&["pk", "revoked", "revoked_at"]))
                .expression_attribute_values(":t", AttributeValue::Bool(true))
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            if let Err(e) = res {
                let gone = e
                    .as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception());
                if !gone {
                    return Err(store_err("UpdateItem", e));
                }
            }
        }
        Ok(())
    }

    async fn get_token(&self, hash: &str) -> Result<Option<TokenRecord>, Error> {
        let item = self.get_consistent(key(token_pk(hash), "TOKEN")).await?;
        Ok(item.as_ref().and_then(token_from))
    }

    async fn get_connection(&self, id: &ConnectionId) -> Result<Option<Connection>, Error> {
        let item = self.get_consistent(key(conn_pk(id), "CONNECTION")).await?;
        let Some(item) = item.as_ref() else {
            return Ok(None);
        };
        let parse = || -> Option<Connection> {
            Some(Connection {
                id: id.clone(),
                user_id: UserId::parse(get_s(item, "user")?).ok()?,
                client_id: get_s(item, "client")?.to_string(),
                status: ConnectionStatus::parse(get_s(item, "status")?)?,
                created_at: get_n(item, "created_at")?,
                confirmed_at: get_n(item, "confirmed_at"),
            })
        };
        parse()
            .map(Some)
            .ok_or_else(|| Error::Store(format!("connection item {id} is malformed")))
    }

    async fn confirm_connection(
        &self,
        id: &ConnectionId,
        user: &UserId,
        now: i64,
    ) -> Result<(), Error> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(conn_pk(id), "CONNECTION")))
            .update_expression(
                "SET #status = :confirmed, #confirmed_at = if_not_exists(#confirmed_at, :now)",
            )
            .condition_expression("attribute_exists(#pk) AND #user = :u")
            .set_expression_attribute_names(names(&["pk", "user", "status", "confirmed_at"]))
            .expression_attribute_values(":u", s(user.as_str()))
            .expression_attribute_values(":confirmed", s(ConnectionStatus::Confirmed.as_str()))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Err(Error::InvalidToken(
                    "the connection is not linked to this token".into(),
                ))
            }
            Err(e) => Err(store_err("UpdateItem", e)),
        }
    }

    async fn put_listings(&self, listings: &UserListings) -> Result<(), Error> {
        for (id, loc) in &listings.locations {
            let mut item = key(format!("USER#{}", listings.user_id), &format!("LOC#{id}"));
            let doc = serde_json::to_string(loc).map_err(|e| Error::Store(e.to_string()))?;
            item.insert("doc".into(), s(doc));
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(|e| store_err("PutItem", e))?;
        }
        Ok(())
    }

    async fn list_locations(&self, user: &UserId) -> Result<Vec<Location>, Error> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :loc)")
            .expression_attribute_values(":pk", s(format!("USER#{user}")))
            .expression_attribute_values(":loc", s("LOC#"))
            .into_paginator()
            .items()
            .send();
        let mut out = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| store_err("Query", e))?;
            let doc = get_s(&item, "doc").unwrap_or("");
            let loc: Location = serde_json::from_str(doc)
                .map_err(|e| Error::Store(format!("location item of user {user}: {e}")))?;
            out.push(loc);
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

impl DynamoStore {
    /// A store on the table `table`, with the client configured from the
    /// standard AWS environment (`AWS_ENDPOINT_URL_DYNAMODB` and friends).
    pub async fn from_env(table: impl Into<String>) -> Self {
        let sdk = crate::aws_http::load_sdk_config()
            .await
            .expect("TLS configuration");
        Self::new(Client::new(&sdk), table)
    }
}

use super::CredentialsStore;
use crate::secrets::SecretString;
use crate::syncaroo::{CredentialStatus, NewCredentials, SyncarooCredentials};
use aws_sdk_dynamodb::types::ReturnValue;

const CREDS_PK: &str = "SYNCAROO";
const CREDS_SK: &str = "CREDENTIALS";

fn is_ccf<E>(e: &SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|se| se.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

impl DynamoStore {
    fn creds_update(
        &self,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(CREDS_PK, CREDS_SK)))
    }
}

#[async_trait]
impl CredentialsStore for DynamoStore {
    async fn get_credentials(&self) -> Result<Option<SyncarooCredentials>, Error> {
        let item = self.get_consistent(key(CREDS_PK, CREDS_SK)).await?;
        let Some(item) = item.as_ref() else {
            return Ok(None);
        };
        let parse = || -> Option<SyncarooCredentials> {
            Some(SyncarooCredentials {
                access_token: SecretString::new(get_s(item, "access_token")?),
                expires_at: get_n(item, "expires_at")?,
                refresh_token: SecretString::new(get_s(item, "refresh_token")?),
                version: get_n(item, "version")? as u64,
                lease_owner: get_s(item, "lease_owner").map(str::to_string),
                lease_until_ms: get_n(item, "lease_until_ms"),
                status: CredentialStatus::parse(get_s(item, "status")?)?,
                reason: get_s(item, "reason").map(str::to_string),
                updated_at: get_n(item, "updated_at").unwrap_or(0),
            })
        };
        parse()
            .map(Some)
            .ok_or_else(|| Error::Store("credentials item is malformed".into()))
    }

    async fn put_credentials(&self, new: &NewCredentials, now: i64) -> Result<u64, Error> {
        let out = self
            .creds_update()
            .update_expression(
                "SET #access_token = :a, #expires_at = :e, #refresh_token = :r, #status = :active, #updated_at = :now, #version = if_not_exists(#version, :zero) + :one REMOVE #lease_owner, #lease_until_ms, #reason",
            )
            .set_expression_attribute_names(names(&[
                "access_token", "expires_at", "refresh_token", "status", "updated_at", "version",
                "lease_owner", "lease_until_ms", "reason",
            ]))
            .expression_attribute_values(":a", s(new.access_token.expose()))
            .expression_attribute_values(":e", n(new.expires_at))
            .expression_attribute_values(":r", s(new.refresh_token.expose()))
            .expression_attribute_values(":active", s(CredentialStatus::Active.as_str()))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| store_err("UpdateItem", e))?;
        Ok(out
            .attributes()
            .and_then(|a| get_n(a, "version"))
            .unwrap_or(0) as u64)
    }

    async fn acquire_lease(
        &self,
        version: u64,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, Error> {
        let res = self
            .creds_update()
            .update_expression("SET #lease_owner = :o, #lease_until_ms = :u")
            .condition_expression(
                "#version = :v AND #status = :active AND (attribute_not_exists(#lease_until_ms) OR #lease_until_ms <= :now)",
            )
            .set_expression_attribute_names(names(&["lease_owner", "lease_until_ms", "version", "status"]))
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":u", n(until_ms))
            .expression_attribute_values(":v", n(version as i64))
            .expression_attribute_values(":active", s(CredentialStatus::Active.as_str()))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_ccf(&e) => Ok(false),
            Err(e) => Err(store_err("UpdateItem", e)),
        }
    }

    async fn complete_refresh(
        &self,
        version: u64,
        owner: &str,
        new: &NewCredentials,
        now: i64,
    ) -> Result<bool, Error> {
        let res = self
            .creds_update()
            .update_expression(
                "SET #access_token = :a, #expires_at = :e, #refresh_token = :r, #updated_at = :now, #version = #version + :one REMOVE #lease_owner, #lease_until_ms",
            )
            .condition_expression("#version = :v AND #lease_owner = :o")
            .set_expression_attribute_names(names(&[
                "access_token", "expires_at", "refresh_token", "updated_at", "version",
                "lease_owner", "lease_until_ms",
            ]))
            .expression_attribute_values(":a", s(new.access_token.expose()))
            .expression_attribute_values(":e", n(new.expires_at))
            .expression_attribute_values(":r", s(new.refresh_token.expose()))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":v", n(version as i64))
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_ccf(&e) => Ok(false),
            Err(e) => Err(store_err("UpdateItem", e)),
        }
    }

    async fn release_lease(&self, owner: &str) -> Result<(), Error> {
        let res = self
            .creds_update()
            .update_expression("REMOVE #lease_owner, #lease_until_ms")
            .condition_expression("#lease_owner = :o")
            .set_expression_attribute_names(names(&["lease_owner", "lease_until_ms"]))
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_ccf(&e) => Ok(()),
            Err(e) => Err(store_err("UpdateItem", e)),
        }
    }

    async fn mark_needs_reauth(&self, reason: &str, now: i64) -> Result<(), Error> {
        let res = self
            .creds_update()
            .update_expression(
                "SET #status = :n, #reason = :r, #updated_at = :now REMOVE #lease_owner, #lease_until_ms",
            )
            .condition_expression("attribute_exists(#pk)")
            .set_expression_attribute_names(names(&[
                "status", "reason", "updated_at", "lease_owner", "lease_until_ms", "pk",
            ]))
            .expression_attribute_values(":n", s(CredentialStatus::NeedsReauth.as_str()))
            .expression_attribute_values(":r", s(reason))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_ccf(&e) => Ok(()),
            Err(e) => Err(store_err("UpdateItem", e)),
        }
    }

    async fn put_oauth_state(&self, hash: &str, expires_at: i64) -> Result<(), Error> {
        let mut item = key(format!("ADMINSTATE#{hash}"), "STATE");
        item.insert("expires_at".into(), n(expires_at));
        item.insert("ttl".into(), self.ttl(expires_at));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_err("PutItem", e))?;
        Ok(())
    }

    async fn take_oauth_state(&self, hash: &str, now: i64) -> Result<bool, Error> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("ADMINSTATE#{hash}"), "STATE")))
            .condition_expression("attribute_exists(#pk) AND #expires_at > :now")
            .set_expression_attribute_names(names(&["pk", "expires_at"]))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_ccf(&e) => Ok(false),
            Err(e) => Err(store_err("DeleteItem", e)),
        }
    }
}

use super::{EventRecord, EventStatus, EventStore, LocationStatus, SyncedData};
use crate::webhook::WebhookType;

/// Webhook events are kept this long (replays within it are recognised).
const EVENT_KEEP_SECS: i64 = 30 * 86_400;

fn event_pk(id: &str) -> String {
    format!("EVENT#{id}")
}
fn sync_pk(conn: &ConnectionId, location: &str) -> String {
    format!("SYNC#{conn}#{location}")
}
fn data_sk(attr: &str, resource: Option<&str>) -> String {
    format!("DATA#{attr}#{}", resource.unwrap_or("-"))
}

fn event_from(item: &Item) -> Option<EventRecord> {
    Some(EventRecord {
        id: get_s(item, "pk")?.strip_prefix("EVENT#")?.to_string(),
        connection_id: ConnectionId::parse(get_s(item, "conn")?).ok()?,
        webhook_type: WebhookType::parse(get_s(item, "type")?)?,
        location_id: get_s(item, "location")?.to_string(),
        payload: get_s(item, "payload")?.to_string(),
        received_at_ms: get_n(item, "received_at_ms")?,
        status: EventStatus::parse(get_s(item, "status")?)?,
        attempts: get_n(item, "attempts").unwrap_or(0) as u32,
        error: get_s(item, "error").map(str::to_string),
    })
}

/// The event item for `e`: also what the stream delivers to the worker.
/// `ttl_shift` as in [`DynamoStore::with_ttl_shift`].
pub fn event_item(e: &EventRecord, ttl_shift: i64) -> Item {
    let mut item = key(event_pk(&e.id), "EVENT");
    item.insert("conn".into(), s(e.connection_id.as_str()));
    item.insert("type".into(), s(e.webhook_type.as_str()));
    item.insert("location".into(), s(&e.location_id));
    item.insert("payload".into(), s(&e.payload));
    item.insert("received_at_ms".into(), n(e.received_at_ms));
    item.insert("status".into(), s(e.status.as_str()));
    item.insert("attempts".into(), n(e.attempts as i64));
    item.insert(
        "ttl".into(),
        n(e.received_at_ms / 1000 + EVENT_KEEP_SECS + ttl_shift),
    );
    item
}

/// An event from a stream record's `NewImage` (DynamoDB JSON).
pub fn event_from_stream_image(image: &serde_json::Value) -> Option<EventRecord> {
    let obj = image.as_object()?;
    let mut item = Item::new();
    for (k, v) in obj {
        if let Some(sv) = v.get("S").and_then(|x| x.as_str()) {
            item.insert(k.clone(), s(sv));
        } else if let Some(nv) = v.get("N").and_then(|x| x.as_str()) {
            item.insert(k.clone(), AttributeValue::N(nv.to_string()));
        }
    }
    event_from(&item)
}

#[async_trait]
impl EventStore for DynamoStore {
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
        let item = self.get_consistent(key(event_pk(id), "EVENT")).await?;
        Ok(item.as_ref().and_then(event_from))
    }

    async fn start_attempt(&self, id: &str) -> Result<Option<u32>, Error> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(event_pk(id), "EVENT")))
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
            .set_key(Some(key(event_pk(id), "EVENT")))
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
        let mut item = key(
            sync_pk(&d.connection_id, &d.location_id),
            &data_sk(&d.attribute_type, d.resource_id.as_deref()),
        );
        item.insert("data".into(), s(&d.data));
        item.insert("pages".into(), n(d.pages as i64));
        item.insert("fetched_at_ms".into(), n(d.fetched_at_ms));
        item.insert("event_id".into(), s(&d.event_id));
        self.put_if(
            item,
            "attribute_not_exists(#pk) OR #fetched_at_ms < :f",
            &["pk", "fetched_at_ms"],
            vec![(":f", n(d.fetched_at_ms))],
        )
        .await
    }

    async fn get_synced(
        &self,
        connection: &ConnectionId,
        location: &str,
        attribute_type: &str,
        resource: Option<&str>,
    ) -> Result<Option<SyncedData>, Error> {
        let item = self
            .get_consistent(key(
                sync_pk(connection, location),
                &data_sk(attribute_type, resource),
            ))
            .await?;
        let Some(item) = item.as_ref() else {
            return Ok(None);
        };
        Ok(Some(SyncedData {
            connection_id: connection.clone(),
            location_id: location.to_string(),
            attribute_type: attribute_type.to_string(),
            resource_id: resource.map(str::to_string),
            data: get_s(item, "data").unwrap_or("[]").to_string(),
            pages: get_n(item, "pages").unwrap_or(0) as u32,
            fetched_at_ms: get_n(item, "fetched_at_ms").unwrap_or(0),
            event_id: get_s(item, "event_id").unwrap_or_default().to_string(),
        }))
    }

    async fn put_location_status(&self, st: &LocationStatus) -> Result<bool, Error> {
        let mut item = key(sync_pk(&st.connection_id, &st.location_id), "STATUS");
        item.insert("meta".into(), s(&st.meta));
        item.insert("received_at_ms".into(), n(st.received_at_ms));
        item.insert("event_id".into(), s(&st.event_id));
        self.put_if(
            item,
            "attribute_not_exists(#pk) OR #received_at_ms < :r",
            &["pk", "received_at_ms"],
            vec![(":r", n(st.received_at_ms))],
        )
        .await
    }

    async fn get_location_status(
        &self,
        connection: &ConnectionId,
        location: &str,
    ) -> Result<Option<LocationStatus>, Error> {
        let item = self
            .get_consistent(key(sync_pk(connection, location), "STATUS"))
            .await?;
        let Some(item) = item.as_ref() else {
            return Ok(None);
        };
        Ok(Some(LocationStatus {
            connection_id: connection.clone(),
            location_id: location.to_string(),
            meta: get_s(item, "meta").unwrap_or("{}").to_string(),
            received_at_ms: get_n(item, "received_at_ms").unwrap_or(0),
            event_id: get_s(item, "event_id").unwrap_or_default().to_string(),
        }))
    }
}
