//! The dependencies every handler takes, and how a Lambda wires them from
//! AWS once per cold start.

use crate::changes::{ChangeSink, Entry};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::deadletter::DeadLetters;
use crate::error::Error;
use crate::secrets::{CachedSecrets, SecretSource, SecretsManagerSource};
use crate::store::{DynamoStore, Store};
use crate::syncaroo::TokenProvider;
use std::sync::{Arc, OnceLock};

/// Puts change entries; one EventBridge refuses (after the sink's own
/// retries) goes to the dead-letter queue. Never fails its caller: the
/// change is stored already.
struct Announcer {
    config: Arc<Config>,
    changes: Arc<dyn ChangeSink>,
    dead_letters: Arc<dyn DeadLetters>,
}

impl Announcer {
    async fn announce(&self, entry: Entry) {
        let Err(e) = crate::changes::put(self.changes.as_ref(), &entry).await else {
            return;
        };
        let reason = format!("PutEvents failed: {e}");
        if let Err(dl) = self.dead_letters.send_entry(&entry, &reason).await {
            crate::metrics::count(crate::changes::METRIC_ENTRY_LOST, 1);
            tracing::error!(detail_type = %entry.detail_type, error = %dl, "change event lost: dead-letter send failed too");
        }
    }
}

#[async_trait::async_trait]
impl crate::syncaroo::CredentialEvents for Announcer {
    async fn needs_reauth(&self, reason: &str, at_secs: i64) {
        let entry = crate::changes::needs_reauth_entry(&self.config, reason, at_secs);
        self.announce(entry).await
    }
}

#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub secrets: Arc<CachedSecrets>,
    pub clock: Arc<dyn Clock>,
    /// Built on first use: only the functions that call Syncaroo pay for
    /// the HTTP client.
    provider: Arc<OnceLock<TokenProvider>>,
    /// The platform-JWT verifier (with its key cache), when configured.
    platform_jwt: Arc<OnceLock<Option<crate::platform_jwt::PlatformJwt>>>,
    /// Where change events go, and where those that cannot be put go.
    changes: Arc<dyn ChangeSink>,
    dead_letters: Arc<dyn DeadLetters>,
}

impl App {
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        secrets: impl SecretSource + 'static,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let ttl = config.secrets_cache_ttl;
        let secrets = Arc::new(CachedSecrets::new(secrets, clock.clone(), ttl));
        Self::with_cached_secrets(config, store, secrets, clock)
    }

    /// Like [`App::new`], with the secrets cache already built (and perhaps
    /// already filling).
    pub fn with_cached_secrets(
        config: Config,
        store: Arc<dyn Store>,
        secrets: Arc<CachedSecrets>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            config: Arc::new(config),
            store,
            secrets,
            clock,
            provider: Arc::new(OnceLock::new()),
            platform_jwt: Arc::new(OnceLock::new()),
            changes: Arc::new(NotWired),
            dead_letters: Arc::new(NotWired),
        }
    }

    /// Sends change events to `changes`, and dead letters (change events
    /// that could not be put, fetches given up) to `dead_letters`.
    pub fn with_changes(
        mut self,
        changes: Arc<dyn ChangeSink>,
        dead_letters: Arc<dyn DeadLetters>,
    ) -> Self {
        self.changes = changes;
        self.dead_letters = dead_letters;
        self
    }

    /// Change events to Amazon EventBridge and dead letters to the SQS
    /// queue `DEAD_LETTER_QUEUE_URL` (the functions that announce changes).
    pub fn with_aws_changes(self, sdk: &aws_config::SdkConfig) -> Self {
        let url = self.config.dead_letter_queue_url.clone();
        self.with_changes(
            Arc::new(crate::changes::EventBridgeSink::new(
                aws_sdk_eventbridge::Client::new(sdk),
            )),
            Arc::new(crate::deadletter::SqsDeadLetters::new(
                aws_sdk_sqs::Client::new(sdk),
                url,
            )),
        )
    }

    /// Warms the change-event connection in the background (see
    /// [`ChangeSink::warm`]); a failure is logged, never fatal: the first
    /// put then opens its own connection.
    pub fn warm_changes(&self) -> tokio::task::JoinHandle<()> {
        let (sink, bus) = (self.changes.clone(), self.config.event_bus_name.clone());
        tokio::spawn(async move {
            if let Err(e) = sink.warm(&bus).await {
                tracing::warn!(error = %e, "change-event connection not warmed");
            }
        })
    }

    pub fn changes(&self) -> &Arc<dyn ChangeSink> {
        &self.changes
    }

    pub fn dead_letters(&self) -> &Arc<dyn DeadLetters> {
        &self.dead_letters
    }

    /// Announces a change stored outside the sync worker (a confirmation,
    /// a revocation): put with retries; if they all fail, the entry goes to
    /// the dead-letter queue. Never fails the caller: the change is stored.
    pub async fn announce(&self, entry: Entry) {
        self.announcer().announce(entry).await
    }

    fn announcer(&self) -> Announcer {
        Announcer {
            config: self.config.clone(),
            changes: self.changes.clone(),
            dead_letters: self.dead_letters.clone(),
        }
    }

    /// The verifier of platform sessions from the platform's identity
    /// provider, if `PLATFORM_JWKS_URL` is set; built on first use.
    pub fn platform_jwt(&self) -> Option<&crate::platform_jwt::PlatformJwt> {
        self.platform_jwt
            .get_or_init(|| {
                self.config.platform_jwt.clone().map(|c| {
                    crate::platform_jwt::PlatformJwt::new(c, self.config.syncaroo_http_timeout)
                })
            })
            .as_ref()
    }

    /// The Syncaroo token provider on this app's store, secrets and clock.
    pub fn provider(&self) -> &TokenProvider {
        self.provider.get_or_init(|| {
            TokenProvider::new(
                &self.config,
                self.store.clone(),
                self.secrets.clone(),
                self.clock.clone(),
            )
            .with_events(Arc::new(self.announcer()))
        })
    }

    /// Uses `provider` instead of the default one (tests: short backoff).
    pub fn set_provider(&self, provider: TokenProvider) -> bool {
        self.provider.set(provider).is_ok()
    }

    /// Everything a Lambda needs, from the environment: one `SdkConfig` for
    /// all clients, then the secrets fetched and `dynamo_connections`
    /// DynamoDB connections warmed concurrently, so the first request pays
    /// for neither.
    pub async fn from_aws_env(
        dynamo_connections: usize,
    ) -> Result<(Self, aws_config::SdkConfig), Error> {
        let (app, sdk, warming) = Self::start_from_aws_env(dynamo_connections).await?;
        warming.finish().await?;
        Ok((app, sdk))
    }

    /// Like [`App::from_aws_env`], but returns as soon as the secrets fetch
    /// and the DynamoDB warm-up are in flight, so a function can build its
    /// other clients while it waits; it must then await [`Warming::finish`]
    /// before serving.
    ///
    /// Order matters for cold start: the secrets request (the slowest
    /// answer) leaves first, then the DynamoDB warm-up, and everything after
    /// is built while they are in flight.
    ///
    /// `dynamo_connections`: how many DynamoDB requests the function's
    /// request paths make at once (1 where every path is sequential), so
    /// init opens as many connections as they use and no more: each is a
    /// TCP and TLS handshake on the cold start's one thread.
    pub async fn start_from_aws_env(
        dynamo_connections: usize,
    ) -> Result<(Self, aws_config::SdkConfig, Warming), Error> {
        let t0 = std::time::Instant::now();
        let config = Config::from_env()?;
        let sdk = crate::aws_http::load_sdk_config()
            .await
            .map_err(Error::Config)?;
        let t_sdk = t0.elapsed();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let secrets = Arc::new(CachedSecrets::new(
            SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&sdk), &config.secret_id),
            clock.clone(),
            config.secrets_cache_ttl,
        ));
        let fetching = secrets.clone();
        let fetch = tokio::spawn(async move { fetching.get().await.map(drop) });
        let store: Arc<dyn Store> = Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.table_name,
        ));
        let pinging = store.clone();
        let ping = tokio::spawn(async move { pinging.ping(dynamo_connections).await });
        let app = Self::with_cached_secrets(config, store, secrets, clock);
        let t_clients = t0.elapsed();
        let warming = Warming {
            fetch,
            ping,
            t0,
            t_sdk,
            t_clients,
        };
        Ok((app, sdk, warming))
    }
}

