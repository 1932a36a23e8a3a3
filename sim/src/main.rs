//! `syncaroo-sim`: the Syncaroo side of the integration guide, for testing a
//! deployment without a Syncaroo sandbox. `syncaroo-sim --help` (and
//! `--help` of each command) lists every flag.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;
use syncaroo_sim::run::{run, SimOptions};
use syncaroo_sim::{FakeConfig, FakeSyncaroo};

#[derive(Parser)]
#[command(
    name = "syncaroo-sim",
    version,
    about = "Plays Syncaroo against a syncaroo-bridge deployment"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Plays Syncaroo against a deployment: connect flow (browser login and
    /// consent), token exchange and refresh, check_connection, webhooks
    /// (signed, duplicated, out of order, forged), and with --admin-key the
    /// platform's own connection to the fake Syncaroo API and the data sync.
    /// Prints a report; exits 1 on any failure.
    Run(Box<Run>),
    /// Only the fake Syncaroo API (OAuth authorize/token, paginating data
    /// API), until Ctrl-C.
    FakeSyncaroo(Fake),
}

#[derive(Args)]
struct Run {
    /// The deployment's siteUri.
    #[arg(long, value_name = "URL")]
    target: String,
    /// yourClientId.
    #[arg(long, value_name = "ID")]
    client_id: String,
    /// yourClientSecret.
    #[arg(long, value_name = "SECRET")]
    client_secret: String,
    /// Syncaroo's redirectUri registered at the target.
    #[arg(
        long,
        value_name = "URL",
        default_value = "https://app.syncaroo.com/connection"
    )]
    redirect_uri: String,
    /// The platform login to use.
    #[arg(long, default_value = "demo")]
    username: String,
    #[arg(long, default_value = "demo")]
    password: String,
    /// The connection to create (default: random).
    #[arg(long, value_name = "ID")]
    connection_id: Option<String>,
    /// The target's admin key: also run the API-side steps.
    #[arg(long, value_name = "KEY")]
    admin_key: Option<String>,
    /// Where the fake Syncaroo API listens; the target's SYNCAROO_API_BASE
    /// and SYNCAROO_DATA_BASES must be http://HOST:PORT/api/ (the local
    /// runner sets both).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9090")]
    fake_addr: SocketAddr,
    /// The fake's OAuth client.
    #[arg(long, value_name = "ID", default_value = syncaroo_sim::fake::DEFAULT_CLIENT_ID)]
    syncaroo_client_id: String,
    #[arg(long, value_name = "SECRET", default_value = syncaroo_sim::fake::DEFAULT_CLIENT_SECRET)]
    syncaroo_client_secret: String,
    /// How long to wait for fetches, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    sync_wait: u64,
}

#[derive(Args)]
struct Fake {
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9090")]
    addr: SocketAddr,
    #[arg(long, value_name = "ID", default_value = syncaroo_sim::fake::DEFAULT_CLIENT_ID)]
    client_id: String,
    #[arg(long, value_name = "SECRET", default_value = syncaroo_sim::fake::DEFAULT_CLIENT_SECRET)]
    client_secret: String,
}

/// The fake Syncaroo API on `addr`.
async fn start_fake(
    addr: SocketAddr,
    client_id: String,
    client_secret: String,
) -> Result<FakeSyncaroo, ExitCode> {
    let cfg = FakeConfig {
        client_id,
        client_secret,
        ..FakeConfig::default()
    };
    FakeSyncaroo::start(cfg, addr).await.map_err(|e| {
        eprintln!("error: cannot listen on {addr}: {e}");
        ExitCode::FAILURE
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(r) => simulate(*r).await,
        Command::FakeSyncaroo(f) => {
            let fake = match start_fake(f.addr, f.client_id, f.client_secret).await {
                Ok(fake) => fake,
                Err(code) => return code,
            };
            println!(
                "{}",
                serde_json::json!({
                    "syncarooApiBase": fake.base(),
                    "syncarooClientId": fake.fake.cfg.client_id,
                    "syncarooClientSecret": fake.fake.cfg.client_secret,
                })
            );
            eprintln!("fake Syncaroo API on {} (Ctrl-C to stop)", fake.base());
            let _ = tokio::signal::ctrl_c().await;
            ExitCode::SUCCESS
        }
    }
}

async fn simulate(r: Run) -> ExitCode {
    let fake = match start_fake(r.fake_addr, r.syncaroo_client_id, r.syncaroo_client_secret).await {
        Ok(fake) => fake,
        Err(code) => return code,
    };
    let mut opts = SimOptions::new(&r.target, &r.client_id, &r.client_secret);
    opts.redirect_uri = r.redirect_uri;
    opts.username = r.username;
    opts.password = r.password;
    if let Some(id) = r.connection_id {
        opts.connection_id = id;
    }
    opts.admin_key = r.admin_key;
    opts.sync_wait = Duration::from_secs(r.sync_wait);
    opts.progress = true;
    println!(
        "simulating Syncaroo against {} (fake Syncaroo API on {})",
        r.target,
        fake.base()
    );
    let report = run(&opts, &fake.fake).await;
    println!("\n{}", report.table());
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
