//! The one way to get a Syncaroo access token. Syncaroo's access tokens live
//! ten minutes and its refresh tokens are single-use, while any number of
//! our Lambdas may need a token at once: exactly one of them refreshes
//! (it holds the lease on the credentials item), the others wait for the
//! new version. A lease whose holder died expires and is taken over.

use super::{CredentialStatus, NewCredentials, OAuthError, SyncarooCredentials, SyncarooOAuth};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::Error;
use crate::metrics;
use crate::secrets::{CachedSecrets, SecretString};
use crate::store::CredentialsStore;
use async_trait::async_trait;
use backon::{ConstantBuilder, ExponentialBuilder, Retryable};
use std::sync::Arc;
use std::time::Duration;

pub const METRIC_NEEDS_REAUTH: &str = metrics::NEEDS_REAUTH;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("no Syncaroo API credentials yet: an admin must connect")]
    NotConnected,
    #[error("Syncaroo API credentials need an admin to reconnect: {0}")]
    NeedsReauth(String),
    #[error("Syncaroo client id/secret are not configured in Secrets Manager")]
    NotConfigured,
    #[error("another refresh is still running; try again")]
    Busy,
    #[error("Syncaroo is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] Error),
}

impl ProviderError {
    /// Worth retrying later without an admin.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Busy | Self::Unavailable(_) | Self::Store(_))
    }
}

/// What the scheduled refresh did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum RefreshOutcome {
    /// The token was still good beyond the margin.
    Fresh {
        expires_at: i64,
    },
    Refreshed {
        expires_at: i64,
        version: u64,
    },
}

/// Who hears that our Syncaroo API credentials changed state (the App
/// announces it as a change event).
#[async_trait]
pub trait CredentialEvents: Send + Sync {
    /// Syncaroo refused our refresh token and this provider marked the
    /// credentials `needs_reauth` (once: later callers find them marked).
    async fn needs_reauth(&self, reason: &str, at_secs: i64);
}

pub struct TokenProvider {
    /// Told when this provider marks the credentials `needs_reauth`.
    events: Option<Arc<dyn CredentialEvents>>,
    creds: Arc<dyn CredentialsStore>,
    oauth: SyncarooOAuth,
    secrets: Arc<CachedSecrets>,
    clock: Arc<dyn Clock>,
    margin: i64,
    lease_ms: i64,
    wait_ms: i64,
    attempts: u64,
    backoff_ms: u64,
    owner: String,
    /// A pair Syncaroo issued that the store has not taken yet (it was
    /// failing): the only working pair, since Syncaroo spent the refresh
    /// token that bought it. Written first thing on the next use.
    unstored: std::sync::Mutex<Option<NewCredentials>>,
}

/// What [`TokenProvider::get`] waits for.
enum Ready {
    Fresh(SyncarooCredentials),
    /// The lease is ours: refresh.
    Leased(SyncarooCredentials),
}

/// Why a look at the credentials did not settle it.
enum Wait {
    /// Another caller holds the lease: look again.
    Held,
    Failed(ProviderError),
}

