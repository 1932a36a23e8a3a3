//! Connections as the platform API sees them: listed (one user's through
//! the GSI, or all by a scan), revoked, and when each last had a webhook.

use super::grants::{conn_pk, hooks_pk};
use super::item::*;
use super::items::{read, ConnectionItem};
use super::{DynamoStore, GSI_FAMILY};
use crate::error::Error;
use crate::model::{AuthCodeRecord, Connection, ConnectionId, ConnectionStatus, UserId};
use crate::store::keys::{connection_id_of, CONNECTION_SK};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, ReturnValue, TransactWriteItem, Update,
};

/// A condition on a connection item: it exists, is not revoked, and no
/// revocation ended the token family `:fam` (names `#pk`, `#status`,
/// `#revoked_fams`; values `:revoked`, `:fam`).
pub(super) const ACCEPTS_FAMILY: &str =
    "attribute_exists(#pk) AND #status <> :revoked AND NOT contains(#revoked_fams, :fam)";

pub(super) fn connection_from(item: &Item) -> Option<Connection> {
    let i: ConnectionItem = read(item)?;
    Some(Connection {
        id: ConnectionId::parse(connection_id_of(&i.pk)?).ok()?,
        user_id: UserId::parse(&i.user).ok()?,
        client_id: i.client,
        status: ConnectionStatus::parse(&i.status)?,
        created_at: i.created_at,
        confirmed_at: i.confirmed_at,
        revoked_at: i.revoked_at,
        revoked_families: i.revoked_fams,
        generation: i.gen,
    })
}

fn malformed() -> Error {
    Error::corrupt("a connection item is malformed")
}

impl DynamoStore {
    /// One user's connections (the GSI holds their keys), by id.
    pub(super) async fn user_connections(
        &self,
        user_pk: &str,
        after: Option<&ConnectionId>,
        limit: usize,
    ) -> Result<(Vec<Connection>, Option<ConnectionId>), Error> {
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI_FAMILY)
            .expression_attribute_values(":u", s(user_pk))
            .limit(limit as i32 + 1);
        let q = match after {
            Some(a) => q
                .key_condition_expression("gsi1pk = :u AND gsi1sk > :after")
                .expression_attribute_values(":after", s(conn_pk(a))),
            None => q.key_condition_expression("gsi1pk = :u"),
        };
        let out = q.send().await.map_err(|e| store_err("Query", e))?;
        let keys = out.items();
        // The page's connection items, read concurrently, in index order.
        let reads = keys.iter().take(limit).map(|k| async move {
            let pk = get_s(k, "pk").ok_or_else(malformed)?;
            match self
                .get_consistent(key(pk.to_string(), CONNECTION_SK))
                .await?
            {
                Some(item) => connection_from(&item).map(Some).ok_or_else(malformed),
                None => Ok(None),
            }
        });
        let conns: Vec<Connection> = futures_util::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect();
        let next = (keys.len() > limit)
            .then(|| conns.last().map(|c| c.id.clone()))
            .flatten();
        Ok((conns, next))
    }

    /// Every connection, a page at a time (a scan: the operator's view).
    pub(super) async fn all_connections(
        &self,
        after: Option<&ConnectionId>,
        limit: usize,
    ) -> Result<(Vec<Connection>, Option<ConnectionId>), Error> {
        let mut start = after.map(|a| key(conn_pk(a), CONNECTION_SK));
        let mut conns = Vec::new();
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("sk = :c")
                .expression_attribute_values(":c", s(CONNECTION_SK))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_err("Scan", e))?;
            for item in out.items() {
                conns.push(connection_from(item).ok_or_else(malformed)?);
                if conns.len() == limit {
                    let next = conns.last().map(|c| c.id.clone());
                    return Ok((conns, next));
                }
            }
            match out.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => return Ok((conns, None)),
            }
        }
    }

    /// Marks the connection revoked, and every token family it had as
    /// ended (`revoked_fams`, a copy of `families` in the same write):
    /// every token check reads the connection, so this one write refuses
    /// them all. It and the token families it had.
    pub(super) async fn mark_revoked(
        &self,
        id: &ConnectionId,
        now: i64,
    ) -> Result<Option<(Connection, Vec<String>)>, Error> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(conn_pk(id), CONNECTION_SK)))
            .update_expression(
                "SET #status = :revoked, #revoked_at = if_not_exists(#revoked_at, :now), #revoked_fams = #families",
            )
            .condition_expression("attribute_exists(#pk)")
            .set_expression_attribute_names(names(&[
                "pk",
                "status",
                "revoked_at",
                "revoked_fams",
                "families",
            ]))
            .expression_attribute_values(":revoked", s(ConnectionStatus::Revoked.as_str()))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let item = match res {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(e) if is_ccf(&e) => return Ok(None),
            Err(e) => return Err(store_err("UpdateItem", e)),
        };
        let families = match item.get("families") {
            Some(AttributeValue::Ss(f)) => f.clone(),
            _ => Vec::new(),
        };
        let conn = connection_from(&item).ok_or_else(malformed)?;
        Ok(Some((conn, families)))
    }

    /// When the connection's latest webhook was recorded, from the GSI
    /// entries its target notes and status changes carry.
    pub(super) async fn last_webhook_ms(&self, id: &ConnectionId) -> Result<Option<i64>, Error> {
        let out = self
            .hooks_query(id)
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(|e| store_err("Query", e))?;
        Ok(out
            .items()
            .first()
            .and_then(|i| get_s(i, "gsi1sk"))
            .and_then(|v| v.parse().ok()))
    }
}

