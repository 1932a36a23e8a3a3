//! `syncaroo-admin`: operate a deployed syncaroo-bridge stack from a shell,
//! through the standard AWS environment (profile, region, credentials,
//! `AWS_ENDPOINT_URL_*`) and the stack's table and queue names (its
//! outputs `TableName`, `DeadLetterQueueUrl`, `EventBusName`).
//!
//! Every command calls the same shared functions as the platform API
//! routes (`syncaroo_shared::platform_ops`) and the sync worker
//! (`syncaroo_shared::deadletter::replay`), so what it does is what the
//! deployed functions do. Human-readable tables by default; `--json` for
//! scripts. Nothing it prints holds a token or secret.

mod dead_letters;
mod render;
mod rotate;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use std::process::ExitCode;
use std::sync::Arc;
use syncaroo_shared::model::{ConnectionId, UserId};
use syncaroo_shared::platform_ops as ops;
use syncaroo_shared::secrets::{BridgeSecrets, SecretSource};
use syncaroo_shared::store::{DynamoStore, Store};
use syncaroo_shared::{App, Config, Error};

#[derive(Parser)]
#[command(
    name = "syncaroo-admin",
    version,
    about = "Operate a deployed syncaroo-bridge stack"
)]
struct Cli {
    /// The stack's DynamoDB table (output TableName).
    #[arg(
        long,
        env = "TABLE_NAME",
        global = true,
        default_value = "syncaroo-bridge"
    )]
    table: String,
    /// The stack's dead-letter queue URL (output DeadLetterQueueUrl).
    #[arg(long, env = "DEAD_LETTER_QUEUE_URL", global = true, default_value = "")]
    queue_url: String,
    /// The EventBridge bus change events go to (output EventBusName).
    #[arg(long, env = "EVENT_BUS_NAME", global = true, default_value = "default")]
    event_bus: String,
    /// The Source of change events (output EventSource).
    #[arg(
        long,
        env = "EVENT_SOURCE",
        global = true,
        default_value = "syncaroo-bridge"
    )]
    event_source: String,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connections: list, show, revoke.
    #[command(subcommand)]
    Connections(Connections),
    /// A user's listings: put, delete, import in bulk.
    #[command(subcommand)]
    Listings(Listings),
    /// The dead-letter queue: list, replay.
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(DeadLetters),
    /// Our Syncaroo API credentials.
    #[command(subcommand)]
    Credentials(Credentials),
    /// Users' synced data: list, show, backfill.
    #[command(subcommand)]
    Data(Data),
    /// A connection's sync health.
    #[command(subcommand)]
    Sync(Sync),
    /// Our secrets: rotate yourClientSecret.
    #[command(subcommand)]
    Secrets(Secrets),
    /// Users: erase one.
    #[command(subcommand)]
    Users(Users),
}

#[derive(Subcommand)]
enum Users {
    /// Erases everything held for a user (the platform API's DELETE),
    /// calling again until a call finds nothing left.
    Erase {
        user_id: String,
        /// The most items one call removes.
        #[arg(long, default_value_t = syncaroo_shared::store::erase::ERASE_BUDGET as u64,
              value_parser = clap::value_parser!(u64).range(1..))]
        budget: u64,
    },
}

#[derive(Subcommand)]
enum Secrets {
    /// Puts a new yourClientSecret (every other key of the secret kept as
    /// it is) and prints the new setup block for Syncaroo. The replaced
    /// secret keeps working for CLIENT_SECRET_GRACE_SECONDS.
    #[command(name = "rotate-client-secret")]
    RotateClientSecret {
        /// The secret holding clientSecret (output YourClientSecretArn).
        #[arg(long)]
        secret_id: String,
        /// The stack's public base (output SiteUri).
        #[arg(long)]
        site_uri: String,
        /// yourClientId (output YourClientId).
        #[arg(long)]
        client_id: String,
    },
}

