//! `syncaroo-local`: run the bundle locally. `syncaroo-local --help` (and
//! `--help` of each command) lists every flag.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use syncaroo_local::{Options, StoreKind};
use syncaroo_shared::store::DynamoStore;

#[derive(Parser)]
#[command(
    name = "syncaroo-local",
    version,
    about = "Runs every syncaroo-bridge endpoint in one local process",
    after_help = "Logs go to stderr; `serve` prints the guide's setup block as one JSON line on stdout. \
`--store dynamodb` and `import` reach DynamoDB through the standard AWS environment \
(AWS_ENDPOINT_URL_DYNAMODB, AWS_REGION, credentials)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves every endpoint (and a stand-in login page) until Ctrl-C.
    Serve(Box<Serve>),
    /// Loads listings in bulk into DynamoDB (the platform API's PUT, for
    /// many users at once).
    Import(Import),
    /// Runs the local runner and the Syncaroo simulator together: the
    /// whole flow once; exit code 1 if any step fails.
    Demo(Demo),
}

#[derive(Clone, Copy, ValueEnum)]
enum Store {
    /// The embedded in-memory store.
    Memory,
    /// DynamoDB, from the standard AWS environment (the table is created
    /// if missing).
    Dynamodb,
}

impl From<Store> for StoreKind {
    fn from(s: Store) -> Self {
        match s {
            Store::Memory => StoreKind::Memory,
            Store::Dynamodb => StoreKind::Dynamodb,
        }
    }
}

#[derive(Args)]
struct Serve {
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[arg(long, value_enum, default_value = "memory")]
    store: Store,
    /// The DynamoDB table (with --store dynamodb).
    #[arg(long, default_value = "syncaroo-bridge")]
    table: String,
    /// `yourClientId`.
    #[arg(long, default_value = "syncaroo-local")]
    client_id: String,
    /// `yourClientSecret` (default: random per run).
    #[arg(long)]
    client_secret: Option<String>,
    /// The `yourClientSecret` a rotation replaced: accepted too (token
    /// endpoint, webhook hashes) for CLIENT_SECRET_GRACE_SECONDS.
    #[arg(long, requires = "client_secret")]
    previous_client_secret: Option<String>,
    /// The only `redirectUri` accepted.
    #[arg(long, default_value = "https://app.syncaroo.com/connection")]
    redirect_uri: String,
    /// Extra listings to load at start, beside the demo user's.
    #[arg(long, value_name = "FILE")]
    listings: Option<String>,
    /// The Syncaroo API base (a loopback http:// base is allowed here).
    #[arg(
        long,
        value_name = "URL",
        default_value = "https://app.syncaroo.com/api/"
    )]
    syncaroo_base: String,
    /// Our OAuth client at the Syncaroo API.
    #[arg(long, value_name = "ID", default_value = syncaroo_sim::fake::DEFAULT_CLIENT_ID)]
    syncaroo_client_id: String,
    #[arg(long, value_name = "SECRET", default_value = syncaroo_sim::fake::DEFAULT_CLIENT_SECRET)]
    syncaroo_client_secret: String,
    /// The admin key (default: random, written to a file only you can read).
    #[arg(long, value_name = "KEY")]
    admin_key: Option<String>,
    /// Any setting of the configuration (docs/OPERATIONS.md), repeatable.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = setting)]
    settings: Vec<(String, String)>,
    /// Appends each change event, one PutEvents entry (JSON) a line.
    #[arg(long, value_name = "FILE")]
    events_out: Option<PathBuf>,
    /// Connections served at once; more wait in the listen backlog.
    #[arg(long, value_name = "N",
          default_value_t = syncaroo_sim::server::DEFAULT_MAX_CONNECTIONS as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
}

#[derive(Args)]
struct Import {
    /// One or many `{"userId", "locations"}` objects.
    #[arg(long, value_name = "FILE")]
    file: String,
    #[arg(long, default_value = "syncaroo-bridge")]
    table: String,
    /// Each user in the file ends with exactly the file's locations (one
    /// write per user); without it, locations are added or overwritten.
    #[arg(long)]
    replace: bool,
}

