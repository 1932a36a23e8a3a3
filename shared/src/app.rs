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
        Self {
            config: Arc::new(config),
            store,
            secrets: Arc::new(CachedSecrets::new(secrets, clock.clone(), ttl)),
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
        let t0 = std::time::Instant::now();
        let config = Config::from_env()?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let t_sdk = t0.elapsed();
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table_name);
        let secrets =
            SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&sdk), &config.secret_id);
        let app = Self::new(config, Arc::new(store), secrets, Arc::new(SystemClock));
        let t_clients = t0.elapsed();
        let (secrets, ping) = tokio::join!(app.secrets.get(), app.store.ping());
        secrets?;
        ping?;
        // Where cold start goes (no values, only durations), for the
        // benchmark and for CloudWatch.
        tracing::info!(
            config_and_sdk_ms = t_sdk.as_secs_f64() * 1e3,
            clients_ms = (t_clients - t_sdk).as_secs_f64() * 1e3,
            secrets_and_warm_ms = (t0.elapsed() - t_clients).as_secs_f64() * 1e3,
            "init done"
        );
        Ok((app, sdk))
    }
}