#[derive(clap::Args)]
struct DataList {
    user_id: String,
    #[arg(long)]
    cursor: Option<String>,
    #[arg(long, default_value_t = syncaroo_shared::platform_data::DEFAULT_LIMIT)]
    limit: usize,
    #[arg(long)]
    connection: Option<String>,
    #[arg(long)]
    location: Option<String>,
    #[arg(long)]
    attribute_type: Option<String>,
    /// One resource's target (not with --location-level).
    #[arg(long, conflicts_with = "location_level")]
    resource: Option<String>,
    /// Only targets of a whole location (no resource id).
    #[arg(long)]
    location_level: bool,
}

impl DataList {
    /// The read it asks for; a bad value is refused before anything runs.
    fn read(&self) -> Result<syncaroo_shared::store::datalog::DataRead, Error> {
        use syncaroo_shared::platform_data::MAX_LIMIT;
        use syncaroo_shared::store::datalog::{DataFilter, DataRead, LogCursor, ResourceFilter};
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(Error::InvalidRequest(format!(
                "--limit must be 1 to {MAX_LIMIT}"
            )));
        }
        let filter = DataFilter {
            connection: self
                .connection
                .as_deref()
                .map(ConnectionId::parse)
                .transpose()?,
            location: self.location.clone(),
            attribute_type: self.attribute_type.clone(),
            resource: match (&self.resource, self.location_level) {
                (Some(r), _) => ResourceFilter::Resource(r.clone()),
                (None, true) => ResourceFilter::LocationLevel,
                (None, false) => ResourceFilter::Any,
            },
        };
        let after = self.cursor.as_deref().map(LogCursor::decode).transpose()?;
        Ok(DataRead {
            after: after.unwrap_or_default(),
            limit: self.limit,
            filter,
        })
    }
}

#[derive(Subcommand)]
enum Sync {
    /// The connection with its targets, pending and failing ones, and
    /// whether our Syncaroo credentials work (the platform API's GET).
    Status { connection_id: String },
}

#[derive(Subcommand)]
enum Data {
    /// A page of a user's synced data in the order it was stored, after
    /// --cursor (the platform API's data route).
    List(DataList),
    /// One target's synced data.
    Show {
        user_id: String,
        connection: String,
        location: String,
        attribute_type: String,
        /// The resource (none: the location-level target).
        #[arg(long)]
        resource: Option<String>,
    },
    /// Logs synced data stored before the data log existed, so the data
    /// route returns it, and indexes codes and statuses stored before
    /// erasure's index, so an erasure finds them (each once; running it
    /// again changes nothing).
    Backfill,
}

#[derive(Subcommand)]
enum Connections {
    /// Every connection (or one user's), oldest id first.
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// One connection.
    Show { connection_id: String },
    /// Revoke a connection: every token of it refused from now on, and a
    /// `Syncaroo Connection Revoked` event.
    Revoke { connection_id: String },
}

#[derive(Subcommand)]
enum Listings {
    /// Replace a user's listings with FILE's (`{"locations": {...}}`, as
    /// the platform API's PUT; `-` reads stdin).
    Put { user_id: String, file: String },
    /// Delete a user's listings.
    Delete { user_id: String },
    /// Load a file of users' listings (one object or a list); with
    /// --replace each user ends with exactly the file's locations.
    Import {
        file: String,
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Subcommand)]
enum DeadLetters {
    /// What is on the queue (left there).
    List {
        #[arg(long, default_value_t = 100)]
        max: usize,
    },
    /// Re-drive each message: a webhook is recorded again for the worker,
    /// a change event is put again. Done messages are deleted; the others
    /// stay on the queue.
    Replay {
        #[arg(long, default_value_t = 100)]
        max: usize,
    },
}

#[derive(Subcommand)]
enum Credentials {
    /// Whether the bundle can call Syncaroo, and until when.
    Status,
}

/// The CLI reads no secret: its commands need none.
struct NoSecrets;