impl DynamoStore {
    /// A query of the GSI entries of the connection's webhooks (its target
    /// notes and legacy events), by receipt time.
    fn hooks_query(
        &self,
        id: &ConnectionId,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(GSI_FAMILY)
            .key_condition_expression("gsi1pk = :h")
            .expression_attribute_values(":h", s(hooks_pk(id)))
    }

    /// The table keys of the connection's targets, from the GSI entries
    /// their notes carry (every page; the legacy events' entries left out).
    pub(super) async fn hook_keys(&self, id: &ConnectionId) -> Result<Vec<String>, Error> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .hooks_query(id)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_err("Query", e))?;
            keys.extend(
                out.items()
                    .iter()
                    .filter_map(|i| get_s(i, "pk"))
                    .filter(|pk| crate::store::keys::is_target_pk(pk))
                    .map(str::to_string),
            );
            start = out.last_evaluated_key;
            if start.is_none() {
                keys.sort();
                keys.dedup();
                return Ok(keys);
            }
        }
    }
}

/// Every family a revoked connection item had: what its revocation ended
/// (`revoked_fams`; a connection revoked before that attribute existed has
/// only `families`, all of them from before the revocation).
pub(super) fn ended_families(old: &Item) -> Vec<String> {
    let mut all: Vec<String> = ["families", "revoked_fams"]
        .iter()
        .filter_map(|k| match old.get(*k) {
            Some(AttributeValue::Ss(f)) => Some(f.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    all.sort();
    all.dedup();
    all
}

impl DynamoStore {
    /// A revoked connection bound to `code`'s user, started afresh: pending
    /// again, its revocation, authorization and confirmation times cleared
    /// (the last revocation kept as `last_revoked_at`), the families the
    /// revocation ended still recorded, the new family added.
    pub(super) fn afresh_update(
        &self,
        code: &AuthCodeRecord,
        ended: Vec<String>,
    ) -> Result<Update, Error> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(conn_pk(&code.connection_id), CONNECTION_SK)))
            .condition_expression("#user = :u AND #status = :revoked")
            .expression_attribute_values(":u", s(code.user_id.as_str()))
            .expression_attribute_values(":revoked", s(ConnectionStatus::Revoked.as_str()))
            .expression_attribute_values(":pending", s(ConnectionStatus::Pending.as_str()))
            .expression_attribute_values(":family", AttributeValue::Ss(vec![code.family.clone()]))
            .expression_attribute_values(":gen", s(crate::crypto::random_b64(12)));
        let mut set =
            String::from("SET #status = :pending, #last_revoked_at = #revoked_at, #gen = :gen");
        if !ended.is_empty() {
            set.push_str(", #revoked_fams = :ended");
            update = update.expression_attribute_values(":ended", AttributeValue::Ss(ended));
        }
        update
            .update_expression(format!(
                "{set} REMOVE #revoked_at, #confirmed_at, #authorized_at ADD #families :family"
            ))
            .set_expression_attribute_names(names(&[
                "user",
                "status",
                "last_revoked_at",
                "revoked_at",
                "revoked_fams",
                "confirmed_at",
                "authorized_at",
                "families",
                "gen",
            ]))
            .build()
            .map_err(build_err)
    }

    /// A transaction's check that the connection is still the generation
    /// `gen` names, and not revoked (empty: created before generations,
    /// and no consent since gave it one).
    pub(super) fn connection_live(
        &self,
        conn: &ConnectionId,
        gen: &str,
    ) -> Result<TransactWriteItem, Error> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(conn_pk(conn), CONNECTION_SK)))
            .set_expression_attribute_names(names(&["pk", "status", "gen"]))
            .expression_attribute_values(":revoked", s(ConnectionStatus::Revoked.as_str()));
        let check = if gen.is_empty() {
            check.condition_expression(
                "attribute_exists(#pk) AND attribute_not_exists(#gen) AND #status <> :revoked",
            )
        } else {
            check
                .condition_expression(
                    "attribute_exists(#pk) AND #gen = :gen AND #status <> :revoked",
                )
                .expression_attribute_values(":gen", s(gen))
        };
        Ok(TransactWriteItem::builder()
            .condition_check(check.build().map_err(build_err)?)
            .build())
    }

    /// A transaction's check that the connection still accepts tokens of
    /// `family` (not revoked, and the family not ended by a revocation).
    pub(super) fn connection_accepts(
        &self,
        conn: &ConnectionId,
        family: &str,
    ) -> Result<ConditionCheck, Error> {
        ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(conn_pk(conn), CONNECTION_SK)))
            .condition_expression(ACCEPTS_FAMILY)
            .set_expression_attribute_names(names(&["pk", "status", "revoked_fams"]))
            .expression_attribute_values(":revoked", s(ConnectionStatus::Revoked.as_str()))
            .expression_attribute_values(":fam", s(family))
            .build()
            .map_err(build_err)
    }
}
