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
    })
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
