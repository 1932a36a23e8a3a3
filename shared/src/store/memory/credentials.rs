//! The Syncaroo API credentials and the admin connect state.

use super::MemoryStore;
use crate::error::Error;
use crate::store::credentials::{CredentialStatus, NewCredentials, SyncarooCredentials};
use crate::store::CredentialsStore;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub(super) struct CredState {
    creds: Option<SyncarooCredentials>,
    states: HashMap<String, i64>,
}

fn cred_lock(m: &Mutex<CredState>) -> std::sync::MutexGuard<'_, CredState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl CredentialsStore for MemoryStore {
    async fn get_credentials(&self) -> Result<Option<SyncarooCredentials>, Error> {
        Ok(cred_lock(&self.creds).creds.clone())
    }

    async fn put_credentials(&self, new: &NewCredentials, now: i64) -> Result<u64, Error> {
        let mut g = cred_lock(&self.creds);
        let version = g.creds.as_ref().map_or(0, |c| c.version) + 1;
        g.creds = Some(SyncarooCredentials {
            access_token: new.access_token.clone(),
            expires_at: new.expires_at,
            refresh_token: new.refresh_token.clone(),
            version,
            lease_owner: None,
            lease_until_ms: None,
            status: CredentialStatus::Active,
            reason: None,
            updated_at: now,
        });
        Ok(version)
    }

    async fn acquire_lease(
        &self,
        version: u64,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, Error> {
        let mut g = cred_lock(&self.creds);
        let Some(c) = g.creds.as_mut() else {
            return Ok(false);
        };
        let free = c.lease_until_ms.is_none_or(|u| u <= now_ms);
        if c.version != version || !free || c.status != CredentialStatus::Active {
            return Ok(false);
        }
        c.lease_owner = Some(owner.to_string());
        c.lease_until_ms = Some(until_ms);
        Ok(true)
    }

    async fn complete_refresh(
        &self,
        version: u64,
        owner: &str,
        new: &NewCredentials,
        now: i64,
    ) -> Result<bool, Error> {
        let mut g = cred_lock(&self.creds);
        let Some(c) = g.creds.as_mut() else {
            return Ok(false);
        };
        if c.version != version || c.lease_owner.as_deref() != Some(owner) {
            return Ok(false);
        }
        c.access_token = new.access_token.clone();
        c.refresh_token = new.refresh_token.clone();
        c.expires_at = new.expires_at;
        c.version += 1;
        c.lease_owner = None;
        c.lease_until_ms = None;
        c.updated_at = now;
        Ok(true)
    }

    async fn release_lease(&self, owner: &str) -> Result<(), Error> {
        let mut g = cred_lock(&self.creds);
        if let Some(c) = g.creds.as_mut() {
            if c.lease_owner.as_deref() == Some(owner) {
                c.lease_owner = None;
                c.lease_until_ms = None;
            }
        }
        Ok(())
    }

    async fn mark_needs_reauth(
        &self,
        version: u64,
        owner: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, Error> {
        let mut g = cred_lock(&self.creds);
        match g.creds.as_mut() {
            Some(c) if c.version == version && c.lease_owner.as_deref() == Some(owner) => {
                c.status = CredentialStatus::NeedsReauth;
                c.reason = Some(reason.to_string());
                c.lease_owner = None;
                c.lease_until_ms = None;
                c.updated_at = now;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn put_oauth_state(&self, hash: &str, expires_at: i64) -> Result<(), Error> {
        cred_lock(&self.creds)
            .states
            .insert(hash.to_string(), expires_at);
        Ok(())
    }

    async fn take_oauth_state(&self, hash: &str, now: i64) -> Result<bool, Error> {
        let mut g = cred_lock(&self.creds);
        Ok(matches!(g.states.remove(hash), Some(exp) if exp > now))
    }
}
