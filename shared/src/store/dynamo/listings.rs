//! The platform's listings: one item per location of a user.

use super::item::*;
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

#[async_trait]
impl ListingStore for DynamoStore {
    async fn put_listings(&self, listings: &UserListings) -> Result<(), Error> {
        for (id, loc) in &listings.locations {
            let mut item = key(user_pk(&listings.user_id), &location_sk(id));
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
        let mut old = Vec::new();
        let mut version = None;
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(&pk))
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
        let mut steps = Vec::new();
        let mut bump = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), VERSION_SK)))
            .update_expression("SET version = :next")
            .expression_attribute_values(":next", n(version.unwrap_or(0) + 1));
        bump = match version {
            Some(v) => bump
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(v)),
            None => bump.condition_expression("attribute_not_exists(pk)"),
        };
        steps.push(
            TransactWriteItem::builder()
                .update(bump.build().map_err(build_err)?)
                .build(),
        );
        for id in old.iter().filter(|id| !locations.contains_key(*id)) {
            let del = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk.clone(), &location_sk(id))))
                .build()
                .map_err(build_err)?;
            steps.push(TransactWriteItem::builder().delete(del).build());
        }
        for (id, loc) in locations {
            let mut item = key(pk.clone(), &location_sk(id));
            let doc = serde_json::to_string(loc).map_err(|e| Error::Store(e.to_string()))?;
            item.insert("doc".into(), s(doc));
            steps.push(self.put(item, None)?);
        }
        if steps.len() > 100 {
            return Err(Error::InvalidRequest(
                "this user has too many stored locations to replace in one write: DELETE them first".into(),
            ));
        }
        match self.transact(steps).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(Error::Conflict(
                "the listings changed while this push was written; send it again".into(),
            )),
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
                .map_err(|e| Error::Store(format!("location item of user {user}: {e}")))?;
            out.push(loc);
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}
