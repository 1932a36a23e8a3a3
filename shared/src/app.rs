//! The dependencies every handler takes, and how a Lambda wires them from
//! AWS once per cold start.

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::Error;
use crate::secrets::{CachedSecrets, SecretSource, SecretsManagerSource};
use crate::store::{DynamoStore, Store};
use crate::syncaroo::TokenProvider;
use std::sync::{Arc, OnceLock};

#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub secrets: Arc<CachedSecrets>,
    pub clock: Arc<dyn Clock>,
    /// Built on first use: only the functions that call Syncaroo pay for
    /// the HTTP client.
    provider: Arc<OnceLock<TokenProvider>>,
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
        }
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
        })
    }

    /// Uses `provider` instead of the default one (tests: short backoff).
    pub fn set_provider(&self, provider: TokenProvider) -> bool {
        self.provider.set(provider).is_ok()
    }

    /// Everything a Lambda needs, from the environment: one `SdkConfig` for
    /// all clients, then the secrets fetched and the DynamoDB connection
    /// warmed concurrently, so the first request pays for neither.
    pub async fn from_aws_env() -> Result<(Self, aws_config::SdkConfig), Error> {
        let (app, sdk, warming) = Self::start_from_aws_env().await?;
        warming.finish().await?;
        Ok((app, sdk))
    }

    /// Like [`App::from_aws_env`], but returns as soon as the secrets fetch
    /// and the DynamoDB warm-up are in flight (on the runtime's worker
    /// threads), so a function can build its other clients while it waits;
    /// it must then await [`Warming::finish`] before serving.
    pub async fn start_from_aws_env() -> Result<(Self, aws_config::SdkConfig, Warming), Error> {
        let t0 = std::time::Instant::now();
        let config = Config::from_env()?;
        let sdk = crate::aws_http::load_sdk_config()
            .await
            .map_err(Error::Config)?;
        let t_sdk = t0.elapsed();
        // Each request leaves as soon as its client exists, so everything
        // built after it is built while it is in flight.
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
        let ping = tokio::spawn(async move { pinging.ping().await });
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