impl TokenProvider {
    pub fn new(
        config: &Config,
        creds: Arc<dyn CredentialsStore>,
        secrets: Arc<CachedSecrets>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            events: None,
            creds,
            oauth: SyncarooOAuth::new(&config.syncaroo_api_base, config.syncaroo_http_timeout),
            secrets,
            clock,
            margin: crate::clock::secs(config.syncaroo_refresh_margin),
            lease_ms: crate::clock::millis(config.syncaroo_lease),
            wait_ms: crate::clock::millis(config.syncaroo_wait),
            attempts: config.syncaroo_refresh_attempts,
            backoff_ms: 200,
            // Unique per process, so a lease names its holder.
            owner: crate::crypto::random_b64(12),
            unstored: std::sync::Mutex::new(None),
        }
    }

    /// Tells `events` when this provider marks the credentials
    /// `needs_reauth`.
    pub fn with_events(mut self, events: Arc<dyn CredentialEvents>) -> Self {
        self.events = Some(events);
        self
    }

    /// Shorter retry pauses, for tests.
    pub fn with_backoff_ms(mut self, ms: u64) -> Self {
        self.backoff_ms = ms;
        self
    }

    pub fn oauth(&self) -> &SyncarooOAuth {
        &self.oauth
    }

    pub fn credentials_store(&self) -> &Arc<dyn CredentialsStore> {
        &self.creds
    }

    /// A valid access token, refreshed first if it expires within the margin.
    pub async fn access_token(&self) -> Result<SecretString, ProviderError> {
        self.get(None).await.map(|c| c.access_token)
    }

    /// Syncaroo answered 401 to `rejected`: refresh once (unless another
    /// caller already did) and return the new token.
    pub async fn after_unauthorized(
        &self,
        rejected: &SecretString,
    ) -> Result<SecretString, ProviderError> {
        self.get(Some(rejected)).await.map(|c| c.access_token)
    }

    /// The schedule's job: refresh if the token expires within the margin.
    pub async fn refresh_if_due(&self) -> Result<RefreshOutcome, ProviderError> {
        self.store_kept_pair().await?;
        let before = self.current().await?;
        let now = self.clock.now();
        if before.expires_at - self.margin > now {
            return Ok(RefreshOutcome::Fresh {
                expires_at: before.expires_at,
            });
        }
        let after = self.get(None).await?;
        Ok(RefreshOutcome::Refreshed {
            expires_at: after.expires_at,
            version: after.version,
        })
    }

    async fn current(&self) -> Result<SyncarooCredentials, ProviderError> {
        let c = self
            .creds
            .get_credentials()
            .await?
            .ok_or(ProviderError::NotConnected)?;
        if c.status == CredentialStatus::NeedsReauth {
            return Err(ProviderError::NeedsReauth(c.reason.unwrap_or_default()));
        }
        Ok(c)
    }

    async fn get(
        &self,
        rejected: Option<&SecretString>,
    ) -> Result<SyncarooCredentials, ProviderError> {
        self.store_kept_pair().await?;
        let deadline = self.clock.now_ms() + self.wait_ms;
        // Fresh, or ours to refresh; while another caller holds the lease,
        // its result is awaited (polled, jittered) until `wait_ms`.
        let look = || async {
            let c = self.current().await.map_err(Wait::Failed)?;
            let now_ms = self.clock.now_ms();
            let fresh = c.expires_at - self.margin > now_ms / 1000;
            let is_rejected = rejected.is_some_and(|r| r == &c.access_token);
            if fresh && !is_rejected {
                return Ok(Ready::Fresh(c));
            }
            let lease_free = c.lease_until_ms.is_none_or(|u| u <= now_ms);
            if lease_free
                && self
                    .creds
                    .acquire_lease(c.version, &self.owner, now_ms, now_ms + self.lease_ms)
                    .await
                    .map_err(|e| Wait::Failed(e.into()))?
            {
                return Ok(Ready::Leased(c));
            }
            if now_ms >= deadline {
                return Err(Wait::Failed(ProviderError::Busy));
            }
            Err(Wait::Held)
        };
        let ready = look
            .retry(
                ConstantBuilder::default()
                    .with_delay(Duration::from_millis(40))
                    .with_jitter()
                    .with_max_times(usize::MAX),
            )
            .when(|w| matches!(w, Wait::Held))
            .await;
        match ready {
            Ok(Ready::Fresh(c)) => Ok(c),
            Ok(Ready::Leased(c)) => self.refresh_holding_lease(c).await,
            Err(Wait::Failed(e)) => Err(e),
            Err(Wait::Held) => Err(ProviderError::Busy),
        }
    }

    async fn refresh_holding_lease(
        &self,
        c: SyncarooCredentials,
    ) -> Result<SyncarooCredentials, ProviderError> {
        let secrets = match self.secrets.get().await {
            Ok(s) => s,
            Err(e) => {
                self.release().await;
                return Err(e.into());
            }
        };
        let Some(client) = secrets.syncaroo_client() else {
            self.release().await;
            return Err(ProviderError::NotConfigured);
        };
        // Only what may pass is tried again (a timeout, a 429, a 5xx); a
        // refusal is final, and the refresh token is never resent after it.
        let refreshed = (|| self.oauth.refresh(client, &c.refresh_token, self.clock.now()))
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(self.backoff_ms))
                    .with_max_times(self.attempts.saturating_sub(1) as usize)
                    .with_jitter(),
            )
            .when(|e| matches!(e, OAuthError::Transient(_)))
            .notify(|e, pause| {
                tracing::warn!(why = %e, pause_ms = pause.as_millis() as u64, "Syncaroo refresh failed; retrying")
            })
            .await;
        match refreshed {
            Ok(new) => self.keep(c, new).await,
            Err(OAuthError::InvalidGrant) => {
                Err(self.needs_reauth(&c, "Syncaroo refused the refresh token (invalid_grant)").await)
            }
            Err(OAuthError::Malformed) => Err(self
                .needs_reauth(&c, "Syncaroo answered the refresh with an unreadable body; the refresh token may be spent")
                .await),
            Err(OAuthError::Rejected { status, code }) => Err(self
                .needs_reauth(&c, &format!("Syncaroo refused the refresh: HTTP {status} {code}"))
                .await),
            Err(OAuthError::Transient(why)) => {
                tracing::warn!(attempts = self.attempts, why = %why, "Syncaroo refresh failed; keeping the old refresh token");
                self.release().await;
                Err(ProviderError::Unavailable(why))
            }
        }
    }

    /// Stores the pair Syncaroo just issued for `c`'s refresh token. That
    /// token is spent, so the new pair is the only working one: a failed
    /// write is retried, a lease that lapsed meanwhile does not stop it
    /// (it is written unconditionally), and when the store keeps failing
    /// the pair is kept in this process and written on its next use.
    async fn keep(
        &self,
        c: SyncarooCredentials,
        new: NewCredentials,
    ) -> Result<SyncarooCredentials, ProviderError> {
        // One write each: the SDK retries a failing DynamoDB call itself.
        let now = self.clock.now();
        let stored = match self
            .creds
            .complete_refresh(c.version, &self.owner, &new, now)
            .await
        {
            Ok(true) => Ok(c.version + 1),
            Ok(false) => {
                tracing::warn!(
                    "refresh lease lapsed before the new token was stored; storing it anyway"
                );
                self.creds.put_credentials(&new, now).await
            }
            Err(e) => Err(e),
        };
        match stored {
            Ok(version) => {
                tracing::info!(
                    version,
                    expires_at = new.expires_at,
                    "Syncaroo token refreshed"
                );
                metrics::count(metrics::TOKEN_REFRESHED, 1);
                Ok(SyncarooCredentials {
                    access_token: new.access_token,
                    refresh_token: new.refresh_token,
                    expires_at: new.expires_at,
                    version,
                    lease_owner: None,
                    lease_until_ms: None,
                    ..c
                })
            }
            Err(e) => {
                tracing::error!(error = %e, "new Syncaroo token not stored; kept in memory and stored on next use");
                *self.unstored.lock().unwrap_or_else(|p| p.into_inner()) = Some(new);
                Err(ProviderError::Unavailable(format!(
                    "the refreshed Syncaroo token could not be stored yet: {e}"
                )))
            }
        }
    }

    /// Writes a pair [`Self::keep`] could not store, before anything else.
    async fn store_kept_pair(&self) -> Result<(), ProviderError> {
        let kept = self
            .unstored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(new) = kept {
            self.creds.put_credentials(&new, self.clock.now()).await?;
            *self.unstored.lock().unwrap_or_else(|p| p.into_inner()) = None;
            tracing::info!(
                expires_at = new.expires_at,
                "stored the refreshed Syncaroo token kept from a failed write"
            );
        }
        Ok(())
    }

    async fn release(&self) {
        if let Err(e) = self.creds.release_lease(&self.owner).await {
            tracing::warn!(error = %e, "could not release the refresh lease; it will expire");
        }
    }

    /// Syncaroo refused the refresh token of `c`: marks the credentials
    /// dead, says so loudly, counts it; unless the item moved on meanwhile
    /// (another refresher, whose lease had lapsed, spent that token and
    /// stored a newer pair, or took the lease): a refusal for a token that
    /// is no longer the stored one marks nothing, and the caller tries
    /// again with what is stored.
    async fn needs_reauth(&self, c: &SyncarooCredentials, reason: &str) -> ProviderError {
        let marked = self
            .creds
            .mark_needs_reauth(c.version, &self.owner, reason, self.clock.now())
            .await;
        match marked {
            Ok(false) => {
                tracing::warn!(
                    reason,
                    version = c.version,
                    "Syncaroo refused a refresh token that is no longer the stored one; nothing marked"
                );
                ProviderError::Unavailable(
                    "the refresh token was spent by another refresher; the stored pair is newer"
                        .into(),
                )
            }
            Ok(true) | Err(_) => {
                match marked {
                    Err(e) => {
                        tracing::error!(error = %e, "could not mark the credentials needs_reauth")
                    }
                    Ok(_) => {
                        if let Some(events) = &self.events {
                            events.needs_reauth(reason, self.clock.now()).await;
                        }
                    }
                }
                tracing::error!(
                    reason,
                    "Syncaroo API credentials need an admin to reconnect; no further calls to Syncaroo"
                );
                metrics::count(METRIC_NEEDS_REAUTH, 1);
                ProviderError::NeedsReauth(reason.to_string())
            }
        }
    }
}
