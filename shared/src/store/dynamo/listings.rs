//! The platform's listings: one item per location of a user.

use super::item::*;
use super::DynamoStore;
use crate::error::Error;
use crate::model::{Location, UserId, UserListings};
use crate::store::ListingStore;
use async_trait::async_trait;

#[async_trait]
impl ListingStore for DynamoStore {
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
