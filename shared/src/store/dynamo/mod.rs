//! DynamoDB, single table. Item layout (also in docs/ARCHITECTURE.md):
//!
//! | item | pk | sk | notes |
//! |---|---|---|---|
//! | code | `CODE#<hmac>` | `CODE` | `expires_at`, `consumed`, token hashes once redeemed; `ttl` a day after expiry so replays are still recognised |
//! | token | `TOKEN#<hmac>` | `TOKEN` | `kind`, `conn`, `user`, `client`, `family`, `expires_at`, `revoked`, `used_at`; GSI `gsi1` on `gsi1pk = FAM#<family>` |
//! | family | `FAM#<family>` | `FAMILY` | `revoked`: refresh of a revoked family is refused |
//! | connection | `CONN#<connectionId>` | `CONNECTION` | `user`, `client`, `status`, `created_at`, `confirmed_at` |
//! | location | `USER#<userId>` | `LOC#<locationId>` | `doc`: the location JSON in the guide's schema |
//!
//! One file per group of what the table holds: [`grants`] (codes, tokens,
//! connections), [`listings`], [`credentials`] (Syncaroo API credentials),
//! [`sync`] (webhook events, synced data, status); [`item`] has the
//! attribute helpers they share.

mod connections;
mod credentials;
mod datalog;
mod erase;
mod grant_steps;
mod grants;
pub mod item;
mod items;
mod listings;
mod retries;
mod sync;
mod synced;
mod tx;

pub use item::{get_bool, get_n, get_s, key, n, names, s, store_err, Item};
pub use retries::RetryTransactionConflict;
pub use sync::{event_from, event_item, target_from};

use super::Store;
use crate::error::Error;
use crate::model::TokenRecord;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::CancellationReason;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ScalarAttributeType,
    TimeToLiveSpecification, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use grants::token_item;
use item::{build_err, cancellation, conditional};

pub const GSI_FAMILY: &str = "gsi1";

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Seconds added to every `ttl` attribute written (see
    /// [`DynamoStore::with_ttl_shift`]); zero in production.
    ttl_shift: i64,
}