/// A function that never announces changes: a put or dead letter here is
/// a wiring mistake, reported as an error, never silently dropped.
struct NotWired;

#[async_trait::async_trait]
impl ChangeSink for NotWired {
    async fn put(&self, _: &Entry) -> Result<(), Error> {
        Err(Error::Config(
            "no change-event sink is wired in this function".into(),
        ))
    }
}

#[async_trait::async_trait]
impl DeadLetters for NotWired {
    async fn send(&self, _: &crate::deadletter::GivenUp, _: &str) -> Result<(), Error> {
        Err(Error::Config(
            "no dead-letter queue is wired in this function".into(),
        ))
    }
    async fn purge(
        &self,
        _: &crate::model::UserId,
        _: &[crate::model::ConnectionId],
    ) -> Result<(u64, bool), Error> {
        Err(Error::Config(
            "no dead-letter queue is wired in this function".into(),
        ))
    }
    async fn send_entry(&self, _: &Entry, _: &str) -> Result<(), Error> {
        Err(Error::Config(
            "no dead-letter queue is wired in this function".into(),
        ))
    }
}

/// The secrets fetch and DynamoDB warm-up started by
/// [`App::start_from_aws_env`].
pub struct Warming {
    fetch: tokio::task::JoinHandle<Result<(), Error>>,
    ping: tokio::task::JoinHandle<Result<(), Error>>,
    t0: std::time::Instant,
    t_sdk: std::time::Duration,
    t_clients: std::time::Duration,
}

impl Warming {
    /// Waits for both; either failing fails the init.
    pub async fn finish(self) -> Result<(), Error> {
        let joined = |r: Result<Result<(), Error>, tokio::task::JoinError>| {
            r.map_err(|e| Error::Config(format!("init task: {e}")))?
        };
        let (fetch, ping) = tokio::join!(self.fetch, self.ping);
        joined(fetch)?;
        joined(ping)?;
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        // Where cold start goes (no values, only durations), for the
        // benchmark and for CloudWatch.
        tracing::info!(
            logging_ms = ms(self
                .t0
                .saturating_duration_since(crate::telemetry::main_started())),
            config_and_sdk_ms = ms(self.t_sdk),
            clients_ms = ms(self.t_clients - self.t_sdk),
            secrets_and_warm_ms = ms(self.t0.elapsed() - self.t_clients),
            since_main_ms = ms(crate::telemetry::main_started().elapsed()),
            "init done"
        );
        Ok(())
    }
}
