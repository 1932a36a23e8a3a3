//! The platform's listings.

use super::MemoryStore;
use crate::error::Error;
use crate::model::{Location, UserId, UserListings};
use crate::store::ListingStore;
use async_trait::async_trait;

#[async_trait]
impl ListingStore for MemoryStore {
    async fn put_listings(&self, listings: &UserListings) -> Result<(), Error> {
        let mut g = self.lock();
        let m = g.listings.entry(listings.user_id.clone()).or_default();
        for (k, v) in &listings.locations {
            m.insert(k.clone(), v.clone());
        }
        Ok(())
    }

    async fn replace_listings(
        &self,
        user: &UserId,
        locations: &std::collections::BTreeMap<String, Location>,
    ) -> Result<(), Error> {
        if locations.len() > crate::store::listings::MAX_PUSHED_LOCATIONS {
            return Err(Error::InvalidRequest(format!(
                "at most {} locations per push",
                crate::store::listings::MAX_PUSHED_LOCATIONS
            )));
        }
        let mut g = self.lock();
        if locations.is_empty() {
            g.listings.remove(user);
        } else {
            g.listings.insert(
                user.clone(),
                locations
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
        }
        Ok(())
    }

    async fn has_location(&self, user: &UserId, location: &str) -> Result<bool, Error> {
        Ok(self
            .lock()
            .listings
            .get(user)
            .is_some_and(|m| m.contains_key(location)))
    }

    async fn list_locations(&self, user: &UserId) -> Result<Vec<Location>, Error> {
        Ok(self
            .lock()
            .listings
            .get(user)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }
}
