//! Our secrets: the client secret Syncaroo presents at the token endpoint,
//! the key that signs platform sessions and CSRF tokens, and the key of the
//! hashes under which codes and tokens are stored. Read from Secrets Manager
//! once per cold start and cached with a TTL; never in template parameters,
//! environment variables or logs.

use crate::clock::Clock;
use crate::error::{Error, Fault};
use async_trait::async_trait;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::RwLock;

mod rotation;
pub use rotation::{PreviousSecret, RotatingSecrets, SecretUsed};

/// A secret string whose `Debug` and `Display` print nothing of it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The JSON document stored in the secret named by `SECRET_ID`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BridgeSecrets {
    /// `yourClientSecret` of the guide: what Syncaroo sends to our token
    /// endpoint, and (by default) the webhook hash key.
    pub client_secret: SecretString,
    /// Signs the platform session JWT (HS256) and consent CSRF tokens.
    pub session_key: SecretString,
    /// Keys the hashes under which codes and tokens are stored.
    pub token_hash_key: SecretString,
    /// Password (user `admin`, HTTP Basic) of the admin routes.
    #[serde(default)]
    pub admin_key: Option<SecretString>,
    /// `syncarooClientId` / `syncarooClientSecret` from the Syncaroo
    /// Developer Portal: how we authenticate to the Syncaroo API.
    #[serde(default)]
    pub syncaroo_client_id: Option<SecretString>,
    #[serde(default)]
    pub syncaroo_client_secret: Option<SecretString>,
    /// Key of the webhook hash when WEBHOOK_HASH_KEY=webhook_key.
    #[serde(default)]
    pub webhook_hash_key: Option<SecretString>,
}

const MIN_SECRET_LEN: usize = 32;

impl BridgeSecrets {
    /// The form every code, token and state is stored and looked up in:
    /// HMAC-SHA256 under `tokenHashKey` (crate::crypto::keyed_hash), so a
    /// read of the table yields nothing usable.
    pub fn token_hash(&self, value: &str) -> String {
        crate::crypto::keyed_hash(self.token_hash_key.expose().as_bytes(), value)
    }

