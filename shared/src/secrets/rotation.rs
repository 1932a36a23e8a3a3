//! Rotating `yourClientSecret` without refusals. Syncaroo holds our client
//! secret (it presents it at the token endpoint and, with the default hash
//! profile, signs webhooks with it), so a rotation is a hand-over of
//! hours: the new secret is current from the moment it is put, and the one
//! it replaced (Secrets Manager's `AWSPREVIOUS`) is accepted too for
//! `CLIENT_SECRET_GRACE_SECONDS` after the new version's creation. A second
//! rotation inside the grace makes the first new secret the previous one:
//! the oldest is dropped. No `AWSPREVIOUS`, no previous secret.
//!
//! The previous secret is read lazily: only when a caller presents a
//! secret that is not the current one, then cached like the others. A
//! caller presenting a secret neither current nor previous makes the
//! caches be dropped once (at most every [`REREAD_SECS`]) before it is
//! refused, so Syncaroo may switch the moment the new setup block is
//! printed, whatever a warm function had cached.
//!
//! The session key and the token-hash key are not rotated by this: a new
//! session key ends every platform session and consent form in flight; a
//! new token-hash key makes every stored code and token unfindable (every
//! connection would need a new consent). Rotating either needs the same
//! two-key window on their readers, which this bundle does not have.

use super::{CachedSecrets, Error, Fault, SecretString};
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use std::time::Duration;

/// At most one re-read of the secrets per this many seconds, for callers
/// presenting an unknown client secret.
pub const REREAD_SECS: i64 = 10;

/// The client secret the latest rotation replaced.
#[derive(Clone, PartialEq)]
pub struct PreviousSecret {
    pub secret: SecretString,
    /// When the rotation happened (the current version's creation), epoch
    /// seconds: the grace runs from here.
    pub rotated_at: i64,
}

impl std::fmt::Debug for PreviousSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PreviousSecret(<redacted>, rotated_at {})",
            self.rotated_at
        )
    }
}

/// Which of our client secrets a caller presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUsed {
    Current,
    /// The one a rotation replaced, within its grace.
    Previous,
}

impl SecretUsed {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretUsed::Current => "current",
            SecretUsed::Previous => "previous",
        }
    }
}

pub(super) struct CachedPrevious {
    value: Option<PreviousSecret>,
    next_read: i64,
}

/// Fixed secrets with a previous client secret (the local runner's
/// `--previous-client-secret`).
pub struct RotatingSecrets {
    pub current: super::BridgeSecrets,
    pub previous: Option<PreviousSecret>,
}

#[async_trait::async_trait]
impl super::SecretSource for RotatingSecrets {
    async fn load(&self) -> Result<super::BridgeSecrets, Error> {
        Ok(self.current.clone())
    }

    async fn previous_client_secret(&self) -> Result<Option<PreviousSecret>, Error> {
        Ok(self.previous.clone())
    }
}

/// Whether a secret's JSON document holds `clientSecret`.
pub(super) fn holds_client_secret(doc: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(doc)
        .is_ok_and(|v| v.get("clientSecret").is_some_and(|s| s.is_string()))
}

/// The previous client secret in secret `id`: its `AWSPREVIOUS` version's
/// `clientSecret`, rotated when the `AWSCURRENT` version was created.
pub(super) async fn previous_in(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
) -> Result<Option<PreviousSecret>, Error> {
    use super::SecretsManagerSource as S;
    let (current, previous) = tokio::join!(
        S::fetch_stage(client, id, None),
        S::fetch_stage(client, id, Some("AWSPREVIOUS"))
    );
    let previous = match previous {
        Ok((doc, _)) => doc,
        // No previous version: never rotated.
        Err(Error::Secrets(f)) if is_not_found(&f) => return Ok(None),
        Err(e) => return Err(e),
    };
    let (current, created) = current?;
    let value = |doc: &str| -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(doc).ok()?;
        v.get("clientSecret")?.as_str().map(str::to_string)
    };
    let (Some(old), Some(new), Some(rotated_at)) = (value(&previous), value(&current), created)
    else {
        return Ok(None);
    };
    Ok((old != new).then(|| PreviousSecret {
        secret: SecretString::new(old),
        rotated_at,
    }))
}

fn is_not_found(f: &Fault) -> bool {
    use std::error::Error as _;
    f.source()
        .and_then(|s| {
            s.downcast_ref::<aws_sdk_secretsmanager::error::SdkError<
                aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError,
            >>()
        })
        .is_some_and(|e| e.code() == Some("ResourceNotFoundException"))
}

