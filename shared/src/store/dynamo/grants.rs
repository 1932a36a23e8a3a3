//! Codes, tokens, token families and connections.

use super::connections::ACCEPTS_FAMILY;
use super::grant_steps::{redeem_refusal, Authz, Redeem, Rotate};
use super::item::*;
use super::items::{read, write, CodeItem, TokenItem};
use super::tx::Tx;
use super::{DynamoStore, GSI_FAMILY};
use crate::error::Error;
use crate::model::{
    AuthCodeRecord, Connection, ConnectionId, ConnectionStatus, TokenKind, TokenRecord, UserId,
};
use crate::store::grants::FORM_USED;
use crate::store::{
    CodeRedemption, ConnectionInfo, GrantStore, RedeemError, RefreshRotation, RotateError,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

/// Seconds a used or expired credential's item is kept so a replay is still
/// recognised as one before DynamoDB's TTL deletes it.
const KEEP_AFTER_EXPIRY: i64 = 86_400;

use crate::store::keys::{
    code_pk, family_pk, form_pk, owned_pk, owned_sk, token_hash_of, token_pk,
    user_connections_pk as user_conns_pk, CODE_SK, CONNECTION_SK, FAMILY_SK, FORM_SK, TOKEN_SK,
};
pub(super) use crate::store::keys::{connection_pk as conn_pk, hook_sk, hooks_pk};

pub(super) fn token_item(t: &TokenRecord, ttl_shift: i64) -> Item {
    write(&TokenItem {
        pk: token_pk(&t.hash),
        sk: TOKEN_SK.into(),
        kind: t.kind.as_str().into(),
        conn: t.connection_id.as_str().into(),
        user: t.user_id.as_str().into(),
        client: t.client_id.clone(),
        family: t.family.clone(),
        expires_at: t.expires_at,
        revoked: t.revoked,
        used_at: t.used_at,
        ttl: Some(t.expires_at + KEEP_AFTER_EXPIRY + ttl_shift),
        gsi1pk: Some(family_pk(&t.family)),
        gsi1sk: Some(token_pk(&t.hash)),
    })
}

fn token_from(item: &Item) -> Option<TokenRecord> {
    let i: TokenItem = read(item)?;
    Some(TokenRecord {
        hash: token_hash_of(&i.pk)?.to_string(),
        kind: TokenKind::parse(&i.kind)?,
        connection_id: ConnectionId::parse(&i.conn).ok()?,
        user_id: UserId::parse(&i.user).ok()?,
        client_id: i.client,
        family: i.family,
        expires_at: i.expires_at,
        revoked: i.revoked,
        used_at: i.used_at,
    })
}

impl DynamoStore {
    /// A consent's code, stored unconsumed (never over another).
    fn put_code(&self, code: &AuthCodeRecord) -> Result<TransactWriteItem, Error> {
        let item = write(&CodeItem {
            pk: code_pk(&code.hash),
            sk: CODE_SK,
            conn: code.connection_id.as_str(),
            user: code.user_id.as_str(),
            client: &code.client_id,
            redirect: &code.redirect_uri,
            family: &code.family,
            expires_at: code.expires_at,
            consumed: false,
            ttl: self.ttl_secs(code.expires_at + KEEP_AFTER_EXPIRY),
            gsi1pk: owned_pk(&code.connection_id),
            gsi1sk: owned_sk(&code_pk(&code.hash), CODE_SK),
        });
        self.put(item, Some("attribute_not_exists(pk)"))
    }

    /// Binds the connection to the code's user, creating it if new. A
    /// revoked one is not bound (the condition fails, returning it): the
    /// caller starts it afresh.
    fn bind_step(&self, code: &AuthCodeRecord, now: i64) -> Result<TransactWriteItem, Error> {
        let bind = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(conn_pk(&code.connection_id), CONNECTION_SK)))
            .update_expression(
                "SET #user = :u, #client = if_not_exists(#client, :c), #status = if_not_exists(#status, :pending), #created_at = if_not_exists(#created_at, :now), #gsi1pk = :byuser, #gsi1sk = :self, #gen = if_not_exists(#gen, :gen) ADD #families :family",
            )
            .condition_expression("attribute_not_exists(#pk) OR (#user = :u AND #status <> :revoked)")
            .set_expression_attribute_names(names(&[
                "pk", "user", "client", "status", "created_at", "gsi1pk", "gsi1sk", "families", "gen",
            ]))
            .expression_attribute_values(":gen", s(crate::crypto::random_b64(12)))
            .expression_attribute_values(":byuser", s(user_conns_pk(&code.user_id)))
            .expression_attribute_values(":self", s(conn_pk(&code.connection_id)))
            .expression_attribute_values(
                ":family",
                AttributeValue::Ss(vec![code.family.clone()]),
            )
            .expression_attribute_values(":u", s(code.user_id.as_str()))
            .expression_attribute_values(":c", s(&code.client_id))
            .expression_attribute_values(":pending", s(ConnectionStatus::Pending.as_str()))
            .expression_attribute_values(":revoked", s(ConnectionStatus::Revoked.as_str()))
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().update(bind).build())
    }

    /// A redemption's step that consumes the code: unconsumed, unexpired,
    /// and issued for this client, connection, user, family (and redirect
    /// URI, when the exchange names one). Refused, it returns the code.
    fn consume_step(&self, r: &CodeRedemption) -> Result<TransactWriteItem, Error> {
        let mut cond = String::from(
            "attribute_exists(#pk) AND #consumed = :f AND #expires_at > :now AND #client = :c AND #conn = :conn AND #user = :u AND #family = :fam",
        );
        let mut consume = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(code_pk(&r.code_hash), CODE_SK)))
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
        if let Some(uri) = &r.redirect_uri {
            cond.push_str(" AND #redirect = :ru");
            consume = consume.expression_attribute_values(":ru", s(uri));
            attrs.push("redirect");
        }
        let consume = consume
            .set_expression_attribute_names(names(&attrs))
            .condition_expression(cond)
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().update(consume).build())
    }

    /// A redemption's step that marks the connection authorized, if it
    /// still accepts the code's family and belongs to its user.
    fn authorize_step(&self, r: &CodeRedemption) -> Result<TransactWriteItem, Error> {
        let authorize_conn = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(conn_pk(&r.connection_id), CONNECTION_SK)))
            .update_expression("SET #status = :authorized, #authorized_at = :now")
            // A code consented before a revocation is dead (its family ended).
            .condition_expression(format!("{ACCEPTS_FAMILY} AND #user = :u"))
            .set_expression_attribute_names(names(&[
                "pk",
                "user",
                "status",
                "authorized_at",
                "revoked_fams",
            ]))
            .expression_attribute_values(":u", s(r.user_id.as_str()))
            .expression_attribute_values(":fam", s(&r.family))
            .expression_attribute_values(":revoked", s(ConnectionStatus::Revoked.as_str()))
            .expression_attribute_values(":authorized", s(ConnectionStatus::Authorized.as_str()))
            .expression_attribute_values(":now", n(r.now))
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().update(authorize_conn).build())
    }
}

