//! Our side as Syncaroo's OAuth client: the admin handshake, and the token
//! provider's single-flight refresh with its failure handling, against the
//! fake Syncaroo on loopback.

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use syncaroo_shared::clock::{Clock, SystemClock};
use syncaroo_shared::error::Error;
use syncaroo_shared::secrets::{CachedSecrets, SecretString, StaticSecrets};
use syncaroo_shared::store::{CredentialsStore, MemoryStore};
use syncaroo_shared::syncaroo::{
    CredentialStatus, NewCredentials, ProviderError, SyncarooCredentials, TokenProvider,
};
use syncaroo_shared::Config;
use syncaroo_sim::{Failure, FakeConfig, FakeSyncaroo};
use syncaroo_tests::{events_secrets, local_aws, logs};

fn config(fake: &FakeSyncaroo, timeout_ms: u64) -> Config {
    let base = fake.base();
    let timeout = timeout_ms.to_string();
    Config::from_lookup(|k| match k {
        "SYNCAROO_API_BASE" => Some(base.clone()),
        "SYNCAROO_ALLOW_LOOPBACK" => Some("true".into()),
        "SYNCAROO_HTTP_TIMEOUT_MS" => Some(timeout.clone()),
        "SYNCAROO_LEASE_MS" => Some("8000".into()),
        "SYNCAROO_WAIT_MS" => Some("15000".into()),
        _ => None,
    })
    .unwrap()
}

/// What a provider told its [`CredentialEvents`]: each reason.
#[derive(Default)]
struct Heard(std::sync::Mutex<Vec<String>>);

#[async_trait::async_trait]
impl syncaroo_shared::syncaroo::CredentialEvents for Heard {
    async fn needs_reauth(&self, reason: &str, _at_secs: i64) {
        self.0.lock().unwrap().push(reason.to_string());
    }
}