impl CachedSecrets {
    /// The previous client secret, cached for the TTL; a failed read is
    /// logged and counts as none (the current secret keeps working).
    pub async fn previous(&self) -> Option<PreviousSecret> {
        let now = self.clock.now();
        if let Some(c) = &*self.previous.read().await {
            if now < c.next_read {
                return c.value.clone();
            }
        }
        let mut guard = self.previous.write().await;
        if let Some(c) = &*guard {
            if now < c.next_read {
                return c.value.clone();
            }
        }
        let value = match self.source.previous_client_secret().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "the previous client secret could not be read");
                None
            }
        };
        *guard = Some(CachedPrevious {
            value: value.clone(),
            next_read: now + self.ttl,
        });
        value
    }

    /// Drops the cached secrets so the next read asks the source again; at
    /// most once per [`REREAD_SECS`]. Whether it did.
    async fn reread(&self) -> bool {
        let now = self.clock.now();
        {
            let mut last = self.last_reread.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| now < at + REREAD_SECS) {
                return false;
            }
            *last = Some(now);
        }
        if let Some(c) = self.cache.write().await.as_mut() {
            c.next_read = now;
        }
        *self.previous.write().await = None;
        true
    }

    /// Which of our client secrets `accepts` takes: the current one, or the
    /// previous one within `grace` of its rotation. A secret that is
    /// neither gets one rate-limited re-read of the secrets first (a
    /// rotation may have happened since they were cached). `None`: refused.
    pub async fn client_secret_used(
        &self,
        grace: Duration,
        accepts: impl Fn(&str) -> bool,
    ) -> Result<Option<SecretUsed>, Error> {
        let grace = crate::clock::secs(grace);
        for first in [true, false] {
            if accepts(self.get().await?.client_secret.expose()) {
                return Ok(Some(SecretUsed::Current));
            }
            if let Some(p) = self.previous().await {
                if self.clock.now() < p.rotated_at + grace && accepts(p.secret.expose()) {
                    return Ok(Some(SecretUsed::Previous));
                }
            }
            if !first || !self.reread().await {
                break;
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::secrets::{BridgeSecrets, CachedSecrets};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    /// A source whose secrets change when the test says, counting reads.
    struct Switching {
        current: Mutex<BridgeSecrets>,
        previous: Mutex<Option<PreviousSecret>>,
        loads: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl crate::secrets::SecretSource for Arc<Switching> {
        async fn load(&self) -> Result<BridgeSecrets, Error> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            Ok(self.current.lock().unwrap().clone())
        }
        async fn previous_client_secret(&self) -> Result<Option<PreviousSecret>, Error> {
            Ok(self.previous.lock().unwrap().clone())
        }
    }

    fn secrets(client_secret: &str) -> BridgeSecrets {
        let mut s = BridgeSecrets::generate();
        s.client_secret = SecretString::new(client_secret);
        s
    }

    #[tokio::test]
    async fn both_secrets_work_within_the_grace_then_only_the_new_one() {
        let clock = Arc::new(ManualClock::new(1_000));
        let source = Arc::new(Switching {
            current: Mutex::new(secrets("old")),
            previous: Mutex::new(None),
            loads: AtomicUsize::new(0),
        });
        let cached = CachedSecrets::new(source.clone(), clock.clone(), Duration::from_secs(300));
        let grace = Duration::from_secs(86_400);
        let used = |s: &'static str| {
            let cached = &cached;
            async move { cached.client_secret_used(grace, |k| k == s).await.unwrap() }
        };
        assert_eq!(used("old").await, Some(SecretUsed::Current));
        // Rotated at 1_010; the cache still holds "old" as current.
        *source.current.lock().unwrap() = secrets("new");
        *source.previous.lock().unwrap() = Some(PreviousSecret {
            secret: SecretString::new("old"),
            rotated_at: 1_010,
        });
        clock.advance(20);
        let loads = source.loads.load(Ordering::SeqCst);
        // The new secret is unknown to the cache: one re-read, then taken.
        assert_eq!(used("new").await, Some(SecretUsed::Current));
        assert_eq!(source.loads.load(Ordering::SeqCst), loads + 1);
        assert_eq!(used("old").await, Some(SecretUsed::Previous));
        // A wrong secret: refused; the re-read it may cause is rate-limited.
        assert_eq!(used("guess").await, None);
        assert_eq!(used("guess").await, None);
        assert_eq!(source.loads.load(Ordering::SeqCst), loads + 1);
        // After the grace only the new one.
        clock.advance(86_400);
        assert_eq!(used("old").await, None);
        assert_eq!(used("new").await, Some(SecretUsed::Current));
        assert!(clock.now() > 1_010 + 86_400);
    }

    #[test]
    fn a_document_holds_the_client_secret_only_as_a_string() {
        assert!(holds_client_secret(r#"{"clientSecret": "x"}"#));
        assert!(!holds_client_secret(r#"{"sessionKey": "x"}"#));
        assert!(!holds_client_secret(r#"{"clientSecret": 1}"#));
        assert!(!holds_client_secret("not json"));
    }

    #[test]
    fn the_previous_secret_never_prints() {
        let p = PreviousSecret {
            secret: SecretString::new("hunter2"),
            rotated_at: 5,
        };
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
