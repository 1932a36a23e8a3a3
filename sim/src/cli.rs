//! `syncaroo-sim`'s command line (clap), in the library so tests run it
//! in-process with their own arguments: [`main`] takes the arguments and
//! returns the exit code (0 every check passed or failed as listed, 1
//! otherwise, 2 the kit could not run).

use crate::checks;
use crate::run::{run, Join, Setup, SimOptions, WebhookBase};
use crate::{FakeConfig, FakeSyncaroo};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::time::Duration;

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
    /// Lists every check: id, the guide's section, the rule.
    Checks,
}

#[derive(Args)]
struct Run {
    /// The setup block the platform sends Syncaroo (JSON: siteUri, apiUri,
    /// authUri, webhookPath, checkConnectionPath, yourClientId,
    /// yourClientSecret, authTokenUri, and optionally redirectUri): every
    /// URL and credential comes from it.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["target", "client_id", "client_secret"])]
    setup: Option<String>,
    /// How a base and a path join: collapse (one slash at the seam) or
    /// literal (the guide's values then give a doubled slash).
    #[arg(long, value_enum, default_value = "collapse")]
    join: JoinArg,
    /// Which base webhookPath is appended to: api (the setup block's
    /// reading) or site (the data webhook section's).
    #[arg(long, value_enum, default_value = "api")]
    webhook_base: BaseArg,
    /// Instead of --setup: a syncaroo-bridge deployment's siteUri (our own
    /// route layout).
    #[arg(long, value_name = "URL", requires_all = ["client_id", "client_secret"])]
    target: Option<String>,
    /// yourClientId (with --target).
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// yourClientSecret (with --target).
    #[arg(long, value_name = "SECRET")]
    client_secret: Option<String>,
    /// Writes a JUnit XML report (one test case per check).
    #[arg(long, value_name = "FILE")]
    junit: Option<String>,
    /// Writes a JSON report.
    #[arg(long, value_name = "FILE")]
    report: Option<String>,
    /// Check ids the platform knowingly fails (one a line, or a JSON
    /// list): their failures do not fail the run, but passing one does
    /// (take it off the list).
    #[arg(long, value_name = "FILE")]
    expected_failures: Option<String>,
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
    #[arg(long, value_name = "ID", default_value = crate::fake::DEFAULT_CLIENT_ID)]
    syncaroo_client_id: String,
    #[arg(long, value_name = "SECRET", default_value = crate::fake::DEFAULT_CLIENT_SECRET)]
    syncaroo_client_secret: String,
    /// The webhook signature, ALG:ENCODING:KEY[:jcs] (the guide leaves it
    /// open): ALG hmac-sha256 | hmac-sha512 | sha256, ENCODING hex | base64,
    /// KEY client-secret (yourClientSecret) or the key itself.
    #[arg(
        long,
        value_name = "SPEC",
        default_value = "hmac-sha256:hex:client-secret:jcs"
    )]
    hash: String,
    /// Only these areas of checks, comma-separated: authorize, token, check,
    /// webhook, sync (the connect flow runs anyway).
    #[arg(long, value_delimiter = ',', value_parser = ["authorize", "token", "check", "webhook", "sync"])]
    sections: Vec<String>,
    /// How long the platform takes a repeated refresh token as a retry (its
    /// grace window): the reuse check waits past it.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    refresh_grace: u64,
    /// How long to wait for fetches, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    sync_wait: u64,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum JoinArg {
    Collapse,
    Literal,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BaseArg {
    Api,
    Site,
}

#[derive(Args)]
struct Fake {
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9090")]
    addr: SocketAddr,
    #[arg(long, value_name = "ID", default_value = crate::fake::DEFAULT_CLIENT_ID)]
    client_id: String,
    #[arg(long, value_name = "SECRET", default_value = crate::fake::DEFAULT_CLIENT_SECRET)]
    client_secret: String,
}

/// The fake Syncaroo API on `addr`.
async fn start_fake(
    addr: SocketAddr,
    client_id: String,
    client_secret: String,
) -> Result<FakeSyncaroo, u8> {
    let cfg = FakeConfig {
        client_id,
        client_secret,
        ..FakeConfig::default()
    };
    FakeSyncaroo::start(cfg, addr).await.map_err(|e| {
        eprintln!("error: cannot listen on {addr}: {e}");
        2u8
    })
}