impl DynamoStore {
    /// A store on `client`, which also retries `TransactionConflictException`
    /// (see [`RetryTransactionConflict`]).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let client = Client::from_conf(
            client
                .config()
                .to_builder()
                .retry_classifier(RetryTransactionConflict)
                .build(),
        );
        Self {
            client,
            table: table.into(),
            ttl_shift: 0,
        }
    }

    /// Adds `secs` to every `ttl` attribute this store writes.
    ///
    /// Records carry their lifetimes in the handlers' clock (`expires_at`,
    /// checked by the code itself), while DynamoDB's TTL sweeper deletes
    /// items by the real clock. In production both clocks are the wall
    /// clock and the shift is zero. Tests run the handlers on a fixed clock
    /// (the time the `events/` files were made at), which the wall clock
    /// leaves behind; they set the shift to "wall clock now minus the fixed
    /// clock", so the sweeper sees the lifetimes the test meant on any date.
    pub fn with_ttl_shift(mut self, secs: i64) -> Self {
        self.ttl_shift = secs;
        self
    }

    /// The `ttl` attribute for an item DynamoDB may delete after `at`
    /// (seconds on the handlers' clock).
    fn ttl(&self, at: i64) -> AttributeValue {
        n(self.ttl_secs(at))
    }

    /// The `ttl` (epoch seconds) of an item to expire at `at` on the
    /// handlers' clock.
    fn ttl_secs(&self, at: i64) -> i64 {
        at + self.ttl_shift
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// A transaction step that stores a newly issued token (never over one).
    fn put_new_token(&self, t: &TokenRecord) -> Result<TransactWriteItem, Error> {
        self.put(
            token_item(t, self.ttl_shift),
            Some("attribute_not_exists(pk)"),
        )
    }

    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, Error> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string))
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Runs a transaction. `Ok(Err(reasons))` is a cancellation (a failed
    /// condition). A cancellation caused only by other transactions in
    /// flight on the same items (as when many callers race for one code) is
    /// retried by the SDK under [`retries::for_transactions`], so the losers
    /// see the winner's result instead of an error; the request is built
    /// once (its items are not copied per attempt).
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Vec<CancellationReason>>, Error> {
        let res = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .customize()
            .config_override(retries::for_transactions())
            .send()
            .await;
        match res {
            Ok(_) => Ok(Ok(())),
            Err(e) => cancellation(e).map(Err),
        }
    }

    /// The item under a key as DynamoDB holds it (what a stream record's
    /// image carries); for tests and debugging.
    pub async fn raw_item(&self, pk: &str, sk: &str) -> Result<Item, Error> {
        self.get_consistent(key(pk.to_string(), sk))
            .await?
            .ok_or(Error::NotFound)
    }

    /// The items of partition `pk` whose sort key starts with `sk_prefix`,
    /// as DynamoDB holds them (one page); for tests and debugging.
    pub async fn raw_items(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, Error> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .set_expression_attribute_names(names(&["pk", "sk"]))
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(sk_prefix))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_err("Query", e))?;
        Ok(out.items.unwrap_or_default())
    }

    /// A strongly consistent `GetItem`.
    async fn get_consistent(&self, key: Item) -> Result<Option<Item>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_err("GetItem", e))?;
        Ok(out.item)
    }

    /// The items at `keys` (those that exist), read strongly consistent in
    /// one BatchGetItem. Keys DynamoDB leaves unprocessed (under throttling)
    /// are read one by one, through the SDK's own retries.
    async fn batch_get_consistent(&self, keys: Vec<Item>) -> Result<Vec<Item>, Error> {
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(build_err)?;
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, request)
            .send()
            .await
            .map_err(|e| store_err("BatchGetItem", e))?;
        let mut items = out
            .responses
            .and_then(|mut r| r.remove(&self.table))
            .unwrap_or_default();
        let left = out
            .unprocessed_keys
            .and_then(|mut u| u.remove(&self.table))
            .map(|k| k.keys)
            .unwrap_or_default();
        for k in left {
            items.extend(self.get_consistent(k).await?);
        }
        Ok(items)
    }

    /// `PutItem` under `condition` (attributes named `#name`, values given);
    /// `Ok(false)` when the condition did not hold.
    async fn put_if(
        &self,
        item: Item,
        condition: &str,
        attrs: &[&str],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, Error> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(names(attrs));
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        conditional(req.send().await, "PutItem")
    }

    /// Creates the table with its index and TTL, if missing. The stack
    /// creates it in AWS; this is for DynamoDB Local and the local runner.
    pub async fn ensure_table(&self) -> Result<(), Error> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            // Only "no such table" means create it; anything else (no
            // access, throttled, unreachable) is that error.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_not_found_exception()) => {}
            Err(e) => return Err(store_err("DescribeTable", e)),
        }
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_err)
        };
        let ks = |name: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(t)
                .build()
                .map_err(build_err)
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(GSI_FAMILY)
            .key_schema(ks("gsi1pk", KeyType::Hash)?)
            .key_schema(ks("gsi1sk", KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .build()
            .map_err(build_err)?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .attribute_definitions(attr("gsi1pk")?)
            .attribute_definitions(attr("gsi1sk")?)
            .key_schema(ks("pk", KeyType::Hash)?)
            .key_schema(ks("sk", KeyType::Range)?)
            .global_secondary_indexes(gsi)
            .send()
            .await;
        if let Err(e) = created {
            let raced = e
                .as_service_error()
                .is_some_and(|se| se.is_resource_in_use_exception());
            if !raced {
                return Err(store_err("CreateTable", e));
            }
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name("ttl")
                    .build()
                    .map_err(build_err)?,
            )
            .send()
            .await
            .map_err(|e| store_err("UpdateTimeToLive", e))?;
        Ok(())
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn ping(&self, connections: usize) -> Result<(), Error> {
        let read = || async {
            self.client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key("PING", "PING")))
                .send()
                .await
                .map_err(|e| store_err("GetItem", e))
        };
        let reads = (0..connections.max(1)).map(|_| read());
        for r in futures_util::future::join_all(reads).await {
            r?;
        }
        Ok(())
    }
}

impl DynamoStore {
    /// A store on the table `table`, with the client configured from the
    /// standard AWS environment (`AWS_ENDPOINT_URL_DYNAMODB` and friends).
    pub async fn from_env(table: impl Into<String>) -> Self {
        let sdk = crate::aws_http::load_sdk_config()
            .await
            .expect("TLS configuration");
        Self::new(Client::new(&sdk), table)
    }
}