fn provider(
    store: Arc<dyn CredentialsStore>,
    fake: &FakeSyncaroo,
    timeout_ms: u64,
) -> TokenProvider {
    let mut secrets = events_secrets();
    secrets.syncaroo_client_id = Some(SecretString::new(fake.fake.cfg.client_id.clone()));
    secrets.syncaroo_client_secret = Some(SecretString::new(fake.fake.cfg.client_secret.clone()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let cached = Arc::new(CachedSecrets::new(
        StaticSecrets(secrets),
        clock.clone(),
        std::time::Duration::from_secs(300),
    ));
    TokenProvider::new(&config(fake, timeout_ms), store, cached, clock).with_backoff_ms(20)
}

/// Stores a pair the fake issued, expiring `expires_in` seconds from now.
async fn seed(
    store: &dyn CredentialsStore,
    fake: &FakeSyncaroo,
    expires_in: i64,
) -> (String, String) {
    let (access, refresh, _) = fake.fake.issue_pair();
    let now = SystemClock.now();
    store
        .put_credentials(
            &NewCredentials {
                access_token: SecretString::new(access.clone()),
                expires_at: now + expires_in,
                refresh_token: SecretString::new(refresh.clone()),
            },
            now,
        )
        .await
        .unwrap();
    (access, refresh)
}

async fn fake() -> FakeSyncaroo {
    FakeSyncaroo::start_local(FakeConfig::default())
        .await
        .unwrap()
}

async fn creds(store: &dyn CredentialsStore) -> SyncarooCredentials {
    store.get_credentials().await.unwrap().unwrap()
}

async fn ten_callers_one_refresh(store: Arc<dyn CredentialsStore>) {
    let fake = fake().await;
    let (old, _) = seed(store.as_ref(), &fake, -5).await;
    // Ten "Lambdas": ten providers, each with its own lease owner id.
    let barrier = Arc::new(tokio::sync::Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let p = provider(store.clone(), &fake, 2000);
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                p.access_token().await.map(|t| t.expose().to_string())
            })
        })
        .collect();
    let mut tokens = vec![];
    for t in tasks {
        tokens.push(t.await.unwrap().expect("every caller gets a token"));
    }
    assert_eq!(
        fake.fake.refreshes(),
        1,
        "exactly one refresh reached Syncaroo"
    );
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "all callers got the same token"
    );
    assert_ne!(tokens[0], old);
    assert!(
        fake.fake.access_valid(&tokens[0]),
        "and Syncaroo accepts it"
    );
    let c = creds(store.as_ref()).await;
    assert_eq!((c.version, c.lease_owner), (2, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_callers_share_one_refresh_on_dynamodb_local() {
    let Some(s) = local_aws::dynamo_store("creds", SystemClock.now()).await else {
        return;
    };
    ten_callers_one_refresh(Arc::new(s)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_callers_share_one_refresh_in_memory() {
    ten_callers_one_refresh(Arc::new(MemoryStore::new())).await;
}

async fn dead_lease_is_taken_over(store: Arc<dyn CredentialsStore>) {
    let fake = fake().await;
    seed(store.as_ref(), &fake, -5).await;
    // A refresher took the lease and died without finishing.
    let now = SystemClock.now_ms();
    assert!(store
        .acquire_lease(1, "dead-lambda", now, now + 1500)
        .await
        .unwrap());
    let started = std::time::Instant::now();
    let token = provider(store.clone(), &fake, 2000)
        .access_token()
        .await
        .expect("taken over");
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "waited for the lease to expire"
    );
    assert!(fake.fake.access_valid(token.expose()));
    assert_eq!(fake.fake.refreshes(), 1);
    let c = creds(store.as_ref()).await;
    assert_eq!((c.version, c.lease_owner), (2, None));
}

#[tokio::test]
async fn a_dead_lease_holder_is_taken_over_on_dynamodb_local() {
    let Some(s) = local_aws::dynamo_store("lease", SystemClock.now()).await else {
        return;
    };
    dead_lease_is_taken_over(Arc::new(s)).await;
}

#[tokio::test]
async fn a_dead_lease_holder_is_taken_over_in_memory() {
    dead_lease_is_taken_over(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn invalid_grant_marks_needs_reauth_and_stops_calling() {
    let cap = logs::capture();
    let fake = fake().await;
    let store: Arc<dyn CredentialsStore> = Arc::new(MemoryStore::new());
    let (_, refresh) = seed(store.as_ref(), &fake, -5).await;
    fake.fake.fail_next([Failure::InvalidGrant]);
    let heard = Arc::new(Heard::default());
    let p = provider(store.clone(), &fake, 2000).with_events(heard.clone());
    assert!(matches!(
        p.access_token().await,
        Err(ProviderError::NeedsReauth(_))
    ));
    let c = creds(store.as_ref()).await;
    assert_eq!(c.status, CredentialStatus::NeedsReauth);
    assert!(c.reason.unwrap().contains("invalid_grant"));
    assert_eq!(c.lease_owner, None);
    // No loop: further callers fail fast without calling Syncaroo.
    for _ in 0..3 {
        assert!(matches!(
            p.access_token().await,
            Err(ProviderError::NeedsReauth(_))
        ));
    }
    assert!(matches!(
        p.refresh_if_due().await,
        Err(ProviderError::NeedsReauth(_))
    ));
    assert_eq!(fake.fake.refreshes(), 1);
    // Told once, at the marking; later callers find the mark.
    let told = heard.0.lock().unwrap().clone();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains("invalid_grant") && !told[0].contains(&refresh));
    let text = cap.text();
    assert!(
        text.contains("metric=\"SyncarooNeedsReauth\""),
        "the metric is emitted"
    );
    assert!(text.contains("need an admin to reconnect"));
    assert!(!text.contains(&refresh), "no token in the log");
    // An admin reconnects: the credentials work again.
    seed(store.as_ref(), &fake, 600).await;
    assert!(p.access_token().await.is_ok());
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let fake = fake().await;
    let store: Arc<dyn CredentialsStore> = Arc::new(MemoryStore::new());
    seed(store.as_ref(), &fake, -5).await;
    fake.fake
        .fail_next([Failure::Status(500), Failure::Status(503)]);
    let token = provider(store.clone(), &fake, 2000)
        .access_token()
        .await
        .expect("third try works");
    assert_eq!(fake.fake.refreshes(), 3);
    assert!(fake.fake.access_valid(token.expose()));
}

async fn persistent_failure_keeps_old_refresh_token(failures: Vec<Failure>, timeout_ms: u64) {
    let fake = fake().await;
    let store: Arc<dyn CredentialsStore> = Arc::new(MemoryStore::new());
    let (_, refresh) = seed(store.as_ref(), &fake, -5).await;
    fake.fake.fail_next(failures);
    let p = provider(store.clone(), &fake, timeout_ms);
    assert!(matches!(
        p.access_token().await,
        Err(ProviderError::Unavailable(_))
    ));
    assert_eq!(fake.fake.refreshes(), 3, "three attempts, then stop");
    let c = creds(store.as_ref()).await;
    assert_eq!(
        c.status,
        CredentialStatus::Active,
        "not marked: Syncaroo may recover"
    );
    assert_eq!(
        c.refresh_token.expose(),
        refresh,
        "the old refresh token is kept"
    );
    assert_eq!(c.lease_owner, None, "the lease is released");
    assert!(fake.fake.refresh_valid(&refresh));
    // Syncaroo recovers: the kept token still works.
    assert!(p.access_token().await.is_ok());
    assert_eq!(fake.fake.refreshes(), 4);
}

#[tokio::test]
async fn persistent_5xx_gives_up_and_keeps_the_old_refresh_token() {
    persistent_failure_keeps_old_refresh_token(vec![Failure::Status(500); 3], 2000).await;
}

#[tokio::test]
async fn timeouts_give_up_and_keep_the_old_refresh_token() {
    let stall = Failure::Stall(Duration::from_millis(600));
    persistent_failure_keeps_old_refresh_token(vec![stall.clone(), stall.clone(), stall], 200)
        .await;
}

#[tokio::test]
async fn malformed_json_marks_needs_reauth() {
    let fake = fake().await;
    let store: Arc<dyn CredentialsStore> = Arc::new(MemoryStore::new());
    seed(store.as_ref(), &fake, -5).await;
    fake.fake.fail_next([Failure::Malformed]);
    let p = provider(store.clone(), &fake, 2000);
    assert!(matches!(
        p.access_token().await,
        Err(ProviderError::NeedsReauth(_))
    ));
    assert_eq!(
        creds(store.as_ref()).await.status,
        CredentialStatus::NeedsReauth
    );
    assert!(p.access_token().await.is_err());
    assert_eq!(fake.fake.refreshes(), 1);
}

/// A store that loses the write of a refreshed pair.
struct LosesRefresh(MemoryStore);

#[async_trait]
impl CredentialsStore for LosesRefresh {
    async fn get_credentials(&self) -> Result<Option<SyncarooCredentials>, Error> {
        self.0.get_credentials().await
    }
    async fn put_credentials(&self, new: &NewCredentials, now: i64) -> Result<u64, Error> {
        self.0.put_credentials(new, now).await
    }
    async fn acquire_lease(&self, v: u64, o: &str, n: i64, u: i64) -> Result<bool, Error> {
        self.0.acquire_lease(v, o, n, u).await
    }
    async fn complete_refresh(
        &self,
        _: u64,
        _: &str,
        _: &NewCredentials,
        _: i64,
    ) -> Result<bool, Error> {
        Err(Error::store("ProvisionedThroughputExceeded (simulated)"))
    }
    async fn release_lease(&self, o: &str) -> Result<(), Error> {
        self.0.release_lease(o).await
    }
    async fn mark_needs_reauth(&self, v: u64, o: &str, r: &str, n: i64) -> Result<bool, Error> {
        self.0.mark_needs_reauth(v, o, r, n).await
    }
    async fn put_oauth_state(&self, h: &str, e: i64) -> Result<(), Error> {
        self.0.put_oauth_state(h, e).await
    }
    async fn take_oauth_state(&self, h: &str, n: i64) -> Result<bool, Error> {
        self.0.take_oauth_state(h, n).await
    }
}

/// Syncaroo spent the old refresh token, so the new pair is the only
/// working one: when the lease write keeps failing it is kept in the
/// process and written (unconditionally) on the next use, not given up.
#[tokio::test]
async fn a_refresh_accepted_but_not_stored_is_kept_and_stored_next_time() {
    let fake = fake().await;
    let store: Arc<dyn CredentialsStore> = Arc::new(LosesRefresh(MemoryStore::new()));
    seed(store.as_ref(), &fake, -5).await;
    let p = provider(store.clone(), &fake, 2000);
    match p.access_token().await {
        Err(e @ ProviderError::Unavailable(_)) => {
            assert!(e.is_transient());
            assert!(e.to_string().contains("could not be stored yet"), "{e}");
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
    assert_eq!(
        creds(store.as_ref()).await.status,
        CredentialStatus::Active,
        "no admin is needed"
    );
    let token = p.access_token().await.expect("the kept pair is stored now");
    assert!(fake.fake.access_valid(token.expose()));
    let c = creds(store.as_ref()).await;
    assert!(fake.fake.refresh_valid(c.refresh_token.expose()));
    assert_eq!(c.access_token.expose(), token.expose());
    assert_eq!(
        fake.fake.refreshes(),
        1,
        "never retried with the spent refresh token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_401_forces_exactly_one_refresh_across_callers() {
    let fake = fake().await;
    let store: Arc<dyn CredentialsStore> = Arc::new(MemoryStore::new());
    let (rejected, _) = seed(store.as_ref(), &fake, 600).await;
    let rejected = SecretString::new(rejected);
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let p = provider(store.clone(), &fake, 2000);
            let r = rejected.clone();
            tokio::spawn(
                async move { p.after_unauthorized(&r).await.unwrap().expose().to_string() },
            )
        })
        .collect();
    let mut got = vec![];
    for t in tasks {
        got.push(t.await.unwrap());
    }
    assert_eq!(fake.fake.refreshes(), 1);
    assert!(got.iter().all(|t| t == &got[0] && t != rejected.expose()));
}

#[tokio::test]
async fn scheduled_refresh_only_when_due() {
    let fake = fake().await;
    let store: Arc<dyn CredentialsStore> = Arc::new(MemoryStore::new());
    let p = provider(store.clone(), &fake, 2000);
    assert!(matches!(
        p.refresh_if_due().await,
        Err(ProviderError::NotConnected)
    ));
    seed(store.as_ref(), &fake, 600).await;
    let out = serde_json::to_value(p.refresh_if_due().await.unwrap()).unwrap();
    assert_eq!(out["outcome"], "fresh");
    assert_eq!(fake.fake.refreshes(), 0);
    seed(store.as_ref(), &fake, 60).await; // inside the 240 s margin
    let out = serde_json::to_value(p.refresh_if_due().await.unwrap()).unwrap();
    assert_eq!(out["outcome"], "refreshed");
    assert_eq!(fake.fake.refreshes(), 1);
}

/// Two refreshers and a lapsed lease (correctness issue, item 5): B holds
/// the lease and sends the refresh token, while A (whose lease lapsed)
/// spends that same token at Syncaroo and stores the good pair. Syncaroo
/// refuses B's (retried) request with invalid_grant: a refusal for a token
/// that is no longer the stored one marks nothing, and the credentials
/// stay usable with A's pair. On DynamoDB Local and in memory.
async fn a_refusal_for_a_spent_token_marks_nothing(store: Arc<dyn CredentialsStore>) {
    let fake = fake().await;
    let (_, refresh) = seed(store.as_ref(), &fake, 5).await;
    // B's first request is held, then answered 504 (transient): B retries
    // with the same token after A spent it.
    fake.fake
        .fail_next([Failure::Stall(Duration::from_millis(400))]);
    let b = provider(store.clone(), &fake, 2000);
    let b_call = tokio::spawn(async move { b.access_token().await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let held = creds(store.as_ref()).await;
    assert!(held.lease_owner.is_some(), "B holds the lease");
    // A: the same refresh token at Syncaroo, then its pair stored (its
    // lease lapsed: written unconditionally, as TokenProvider::keep does).
    let a = provider(store.clone(), &fake, 2000);
    let secrets = {
        let mut s = events_secrets();
        s.syncaroo_client_id = Some(SecretString::new(fake.fake.cfg.client_id.clone()));
        s.syncaroo_client_secret = Some(SecretString::new(fake.fake.cfg.client_secret.clone()));
        s
    };
    let client = secrets.syncaroo_client().unwrap();
    let pair = a
        .oauth()
        .refresh(client, &SecretString::new(refresh), SystemClock.now())
        .await
        .expect("A's refresh");
    store
        .put_credentials(&pair, SystemClock.now())
        .await
        .unwrap();
    let b_result = b_call.await.unwrap();
    assert!(
        !matches!(b_result, Err(ProviderError::NeedsReauth(_))),
        "{b_result:?}"
    );
    let after = creds(store.as_ref()).await;
    assert_eq!(after.status, CredentialStatus::Active, "{:?}", after.reason);
    assert_eq!(after.access_token, pair.access_token, "A's pair is stored");
    // And it works: the next caller uses it without a refresh.
    let c = provider(store.clone(), &fake, 2000);
    assert_eq!(c.access_token().await.unwrap(), pair.access_token);
}

#[tokio::test]
async fn a_refusal_for_a_spent_token_marks_nothing_in_memory() {
    a_refusal_for_a_spent_token_marks_nothing(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn a_refusal_for_a_spent_token_marks_nothing_on_dynamodb_local() {
    let Some(s) = local_aws::dynamo_store("reauth-race", SystemClock.now()).await else {
        return;
    };
    a_refusal_for_a_spent_token_marks_nothing(Arc::new(s)).await;
}
