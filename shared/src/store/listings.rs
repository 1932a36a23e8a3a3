//! The platform's listings that check_connection returns.

use crate::error::Error;
use crate::model::{Location, UserId, UserListings};
use async_trait::async_trait;

/// Each user's locations and resources.
#[async_trait]
pub trait ListingStore: Send + Sync {
    /// Inserts or replaces the given locations of one user.
    async fn put_listings(&self, listings: &UserListings) -> Result<(), Error>;

    /// Every location of a user, ordered by ID.
    async fn list_locations(&self, user: &UserId) -> Result<Vec<Location>, Error>;
}