#[derive(Args)]
struct Demo {
    #[arg(long, value_enum, default_value = "memory")]
    store: Store,
    /// The DynamoDB table (with --store dynamodb).
    #[arg(long, default_value = "syncaroo-bridge")]
    table: String,
}

fn setting(kv: &str) -> Result<(String, String), String> {
    kv.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| "takes NAME=VALUE".to_string())
}

impl From<Serve> for Options {
    fn from(s: Serve) -> Self {
        Options {
            addr: s.addr,
            store: s.store.into(),
            table: s.table,
            client_id: s.client_id,
            client_secret: s.client_secret,
            previous_client_secret: s.previous_client_secret,
            redirect_uri: s.redirect_uri,
            listings: s.listings,
            syncaroo_base: s.syncaroo_base,
            syncaroo_client_id: s.syncaroo_client_id,
            syncaroo_client_secret: s.syncaroo_client_secret,
            admin_key: s.admin_key,
            settings: s.settings,
            events_out: s.events_out,
            max_connections: s.max_connections as usize,
            ..Options::default()
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own progress; keep the service logs to errors.
    let quiet = matches!(cli.command, Command::Demo(_));
    syncaroo_shared::telemetry::init_with_default(if quiet { "error" } else { "info" });
    let result = match cli.command {
        Command::Serve(s) => serve((*s).into()).await,
        Command::Import(i) => import(i).await,
        Command::Demo(d) => {
            demo(Options {
                store: d.store.into(),
                table: d.table,
                ..Options::default()
            })
            .await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `text` to a new file readable by this user only.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)?.write_all(text.as_bytes())
}

async fn serve(mut opts: Options) -> Result<(), String> {
    // The admin key never goes to the logs: a generated one is written to
    // a file only this user can read, and the log says where. Written
    // before the runner accepts a connection: a flood could leave no
    // descriptor for it afterwards.
    let where_ = match &opts.admin_key {
        Some(_) => "the one given with --admin-key".to_string(),
        None => {
            let key = syncaroo_shared::crypto::random_b64(32);
            let file = std::env::temp_dir()
                .join(format!("syncaroo-local-{}.admin-key", std::process::id()));
            write_private(&file, &key)
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
            opts.admin_key = Some(key);
            format!("in {}", file.display())
        }
    };
    let running = syncaroo_local::start(opts)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string(&running.setup).map_err(|e| e.to_string())?
    );
    eprintln!(
        "syncaroo-bridge local runner on {} (demo login: demo / demo). Ctrl-C to stop.",
        running.base()
    );
    eprintln!(
        "admin: {}{} (user admin; the password is {where_})",
        running.base(),
        syncaroo_local::ADMIN_CONNECT_PATH,
    );
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    running.stop();
    Ok(())
}

/// The runner, a fake Syncaroo API and the simulator, in one process: the
/// whole protocol once, with a line per step and a table at the end.
async fn demo(mut opts: Options) -> Result<(), String> {
    use syncaroo_sim::run::{run, SimOptions};
    let fake = syncaroo_sim::FakeSyncaroo::start_local(syncaroo_sim::FakeConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    opts.addr = "127.0.0.1:0".parse().expect("addr");
    opts.syncaroo_base = fake.base();
    let running = syncaroo_local::start(opts)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "syncaroo-bridge local runner on {}, fake Syncaroo API on {}",
        running.base(),
        fake.base()
    );
    println!("simulating Syncaroo: connect flow, tokens, check_connection, webhooks, data sync\n");
    let mut sim = SimOptions::new(
        &running.setup.site_uri,
        &running.setup.your_client_id,
        &running.setup.your_client_secret,
    );
    sim.admin_key = Some(running.admin_key.clone());
    sim.progress = true;
    // The runner's retry window for a reused refresh token.
    sim.refresh_grace = std::time::Duration::from_secs(1);
    let report = run(&sim, &fake.fake).await;
    let conn = syncaroo_shared::model::ConnectionId::parse(&sim.connection_id)
        .map_err(|e| e.to_string())?;
    // Locally we can also look inside: what the worker stored; then the
    // platform's side: revoke, and the change events the run announced.
    println!("\nthe platform's side (local only):");
    let stored = stored_step(&running, &conn).await?;
    print_step(&stored, "");
    let revoked = revoke_step(&running, &conn).await?;
    print_step(&revoked, "\n");
    println!("\n{}", report.table());
    running.stop();
    let failed = report.failed().len() + [&stored, &revoked].iter().filter(|s| !s.ok).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} check(s) or step(s) failed"))
    }
}