#[async_trait]
impl GrantStore for DynamoStore {
    async fn begin_authorization_from(
        &self,
        code: &AuthCodeRecord,
        form: Option<&str>,
        now: i64,
    ) -> Result<(), Error> {
        let put_code = self.put_code(code)?;
        let bind = self.bind_step(code, now)?;
        let form_step = |code: &AuthCodeRecord| -> Result<Option<TransactWriteItem>, Error> {
            // The form's single use, in the same transaction.
            form.map(|f| {
                let mut used = key(form_pk(f), FORM_SK);
                used.insert("ttl".into(), self.ttl(code.expires_at + KEEP_AFTER_EXPIRY));
                used.insert("gsi1pk".into(), s(owned_pk(&code.connection_id)));
                used.insert("gsi1sk".into(), s(owned_sk(&form_pk(f), FORM_SK)));
                self.put(used, Some("attribute_not_exists(pk)"))
            })
            .transpose()
        };
        let tx = Tx::new()
            .step(Authz::Code, put_code.clone())
            .step(Authz::Connection, bind)
            .maybe(Authz::Form, form_step(code)?);
        let Err(cancelled) = self.run(tx).await? else {
            return Ok(());
        };
        if cancelled.failed(Authz::Form).is_some() {
            return Err(Error::InvalidRequest(FORM_USED.into()));
        }
        let Some(bound) = cancelled.failed(Authz::Connection) else {
            return Err(cancelled.unexpected("authorization"));
        };
        let old = bound.item();
        let revoked_before = old.is_some_and(|o| {
            get_s(o, "user") == Some(code.user_id.as_str())
                && get_s(o, "status") == Some(ConnectionStatus::Revoked.as_str())
        });
        if !revoked_before {
            return Err(Error::Conflict(
                "this Syncaroo connection is linked to another account".into(),
            ));
        }
        // A new consent after a revocation: the connection starts afresh.
        let ended = super::connections::ended_families(old.expect("checked above"));
        let afresh = self.afresh_update(code, ended)?;
        let tx = Tx::new()
            .step(Authz::Code, put_code)
            .step(
                Authz::Connection,
                TransactWriteItem::builder().update(afresh).build(),
            )
            .maybe(Authz::Form, form_step(code)?);
        match self.run(tx).await? {
            Ok(()) => Ok(()),
            Err(c) if c.failed(Authz::Form).is_some() => {
                Err(Error::InvalidRequest(FORM_USED.into()))
            }
            // Started afresh by a concurrent consent, or bound elsewhere
            // meanwhile: the caller's user sees it as a retry would.
            Err(_) => Err(Error::Conflict(
                "the connection changed during this consent; start again from Syncaroo".into(),
            )),
        }
    }