    pub fn parse(json: &str) -> Result<Self, Error> {
        let s: BridgeSecrets = serde_json::from_str(json).map_err(|_| {
            // serde's message could quote the document: say only what is wrong.
            Error::Secrets(Fault::permanent(
                "secret is not JSON with clientSecret, sessionKey and tokenHashKey",
            ))
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Several JSON objects merged into one; a key in two of them is an
    /// error (it would be ambiguous which one is in force).
    pub fn parse_merged(docs: &[String]) -> Result<Self, Error> {
        if let [one] = docs {
            return Self::parse(one);
        }
        let mut merged = serde_json::Map::new();
        for doc in docs {
            let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_str(doc)
                .map_err(|_| Error::Secrets(Fault::permanent("a secret is not a JSON object")))?;
            for (k, v) in obj {
                if merged.insert(k.clone(), v).is_some() {
                    return Err(Error::Secrets(Fault::permanent(format!(
                        "secret key {k} is set twice"
                    ))));
                }
            }
        }
        Self::parse(&serde_json::Value::Object(merged).to_string())
    }

    /// Syncaroo API client credentials, if configured (empty counts as not).
    pub fn syncaroo_client(&self) -> Option<(&str, &str)> {
        let id = self.syncaroo_client_id.as_ref()?.expose();
        let secret = self.syncaroo_client_secret.as_ref()?.expose();
        (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
    }

    pub fn validate(&self) -> Result<(), Error> {
        for (name, v) in [
            ("clientSecret", &self.client_secret),
            ("sessionKey", &self.session_key),
            ("tokenHashKey", &self.token_hash_key),
        ] {
            if v.expose().len() < MIN_SECRET_LEN {
                return Err(Error::Secrets(Fault::permanent(format!(
                    "{name} must be at least {MIN_SECRET_LEN} characters"
                ))));
            }
        }
        Ok(())
    }

    /// Fresh random secrets, for the local runner and tests.
    pub fn generate() -> Self {
        use crate::crypto::{random_b64, SECRET_BYTES};
        Self {
            client_secret: SecretString::new(random_b64(SECRET_BYTES)),
            session_key: SecretString::new(random_b64(SECRET_BYTES)),
            token_hash_key: SecretString::new(random_b64(SECRET_BYTES)),
            admin_key: Some(SecretString::new(random_b64(SECRET_BYTES))),
            syncaroo_client_id: None,
            syncaroo_client_secret: None,
            webhook_hash_key: None,
        }
    }
}

/// Where secrets come from.
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn load(&self) -> Result<BridgeSecrets, Error>;

    /// The client secret the latest rotation replaced, and when that
    /// rotation happened; `None` when there was none. Read lazily (when a
    /// caller presents a secret that is not the current one), never during
    /// init.
    async fn previous_client_secret(&self) -> Result<Option<PreviousSecret>, Error> {
        Ok(None)
    }
}

/// Fixed secrets held in memory (local runner, tests).
pub struct StaticSecrets(pub BridgeSecrets);

#[async_trait]
impl SecretSource for StaticSecrets {
    async fn load(&self) -> Result<BridgeSecrets, Error> {
        Ok(self.0.clone())
    }
}

/// AWS Secrets Manager: one or more JSON secrets (`SECRET_ID` is a
/// comma-separated list), read concurrently and merged into one document.
/// The SAM template makes three, each generated at deploy time with one
/// key, so no value ever passes through a template parameter.
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
    secret_ids: Vec<String>,
    /// The secret whose document holds `clientSecret` (learnt by `load`).
    holder: std::sync::Mutex<Option<String>>,
}

impl SecretsManagerSource {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        let secret_ids = split_ids(&secret_id.into());
        Self {
            client,
            secret_ids,
            holder: std::sync::Mutex::new(None),
        }
    }

    async fn fetch(client: aws_sdk_secretsmanager::Client, id: String) -> Result<String, Error> {
        Self::fetch_stage(&client, &id, None)
            .await
            .map(|(doc, _)| doc)
    }

    /// The secret's value at `stage` (`None`: `AWSCURRENT`) and when that
    /// version was created (epoch seconds).
    pub(crate) async fn fetch_stage(
        client: &aws_sdk_secretsmanager::Client,
        id: &str,
        stage: Option<&str>,
    ) -> Result<(String, Option<i64>), Error> {
        let out = client
            .get_secret_value()
            .secret_id(id)
            .set_version_stage(stage.map(str::to_string))
            .send()
            .await
            .map_err(|e| {
                let detail = e
                    .as_service_error()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "request failed".into());
                let message = format!("GetSecretValue {id}: {detail}");
                // The secret is missing, not ours to read or not readable:
                // asking again changes nothing until someone acts.
                let fault = match e.code() {
                    Some(
                        "ResourceNotFoundException"
                        | "AccessDeniedException"
                        | "DecryptionFailure"
                        | "InvalidParameterException"
                        | "InvalidRequestException",
                    ) => Fault::permanent(message),
                    _ => Fault::transient(message),
                };
                Error::Secrets(fault.with_source(e))
            })?;
        let created = out.created_date().map(|d| d.secs());
        let doc = out.secret_string().map(str::to_string).ok_or_else(|| {
            Error::Secrets(Fault::permanent(format!("secret {id} has no SecretString")))
        })?;
        Ok((doc, created))
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn load(&self) -> Result<BridgeSecrets, Error> {
        let docs = fetch_each(&self.secret_ids, |id| Self::fetch(self.client.clone(), id)).await?;
        let holder = self
            .secret_ids
            .iter()
            .zip(&docs)
            .find(|(_, doc)| rotation::holds_client_secret(doc))
            .map(|(id, _)| id.clone());
        *self.holder.lock().unwrap_or_else(|p| p.into_inner()) = holder;
        BridgeSecrets::parse_merged(&docs)
    }

    async fn previous_client_secret(&self) -> Result<Option<PreviousSecret>, Error> {
        let holder = self
            .holder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match holder {
            Some(id) => rotation::previous_in(&self.client, &id).await,
            None => Ok(None),
        }
    }
}

/// The secret ids in `SECRET_ID` (comma-separated, blanks ignored).
pub(crate) fn split_ids(ids: &str) -> Vec<String> {
    ids.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Fetches every secret in `ids` concurrently; the documents in order.
pub(crate) async fn fetch_each<F, Fut>(ids: &[String], fetch: F) -> Result<Vec<String>, Error>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<String, Error>> + Send + 'static,
{
    if ids.is_empty() {
        return Err(Error::Secrets(Fault::permanent(
            "SECRET_ID names no secret",
        )));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let doc = fetch(id.clone());
        tasks.spawn(async move { (i, doc.await) });
    }
    let mut docs = vec![String::new(); ids.len()];
    while let Some(joined) = tasks.join_next().await {
        let (i, doc) = joined.map_err(|e| {
            Error::Secrets(Fault::transient("secret fetch task failed").with_source(e))
        })?;
        docs[i] = doc?;
    }
    Ok(docs)
}

/// Caches a [`SecretSource`] for `ttl` seconds. When a refresh fails the
/// last good value keeps serving (and the failure is logged), so a Secrets
/// Manager hiccup does not take the endpoints down.
pub struct CachedSecrets {
    source: Box<dyn SecretSource>,
    clock: Arc<dyn Clock>,
    ttl: i64,
    cache: RwLock<Option<Cached>>,
    /// The previous client secret, read lazily, cached for the TTL too.
    previous: RwLock<Option<rotation::CachedPrevious>>,
    /// When the caches were last dropped for an unknown client secret.
    last_reread: std::sync::Mutex<Option<i64>>,
}

/// The secrets last read, and when to read them again.
struct Cached {
    secrets: Arc<BridgeSecrets>,
    /// Now + TTL after a read; after a failed refresh, now + a backoff.
    next_read: i64,
    /// Refreshes failed in a row.
    failures: u32,
}

/// The first pause after a failed refresh; it doubles up to the TTL.
const FIRST_BACKOFF_SECS: i64 = 5;

impl CachedSecrets {
    pub fn new(source: impl SecretSource + 'static, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self {
            source: Box::new(source),
            clock,
            ttl: crate::clock::secs(ttl),
            cache: RwLock::new(None),
            previous: RwLock::new(None),
            last_reread: std::sync::Mutex::new(None),
        }
    }

    /// The secrets: cached for the TTL. When a refresh fails the cached
    /// value is served and the next read waits out a backoff (5 s, doubling
    /// up to the TTL), so an outage of Secrets Manager is not answered with
    /// a GetSecretValue (and the SDK's retries) on every request.
    pub async fn get(&self) -> Result<Arc<BridgeSecrets>, Error> {
        let now = self.clock.now();
        if let Some(c) = &*self.cache.read().await {
            if now < c.next_read {
                return Ok(c.secrets.clone());
            }
        }
        let mut guard = self.cache.write().await;
        // Another task may have refreshed while we waited for the lock.
        if let Some(c) = &*guard {
            if now < c.next_read {
                return Ok(c.secrets.clone());
            }
        }
        match self.source.load().await {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                *guard = Some(Cached {
                    secrets: fresh.clone(),
                    next_read: now + self.ttl,
                    failures: 0,
                });
                Ok(fresh)
            }
            Err(e) => match guard.as_mut() {
                Some(c) => {
                    c.failures += 1;
                    let backoff =
                        (FIRST_BACKOFF_SECS << (c.failures - 1).min(16)).min(self.ttl.max(1));
                    c.next_read = now + backoff;
                    tracing::warn!(error = %e, retry_in_secs = backoff, "secrets refresh failed; serving the cached value");
                    Ok(c.secrets.clone())
                }
                None => Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting {
        calls: Arc<AtomicUsize>,
        fail_after: usize,
    }

    #[async_trait]
    impl SecretSource for Counting {
        async fn load(&self) -> Result<BridgeSecrets, Error> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n >= self.fail_after {
                return Err(Error::Secrets(Fault::transient("down")));
            }
            Ok(BridgeSecrets::generate())
        }
    }

    #[tokio::test]
    async fn caches_for_ttl_then_refreshes_and_survives_failures() {
        let calls = Arc::new(AtomicUsize::new(0));
        let clock = Arc::new(ManualClock::new(1000));
        let c = CachedSecrets::new(
            Counting {
                calls: calls.clone(),
                fail_after: 2,
            },
            clock.clone(),
            Duration::from_secs(60),
        );
        let a = c.get().await.unwrap();
        let b = c.get().await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        clock.advance(61);
        let d = c.get().await.unwrap();
        assert!(!Arc::ptr_eq(&a, &d));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        clock.advance(61);
        // Source now fails: the stale value is served.
        let e = c.get().await.unwrap();
        assert!(Arc::ptr_eq(&d, &e));
    }

    /// A Secrets Manager outage is not amplified (correctness issue, item
    /// 9): once a refresh failed, the stale value is served without another
    /// GetSecretValue until a backoff (5 s, doubling up to the TTL) passes.
    #[tokio::test]
    async fn a_failed_refresh_backs_off_instead_of_retrying_every_request() {
        let calls = Arc::new(AtomicUsize::new(0));
        let clock = Arc::new(ManualClock::new(1000));
        let c = CachedSecrets::new(
            Counting {
                calls: calls.clone(),
                fail_after: 1,
            },
            clock.clone(),
            Duration::from_secs(60),
        );
        let first = c.get().await.unwrap();
        clock.advance(61);
        for _ in 0..20 {
            assert!(Arc::ptr_eq(&first, &c.get().await.unwrap()));
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "one failed refresh, then none"
        );
        clock.advance(4);
        c.get().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2, "inside the 5 s backoff");
        clock.advance(1);
        c.get().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3, "tried again after 5 s");
        clock.advance(9);
        c.get().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3, "then after 10 s");
        clock.advance(1);
        c.get().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn first_failure_is_an_error() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = CachedSecrets::new(
            Counting {
                calls,
                fail_after: 0,
            },
            Arc::new(ManualClock::new(0)),
            Duration::from_secs(60),
        );
        assert!(c.get().await.is_err());
    }

    #[test]
    fn debug_never_prints_secrets() {
        let s = BridgeSecrets::generate();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains(s.client_secret.expose()));
        assert!(dbg.contains("[redacted]"));
    }

    #[test]
    fn merges_several_documents_and_refuses_duplicates() {
        let long = "y".repeat(40);
        let docs = [
            format!(r#"{{"clientSecret":"{long}"}}"#),
            format!(r#"{{"sessionKey":"{long}"}}"#),
            format!(r#"{{"tokenHashKey":"{long}"}}"#),
        ];
        assert!(BridgeSecrets::parse_merged(&docs).is_ok());
        let dup = [
            docs[0].clone(),
            docs[0].clone(),
            docs[1].clone(),
            docs[2].clone(),
        ];
        assert!(BridgeSecrets::parse_merged(&dup).is_err());
        assert!(
            BridgeSecrets::parse_merged(&docs[..2]).is_err(),
            "a key is missing"
        );
    }

    #[test]
    fn parse_validates_and_hides_document() {
        let short = r#"{"clientSecret":"abc","sessionKey":"abc","tokenHashKey":"abc"}"#;
        assert!(BridgeSecrets::parse(short).is_err());
        let err = BridgeSecrets::parse(r#"{"clientSecret":"supersecretvalue"#).unwrap_err();
        assert!(!err.to_string().contains("supersecretvalue"));
        let long = "x".repeat(40);
        let ok =
            format!(r#"{{"clientSecret":"{long}","sessionKey":"{long}","tokenHashKey":"{long}"}}"#);
        assert!(BridgeSecrets::parse(&ok).is_ok());
    }
}