/// One of the demo's own steps, on the platform's side (no check of the
/// guide: what the runner stored, the platform API).
struct DemoStep {
    name: String,
    ok: bool,
    millis: u128,
    detail: String,
}

/// Prints `step` as a line of the demo's platform-side steps.
fn print_step(step: &DemoStep, before: &str) {
    println!(
        "{before}{} {:<32} {:>6} ms  {}",
        if step.ok { "PASS" } else { "FAIL" },
        step.name,
        step.millis,
        step.detail
    );
}

/// The demo's store step: the rates and status the worker stored.
async fn stored_step(
    running: &syncaroo_local::Running,
    conn: &syncaroo_shared::model::ConnectionId,
) -> Result<DemoStep, String> {
    let started = std::time::Instant::now();
    let store = running.store.as_ref();
    let rates = store
        .get_synced(conn, "1198", "rates", None)
        .await
        .map_err(|e| e.to_string())?;
    let status = store
        .get_location_status(conn, "1198")
        .await
        .map_err(|e| e.to_string())?;
    let (ok, detail) = match (rates, status) {
        (Some(r), Some(s)) => (
            r.pages == 3,
            format!(
                "rates of 1198: {} pages stored; status of 1198: {}",
                r.pages, s.meta
            ),
        ),
        (r, s) => (
            false,
            format!(
                "expected stored rates and status, found rates={} status={}",
                r.is_some(),
                s.is_some()
            ),
        ),
    };
    Ok(DemoStep {
        name: "store: synced data and status".into(),
        ok,
        millis: started.elapsed().as_millis(),
        detail,
    })
}

/// The demo's platform step: revoke the connection (the platform API's own
/// function), then list every change event the run put.
async fn revoke_step(
    running: &syncaroo_local::Running,
    conn: &syncaroo_shared::model::ConnectionId,
) -> Result<DemoStep, String> {
    let started = std::time::Instant::now();
    let revoked = syncaroo_shared::platform_ops::revoke_connection(&running.app, conn)
        .await
        .map_err(|e| e.to_string())?;
    let entries = running.change_events.entries();
    println!("\nchange events (PutEvents entries):");
    for e in &entries {
        let detail = if e.detail.len() > 160 {
            format!("{}... ({} bytes)", &e.detail[..160], e.detail.len())
        } else {
            e.detail.clone()
        };
        println!("  {:<34} {detail}", e.detail_type);
    }
    // The types this run makes happen (no sync fails, no credentials
    // need reauth, no user is erased).
    use syncaroo_shared::changes::Change;
    let missing: Vec<&str> = [
        Change::ConnectionConfirmed,
        Change::DataSynced,
        Change::LocationStatusChanged,
        Change::ConnectionRevoked,
    ]
    .iter()
    .map(|c| c.detail_type())
    .filter(|t| !entries.iter().any(|e| e.detail_type == *t))
    .collect();
    let ok = revoked.is_some() && missing.is_empty();
    let detail = if ok {
        format!("{} entries, the four types it makes", entries.len())
    } else {
        format!("revoked={}, missing {missing:?}", revoked.is_some())
    };
    Ok(DemoStep {
        name: "platform: revoke; change events".into(),
        ok,
        millis: started.elapsed().as_millis(),
        detail,
    })
}

async fn import(i: Import) -> Result<(), String> {
    let json =
        std::fs::read_to_string(&i.file).map_err(|e| format!("cannot read {}: {e}", i.file))?;
    let store = DynamoStore::from_env(&i.table).await;
    store.ensure_table().await.map_err(|e| e.to_string())?;
    let n = if i.replace {
        syncaroo_local::replace_listings_from(&store, &json).await
    } else {
        syncaroo_local::import_listings(&store, &json).await
    }
    .map_err(|e| e.to_string())?;
    let how = if i.replace {
        "replaced with"
    } else {
        "imported"
    };
    eprintln!("{how} {n} locations in table {}", i.table);
    Ok(())
}