/// Runs the command line `args` (the program name first).
pub async fn main<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.command {
        Command::Run(r) => simulate(*r).await,
        Command::Checks => {
            for c in crate::checks::CATALOG {
                println!("{:<32} {}  ({})", c.id, c.rule, c.section);
            }
            0u8
        }
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
            0u8
        }
    }
}

/// The kit could not run: say why, exit 2.
fn cannot_run(why: &str) -> u8 {
    eprintln!("error: {why}");
    2u8
}

/// The options a run takes: from --setup, or --target and the credentials.
fn options(r: &Run) -> Result<SimOptions, String> {
    if let Some(path) = &r.setup {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let setup = Setup::parse(&text)?;
        let join = match r.join {
            JoinArg::Collapse => Join::Collapse,
            JoinArg::Literal => Join::Literal,
        };
        let base = match r.webhook_base {
            BaseArg::Api => WebhookBase::Api,
            BaseArg::Site => WebhookBase::Site,
        };
        return Ok(SimOptions::from_setup(&setup, join, base));
    }
    match (&r.target, &r.client_id, &r.client_secret) {
        (Some(t), Some(id), Some(secret)) => {
            let mut o = SimOptions::new(t, id, secret);
            o.redirect_uri = r.redirect_uri.clone();
            Ok(o)
        }
        _ => Err("give --setup FILE, or --target with --client-id and --client-secret".into()),
    }
}

async fn simulate(r: Run) -> u8 {
    let signed = crate::sender::Signature::parse(&r.hash);
    let mut opts = match (options(&r), signed) {
        (Ok(o), Ok(sig)) => SimOptions {
            signature: Some(sig),
            ..o
        },
        (Err(e), _) | (_, Err(e)) => return cannot_run(&e),
    };
    let listed = match &r.expected_failures {
        None => Default::default(),
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| format!("{path}: {e}"))
            .and_then(|t| checks::parse_expected_failures(&t))
        {
            Ok(l) => l,
            Err(e) => return cannot_run(&e),
        },
    };
    // The target must answer at all: anything else is the kit not running.
    if let Err(e) = reachable(&opts.urls.token).await {
        return cannot_run(&e);
    }
    let fake = match start_fake(r.fake_addr, r.syncaroo_client_id, r.syncaroo_client_secret).await {
        Ok(fake) => fake,
        Err(code) => return code,
    };
    opts.username = r.username;
    opts.password = r.password;
    if let Some(id) = r.connection_id {
        opts.connection_id = id;
    }
    opts.admin_key = r.admin_key;
    opts.sync_wait = Duration::from_secs(r.sync_wait);
    opts.refresh_grace = Duration::from_secs(r.refresh_grace);
    if !r.sections.is_empty() {
        opts.sections = Some(r.sections.iter().cloned().collect());
    }
    opts.progress = true;
    println!(
        "checking {} against the guide (fake Syncaroo API on {})",
        opts.target,
        fake.base()
    );
    let report = run(&opts, &fake.fake).await;
    let verdict = checks::Verdict::of(&report.findings, &listed);
    println!("\n{}", report.table());
    let json = checks::json_report(&report.findings, &verdict, &opts.target);
    let reports = [
        (&r.junit, checks::junit_report(&report.findings, &verdict)),
        (&r.report, format!("{json:#}\n")),
    ];
    for (path, text) in reports {
        if let Some(path) = path {
            if let Err(e) = std::fs::write(path, text) {
                return cannot_run(&format!("{path}: {e}"));
            }
        }
    }
    for id in &verdict.unexpected {
        println!("FAIL {id}: not an expected failure");
    }
    for id in &verdict.now_passing {
        println!("PASS {id}: listed as an expected failure; take it off the list");
    }
    verdict.exit_code()
}

/// Whether anything answers at `url` (any HTTP status will do).
async fn reachable(url: &str) -> Result<(), String> {
    let client = syncaroo_shared::tls::http_client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    client
        .get(url)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("the target does not answer at {url}: {e}"))
}
