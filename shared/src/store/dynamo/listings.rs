//! The platform's listings: one item per location of a user.

use super::item::*;
use super::tx::Tx;
use super::DynamoStore;
use crate::error::Error;
use crate::model::{Location, UserId, UserListings};
use crate::store::keys::{
    location_of, location_sk, user_pk, LISTINGS_VERSION_SK, LOCATION_SK_PREFIX,
};
use crate::store::listings::MAX_PUSHED_LOCATIONS;
use crate::store::ListingStore;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem, Update};
use std::collections::BTreeMap;

/// The partition's version item: a replacement writes it conditionally, so
/// two pushes racing cannot interleave their deletes and puts.
const VERSION_SK: &str = LISTINGS_VERSION_SK;

/// The steps of a listings push.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Push {
    /// The user's listings version, guarded by the one read.
    Version,
    /// A location deleted or written.
    Location,
}

#[async_trait]
impl ListingStore for DynamoStore {
    async fn put_listings(&self, listings: &UserListings) -> Result<(), Error> {
        for (id, loc) in &listings.locations {
            let mut item = key(user_pk(&listings.user_id), &location_sk(id));
            let doc = serde_json::to_string(loc)
                .map_err(|e| Error::corrupt(format!("a location as JSON: {e}")))?;
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

    async fn replace_listings(
        &self,
        user: &UserId,
        locations: &BTreeMap<String, Location>,
    ) -> Result<(), Error> {
        if locations.len() > MAX_PUSHED_LOCATIONS {
            return Err(Error::InvalidRequest(format!(
                "at most {MAX_PUSHED_LOCATIONS} locations per push"
            )));
        }
        let pk = user_pk(user);
        loop {
            let (old, version) = self.stored_locations(&pk).await?;
            let gone: Vec<&String> = old
                .iter()
                .filter(|id| !locations.contains_key(*id))
                .collect();
            // One transaction holds 100 steps: the version, the deletes, the
            // puts. More old locations than fit go first, 99 at a time, each
            // step guarded by the version like the last one.
            let room = TRANSACTION_STEPS - 1 - locations.len();
            let last = gone.len() <= room;
            let mut tx = Tx::new().step(Push::Version, self.bump_version(&pk, version)?);
            for id in gone
                .iter()
                .take(if last { room } else { TRANSACTION_STEPS - 1 })
            {
                let del = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(pk.clone(), &location_sk(id))))
                    .build()
                    .map_err(build_err)?;
                tx = tx.step(
                    Push::Location,
                    TransactWriteItem::builder().delete(del).build(),
                );
            }
            if last {
                for (id, loc) in locations {
                    let mut item = key(pk.clone(), &location_sk(id));
                    let doc = serde_json::to_string(loc)
                        .map_err(|e| Error::corrupt(format!("a location as JSON: {e}")))?;
                    item.insert("doc".into(), s(doc));
                    tx = tx.step(Push::Location, self.put(item, None)?);
                }
            }
            if let Err(cancelled) = self.run(tx).await? {
                // The version's failed condition is a push racing this one;
                // anything else is no client's doing.
                return Err(if cancelled.failed(Push::Version).is_some() {
                    Error::Conflict(
                        "the listings changed while this push was written; send it again".into(),
                    )
                } else {
                    cancelled.unexpected("listings replacement")
                });
            }
            if last {
                return Ok(());
            }
        }
    }

    async fn has_location(&self, user: &UserId, location: &str) -> Result<bool, Error> {
        let item = self
            .get_consistent(key(user_pk(user), &location_sk(location)))
            .await?;
        Ok(item.is_some())
    }

    async fn list_locations(&self, user: &UserId) -> Result<Vec<Location>, Error> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :loc)")
            .expression_attribute_values(":pk", s(user_pk(user)))
            .expression_attribute_values(":loc", s(LOCATION_SK_PREFIX))
            .into_paginator()
            .items()
            .send();
        let mut out = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| store_err("Query", e))?;
            let doc = get_s(&item, "doc").unwrap_or("");
            let loc: Location = serde_json::from_str(doc)
                .map_err(|e| Error::corrupt(format!("location item of user {user}: {e}")))?;
            out.push(loc);
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

/// The most steps DynamoDB takes in one transaction.
const TRANSACTION_STEPS: usize = 100;

impl DynamoStore {
    /// A user's stored location ids and listings version (consistent).
    async fn stored_locations(&self, pk: &str) -> Result<(Vec<String>, Option<i64>), Error> {
        let mut old = Vec::new();
        let mut version = None;
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| store_err("Query", e))?;
            match get_s(&item, "sk") {
                Some(VERSION_SK) => version = get_n(&item, "version"),
                Some(sk) => {
                    if let Some(id) = location_of(sk) {
                        old.push(id.to_string());
                    }
                }
                None => {}
            }
        }
        Ok((old, version))
    }

    /// A transaction step: the listings version moves on from `version`
    /// (the one read), so two pushes cannot interleave.
    fn bump_version(&self, pk: &str, version: Option<i64>) -> Result<TransactWriteItem, Error> {
        let bump = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.to_string(), VERSION_SK)))
            .update_expression("SET version = :next")
            .expression_attribute_values(":next", n(version.unwrap_or(0) + 1));
        let bump = match version {
            Some(v) => bump
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(v)),
            None => bump.condition_expression("attribute_not_exists(pk)"),
        };
        Ok(TransactWriteItem::builder()
            .update(bump.build().map_err(build_err)?)
            .build())
    }
}
