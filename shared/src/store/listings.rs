//! The platform's listings that check_connection returns.

use crate::error::Error;
use crate::model::{Location, UserId, UserListings};
use async_trait::async_trait;

/// How many locations one push may hold: a replacement is one DynamoDB
/// transaction (100 actions: the old locations' deletes, the new ones'
/// puts and a version check).
pub const MAX_PUSHED_LOCATIONS: usize = 49;

/// Each user's locations and resources.
#[async_trait]
pub trait ListingStore: Send + Sync {
    /// Inserts or replaces the given locations of one user.
    async fn put_listings(&self, listings: &UserListings) -> Result<(), Error>;

    /// Replaces all of a user's locations with `locations` in one write
    /// (an empty map deletes them all). At most [`MAX_PUSHED_LOCATIONS`].
    async fn replace_listings(
        &self,
        user: &UserId,
        locations: &std::collections::BTreeMap<String, Location>,
    ) -> Result<(), Error>;

    /// Every location of a user, ordered by ID.
    async fn list_locations(&self, user: &UserId) -> Result<Vec<Location>, Error>;

    /// Whether `location` is one of the user's locations (one read).
    async fn has_location(&self, user: &UserId, location: &str) -> Result<bool, Error>;
}
