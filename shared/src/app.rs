//! The dependencies every handler takes, and how a Lambda wires them from
//! AWS once per cold start.

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::Error;
use crate::secrets::{CachedSecrets, SecretSource, SecretsManagerSource};
use crate::store::{DynamoStore, Store};
use std::sync::Arc;

#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub secrets: Arc<CachedSecrets>,
    pub clock: Arc<dyn Clock>,
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
        }
    }

    /// Everything a Lambda needs, from the environment: one `SdkConfig` for
    /// all clients, then the secrets fetched and the DynamoDB connection
    /// warmed concurrently, so the first request pays for neither.
    pub async fn from_aws_env() -> Result<(Self, DynamoStore), Error> {
        let config = Config::from_env()?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table_name);
        let secrets =
            SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&sdk), &config.secret_id);
        let app = Self::new(
            config,
            Arc::new(store.clone()),
            secrets,
            Arc::new(SystemClock),
        );
        let (secrets, ping) = tokio::join!(app.secrets.get(), app.store.ping());
        secrets?;
        ping?;
        Ok((app, store))
    }
}