#[async_trait::async_trait]
impl SecretSource for NoSecrets {
    async fn load(&self) -> Result<BridgeSecrets, Error> {
        Err(Error::Config("syncaroo-admin reads no secrets".into()))
    }
}

async fn app(cli: &Cli, sdk: &aws_config::SdkConfig) -> Result<App, Error> {
    let config = Config::from_lookup(|k| match k {
        "TABLE_NAME" => Some(cli.table.clone()),
        "DEAD_LETTER_QUEUE_URL" => Some(cli.queue_url.clone()),
        "EVENT_BUS_NAME" => Some(cli.event_bus.clone()),
        "EVENT_SOURCE" => Some(cli.event_source.clone()),
        _ => None,
    })?;
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        &cli.table,
    ));
    Ok(App::new(
        config,
        store,
        NoSecrets,
        Arc::new(syncaroo_shared::clock::SystemClock),
    )
    .with_aws_changes(sdk))
}

fn read_file(path: &str) -> Result<String, Error> {
    if path == "-" {
        return std::io::read_to_string(std::io::stdin())
            .map_err(|e| Error::InvalidRequest(format!("stdin: {e}")));
    }
    std::fs::read_to_string(path).map_err(|e| Error::InvalidRequest(format!("{path}: {e}")))
}

/// Runs a command; what to print (JSON, rendered as a table unless
/// `--json`).
async fn run(cli: &Cli, app: &App, sdk: &aws_config::SdkConfig) -> Result<Value, Error> {
    let store = app.store.as_ref();
    Ok(match &cli.command {
        Command::Connections(Connections::List { user }) => {
            let user = user.as_deref().map(UserId::parse).transpose()?;
            let mut all = Vec::new();
            let mut after: Option<ConnectionId> = None;
            loop {
                let (page, next) = store
                    .list_connections(user.as_ref(), after.as_ref(), 100)
                    .await?;
                all.extend(page.iter().map(ops::connection_view));
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            json!({ "connections": all })
        }
        Command::Connections(Connections::Show { connection_id }) => {
            let id = ConnectionId::parse(connection_id)?;
            ops::show_connection(store, &id)
                .await?
                .ok_or(Error::NotFound)?
        }
        Command::Connections(Connections::Revoke { connection_id }) => {
            let id = ConnectionId::parse(connection_id)?;
            ops::revoke_connection(app, &id)
                .await?
                .ok_or(Error::NotFound)?
        }
        Command::Listings(Listings::Put { user_id, file }) => {
            let user = UserId::parse(user_id)?;
            let locations = ops::parse_push(read_file(file)?.as_bytes())?;
            ops::replace_listings(store, &user, &locations).await?
        }
        Command::Listings(Listings::Delete { user_id }) => {
            let user = UserId::parse(user_id)?;
            ops::replace_listings(store, &user, &Default::default()).await?
        }
        Command::Listings(Listings::Import { file, replace }) => {
            let n = ops::import_listings(store, &read_file(file)?, *replace).await?;
            json!({ "locations": n, "replaced": replace })
        }
        Command::DeadLetters(DeadLetters::List { max }) => {
            let q = dead_letters::Queue::new(sdk, &cli.queue_url)?;
            json!({ "deadLetters": q.list(*max).await? })
        }
        Command::DeadLetters(DeadLetters::Replay { max }) => {
            let q = dead_letters::Queue::new(sdk, &cli.queue_url)?;
            json!({ "replayed": q.replay(app, *max).await? })
        }
        Command::Credentials(Credentials::Status) => ops::credentials_status(store).await?,
        Command::Data(d) => data(cli, store, sdk, d).await?,
        Command::Secrets(Secrets::RotateClientSecret {
            secret_id,
            site_uri,
            client_id,
        }) => rotate::rotate(sdk, secret_id, site_uri, client_id).await?,
        Command::Users(Users::Erase { user_id, budget }) => {
            erase(app, &UserId::parse(user_id)?, *budget as usize).await?
        }
        Command::Sync(Sync::Status { connection_id }) => {
            let id = ConnectionId::parse(connection_id)?;
            syncaroo_shared::platform_data::connection_health(store, &id)
                .await?
                .ok_or(Error::NotFound)?
        }
    })
}

/// Erasure calls until one finds nothing left; the removed counts summed.
async fn erase(app: &App, user: &UserId, budget: usize) -> Result<Value, Error> {
    let mut total = syncaroo_shared::store::Erased::default();
    let (mut calls, mut idle) = (0, 0);
    loop {
        let report = syncaroo_shared::erasure::erase_user(app, user, budget).await?;
        calls += 1;
        for (k, n) in &report.erased.removed {
            total.add(k, *n);
        }
        if report.done {
            return Ok(json!({
                "userId": user.as_str(),
                "removed": total.removed,
                "calls": calls,
                "done": true,
            }));
        }
        if report.erased.total() > 0 {
            idle = 0;
            continue;
        }
        // Nothing found, but too soon after the erasure began to prove it,
        // or the dead-letter queue not read through: wait and call again.
        idle += 1;
        if idle > 30 {
            return Err(Error::Unavailable(
                "the erasure found nothing for 30 calls but could not finish: is the dead-letter queue too large to read through? Call again later".into(),
            ));
        }
        let settle = syncaroo_shared::erasure::SETTLE_MS as u64;
        tokio::time::sleep(std::time::Duration::from_millis(settle)).await;
    }
}

/// The `data` commands.
async fn data(
    cli: &Cli,
    store: &dyn Store,
    sdk: &aws_config::SdkConfig,
    command: &Data,
) -> Result<Value, Error> {
    use syncaroo_shared::platform_data;
    use syncaroo_shared::store::datalog::{DataFilter, DataRead, LogCursor};
    let (user, mut read) = match command {
        Data::Backfill => {
            let dynamo = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &cli.table);
            let logged = dynamo.backfill_data_log().await?;
            let indexed = dynamo.backfill_owned_index().await?;
            return Ok(json!({ "logged": logged, "indexed": indexed }));
        }
        Data::List(list) => (&list.user_id, list.read()?),
        Data::Show {
            user_id,
            connection,
            location,
            attribute_type,
            resource,
        } => {
            let target = syncaroo_shared::store::SyncTarget {
                connection_id: ConnectionId::parse(connection)?,
                location_id: location.clone(),
                attribute_type: attribute_type.clone(),
                resource_id: resource.clone(),
            };
            let read = DataRead {
                after: LogCursor::default(),
                limit: 1,
                filter: DataFilter::target(&target),
            };
            (user_id, read)
        }
    };
    let user = UserId::parse(user)?;
    loop {
        let page = store.read_data(&user, &read).await?;
        // `show` reads on past entries its filter leaves out until it
        // finds the target or the log ends.
        if matches!(command, Data::Show { .. }) && page.items.is_empty() && page.has_more {
            read.after = page.cursor;
            continue;
        }
        let body = platform_data::render(&page)?;
        return serde_json::from_slice(&body)
            .map_err(|e| Error::corrupt(format!("data page: {e}")));
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let sdk = match syncaroo_shared::aws_http::load_sdk_config().await {
        Ok(sdk) => sdk,
        Err(e) => {
            eprintln!("syncaroo-admin: AWS configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match app(&cli, &sdk).await {
        Ok(app) => run(&cli, &app, &sdk).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(v) => {
            if cli.json {
                println!("{v:#}");
            } else {
                print!("{}", render::human(&v));
            }
            // A replay that left messages on the queue is not a success.
            let left = v["replayed"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|x| x["result"].as_str().is_some_and(|s| s.starts_with("left")))
            });
            if left {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("syncaroo-admin: {}", render::error(&e));
            ExitCode::from(match e {
                Error::InvalidRequest(_) | Error::NotFound | Error::Conflict(_) => 1,
                _ => 2,
            })
        }
    }
}