    async fn redeem_code(&self, r: &CodeRedemption) -> Result<(), RedeemError> {
        let st = |e: Error| RedeemError::Store(e);
        // A code issued before its connection was revoked is dead too.
        let family_live = self.family_not_revoked(&r.family).map_err(st)?;
        let tx = Tx::new()
            .step(Redeem::Consume, self.consume_step(r).map_err(st)?)
            .step(Redeem::Access, self.put_new_token(&r.access).map_err(st)?)
            .step(Redeem::Refresh, self.put_new_token(&r.refresh).map_err(st)?)
            .step(Redeem::Connection, self.authorize_step(r).map_err(st)?)
            .step(
                Redeem::Family,
                TransactWriteItem::builder()
                    .condition_check(family_live)
                    .build(),
            );
        match self.run(tx).await.map_err(st)? {
            Ok(()) => Ok(()),
            Err(cancelled) => Err(redeem_refusal(&cancelled, r.now)),
        }
    }

    async fn rotate_refresh(&self, r: &RefreshRotation) -> Result<(), RotateError> {
        let st = |e: Error| RotateError::Store(e);
        let family_ok = self.family_not_revoked(&r.family).map_err(st)?;
        let use_old = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(token_pk(&r.old_hash), TOKEN_SK))
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
        let conn_ok = self
            .connection_accepts(&r.access.connection_id, &r.family)
            .map_err(st)?;
        let tx = Tx::new()
            .step(
                Rotate::Family,
                TransactWriteItem::builder()
                    .condition_check(family_ok)
                    .build(),
            )
            .step(
                Rotate::UseOld,
                TransactWriteItem::builder().update(use_old).build(),
            )
            .step(Rotate::Access, self.put_new_token(&r.access).map_err(st)?)
            .step(Rotate::Refresh, self.put_new_token(&r.refresh).map_err(st)?)
            .step(
                Rotate::Connection,
                TransactWriteItem::builder()
                    .condition_check(conn_ok)
                    .build(),
            );
        let Err(cancelled) = self.run(tx).await.map_err(st)? else {
            return Ok(());
        };
        if cancelled.any_failed(&[Rotate::Family, Rotate::Connection]) {
            return Err(RotateError::Revoked);
        }
        if let Some(reason) = cancelled.failed(Rotate::UseOld) {
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
        // The old token is fine (unused or inside the grace window) and the
        // successors exist already: an identical rotation made them (they
        // are derived from the old token), so this copy gets the same pair.
        if cancelled.any_failed(&[Rotate::Access, Rotate::Refresh]) {
            return Ok(());
        }
        Err(st(cancelled.unexpected("refresh rotation")))
    }

