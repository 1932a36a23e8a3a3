//! Our Syncaroo API credentials (one item) and the admin connect state.

use crate::error::Error;
use crate::secrets::SecretString;
use async_trait::async_trait;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialStatus {
    Active,
    /// Syncaroo refused our refresh token, or a new pair was lost: stop
    /// calling Syncaroo until an admin reconnects.
    NeedsReauth,
}

impl CredentialStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::NeedsReauth => "needs_reauth",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "needs_reauth" => Some(Self::NeedsReauth),
            _ => None,
        }
    }
}

/// Tokens Syncaroo just issued.
#[derive(Debug, Clone)]
pub struct NewCredentials {
    pub access_token: SecretString,
    pub expires_at: i64,
    pub refresh_token: SecretString,
}

/// The one credentials item: the pair, its version, and the refresh lease.
#[derive(Debug, Clone)]
pub struct SyncarooCredentials {
    pub access_token: SecretString,
    pub expires_at: i64,
    pub refresh_token: SecretString,
    /// Bumped by every stored pair; waiters watch it.
    pub version: u64,
    pub lease_owner: Option<String>,
    pub lease_until_ms: Option<i64>,
    pub status: CredentialStatus,
    pub reason: Option<String>,
    pub updated_at: i64,
}

/// The Syncaroo API credentials item and the admin connect state. Every
/// step is a conditional write, so any number of processes can share it.
#[async_trait]
pub trait CredentialsStore: Send + Sync {
    /// Read strongly consistent.
    async fn get_credentials(&self) -> Result<Option<SyncarooCredentials>, Error>;

    /// Stores a pair from the admin handshake: version + 1, status active,
    /// lease cleared.
    async fn put_credentials(&self, new: &NewCredentials, now: i64) -> Result<u64, Error>;

    /// Takes the refresh lease if the item is still at `version` and no
    /// live lease is held. `Ok(false)`: someone else has it.
    async fn acquire_lease(
        &self,
        version: u64,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, Error>;

    /// Stores the refreshed pair if `owner` still holds the lease at
    /// `version`: version + 1, lease cleared. `Ok(false)`: the lease was lost.
    async fn complete_refresh(
        &self,
        version: u64,
        owner: &str,
        new: &NewCredentials,
        now: i64,
    ) -> Result<bool, Error>;

    /// Gives the lease back (refresh failed, old pair still good).
    async fn release_lease(&self, owner: &str) -> Result<(), Error>;

    /// Stops every caller from using or refreshing the credentials, if the
    /// item is still at `version` with the lease held by `owner`: the
    /// refusal was for the refresh token stored then. `Ok(false)`: it was
    /// not (another refresher stored a newer pair, or took the lease), and
    /// nothing is marked.
    async fn mark_needs_reauth(
        &self,
        version: u64,
        owner: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, Error>;

    /// Stores the keyed hash of an admin connect `state` until `expires_at`.
    async fn put_oauth_state(&self, hash: &str, expires_at: i64) -> Result<(), Error>;

    /// Consumes a state: true once, if it exists and has not expired.
    async fn take_oauth_state(&self, hash: &str, now: i64) -> Result<bool, Error>;
}