    async fn revoke_family(&self, family: &str, known: &[String], now: i64) -> Result<(), Error> {
        self.put_family_revoked(family, now).await?;
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
            if let Some(h) = get_s(&item, "pk").and_then(token_hash_of) {
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
                .set_key(Some(key(token_pk(&h), TOKEN_SK)))
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
        let item = self.get_consistent(key(token_pk(hash), TOKEN_SK)).await?;
        Ok(item.as_ref().and_then(token_from))
    }

    async fn get_token_and_connection(
        &self,
        hash: &str,
        connection: &ConnectionId,
    ) -> Result<(Option<TokenRecord>, Option<Connection>), Error> {
        let items = self
            .batch_get_consistent(vec![
                key(token_pk(hash), TOKEN_SK),
                key(conn_pk(connection), CONNECTION_SK),
            ])
            .await?;
        let mut token = None;
        let mut conn = None;
        for item in &items {
            match get_s(item, "sk") {
                Some(TOKEN_SK) => token = token_from(item),
                Some(CONNECTION_SK) => {
                    conn = Some(super::connections::connection_from(item).ok_or_else(|| {
                        Error::corrupt(format!("connection item {connection} is malformed"))
                    })?)
                }
                _ => {}
            }
        }
        Ok((token, conn))
    }

    async fn get_connection(&self, id: &ConnectionId) -> Result<Option<Connection>, Error> {
        let item = self.get_consistent(key(conn_pk(id), CONNECTION_SK)).await?;
        let Some(item) = item.as_ref() else {
            return Ok(None);
        };
        super::connections::connection_from(item)
            .map(Some)
            .ok_or_else(|| Error::corrupt(format!("connection item {id} is malformed")))
    }

    async fn list_connections(
        &self,
        user: Option<&UserId>,
        after: Option<&ConnectionId>,
        limit: usize,
    ) -> Result<(Vec<ConnectionInfo>, Option<ConnectionId>), Error> {
        let (conns, next) = match user {
            Some(u) => {
                self.user_connections(&user_conns_pk(u), after, limit)
                    .await?
            }
            None => self.all_connections(after, limit).await?,
        };
        // Each one's last webhook, looked up concurrently.
        let out = futures_util::future::try_join_all(conns.into_iter().map(|c| async move {
            Ok::<_, Error>(ConnectionInfo {
                last_webhook_at_ms: self.last_webhook_ms(&c.id).await?,
                connection: c,
            })
        }))
        .await?;
        Ok((out, next))
    }

    async fn revoke_connection(
        &self,
        id: &ConnectionId,
        now: i64,
    ) -> Result<Option<Connection>, Error> {
        let Some((conn, families)) = self.mark_revoked(id, now).await? else {
            return Ok(None);
        };
        // The connection's one write above already refuses every token
        // (each check reads the connection). The family items also stop
        // the token endpoint; one per consent, idempotent, so a revocation
        // that fails here is finished by calling it again. Token items are
        // not touched: their TTL deletes them.
        futures_util::future::try_join_all(
            families.iter().map(|f| self.put_family_revoked(f, now)),
        )
        .await?;
        Ok(Some(conn))
    }

    async fn confirm_connection(
        &self,
        id: &ConnectionId,
        user: &UserId,
        family: &str,
        now: i64,
    ) -> Result<bool, Error> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(conn_pk(id), CONNECTION_SK)))
            // The old values tell whether this call set `confirmed_at`.
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedOld)
            .update_expression(
                "SET #status = :confirmed, #confirmed_at = if_not_exists(#confirmed_at, :now)",
            )
            // The connection must still accept the token's family: a
            // revocation between the token's read and this write refuses it.
            .condition_expression(format!("{ACCEPTS_FAMILY} AND #user = :u"))
            .set_expression_attribute_names(names(&[
                "pk",
                "user",
                "status",
                "confirmed_at",
                "revoked_fams",
            ]))
            .expression_attribute_values(":u", s(user.as_str()))
            .expression_attribute_values(":fam", s(family))
            .expression_attribute_values(":confirmed", s(ConnectionStatus::Confirmed.as_str()))
            .expression_attribute_values(":revoked", s(ConnectionStatus::Revoked.as_str()))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match res {
            Ok(out) => Ok(!out
                .attributes()
                .is_some_and(|old| old.contains_key("confirmed_at"))),
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
}

impl DynamoStore {
    /// Records `family` as revoked: its refresh tokens and codes are refused
    /// at the token endpoint from now on.
    async fn put_family_revoked(&self, family: &str, now: i64) -> Result<(), Error> {
        let mut fam = key(family_pk(family), FAMILY_SK);
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
        Ok(())
    }

    /// A transaction's check that `family` has not been revoked.
    fn family_not_revoked(&self, family: &str) -> Result<ConditionCheck, Error> {
        ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(family_pk(family), FAMILY_SK)))
            .condition_expression("attribute_not_exists(#revoked) OR #revoked = :f")
            .set_expression_attribute_names(names(&["revoked"]))
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .build()
            .map_err(build_err)
    }
}
