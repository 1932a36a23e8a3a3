//! `syncaroo-local`: run the bundle locally.
//!
//! ```text
//! syncaroo-local serve [--addr 127.0.0.1:8080] [--store memory|dynamodb] [--table NAME]
//!                      [--client-id ID] [--client-secret S] [--redirect-uri URL] [--listings FILE]
//!                      [--events-out FILE] [--max-connections N]
//! syncaroo-local import --file FILE [--table NAME] [--replace]  (into DynamoDB, from the AWS env)
//! ```

use std::process::ExitCode;
use syncaroo_local::{Options, StoreKind};
use syncaroo_shared::store::DynamoStore;

const USAGE: &str = "usage:
  syncaroo-local serve [--addr 127.0.0.1:8080] [--store memory|dynamodb] [--table NAME]
                       [--client-id ID] [--client-secret SECRET] [--redirect-uri URL] [--listings FILE]
                       [--syncaroo-base URL] [--syncaroo-client-id ID] [--syncaroo-client-secret S]
                       [--admin-key KEY] [--set NAME=VALUE]... [--events-out FILE]
                       [--max-connections N]
      --events-out FILE appends each change event, one PutEvents entry (JSON) a line.
      --max-connections N serves at most N connections at once (default 512); more wait.
  syncaroo-local import --file FILE [--table NAME] [--replace]
      Loads listings in bulk (the platform API's PUT, for many users at once). Without
      --replace, locations are added or overwritten; with it, each user in the file ends
      with exactly the file's locations (one write per user).
  syncaroo-local demo [--store memory|dynamodb]
      Runs the local runner and the Syncaroo simulator together: the whole flow once.
Logs go to stderr; `serve` prints the guide's setup block as one JSON line on stdout.
`--store dynamodb` and `import` reach DynamoDB through the standard AWS environment
(AWS_ENDPOINT_URL_DYNAMODB, AWS_REGION, credentials).";

/// The command, the runner's options, and import's `--file` and `--replace`.
type Parsed = (String, Options, Option<String>, bool);

fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut it = args.iter();
    let cmd = it.next().cloned().ok_or("missing command")?;
    let mut o = Options::default();
    let mut file = None;
    let mut replace = false;
    while let Some(flag) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => o.addr = val()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--store" => {
                o.store = match val()?.as_str() {
                    "memory" => StoreKind::Memory,
                    "dynamodb" => StoreKind::Dynamodb,
                    other => {
                        return Err(format!("--store must be memory or dynamodb, not {other}"))
                    }
                }
            }
            "--table" => o.table = val()?,
            "--client-id" => o.client_id = val()?,
            "--client-secret" => o.client_secret = Some(val()?),
            "--redirect-uri" => o.redirect_uri = val()?,
            "--listings" => o.listings = Some(val()?),
            "--file" => file = Some(val()?),
            "--replace" => replace = true,
            "--syncaroo-base" => o.syncaroo_base = val()?,
            "--syncaroo-client-id" => o.syncaroo_client_id = val()?,
            "--syncaroo-client-secret" => o.syncaroo_client_secret = val()?,
            "--admin-key" => o.admin_key = Some(val()?),
            "--events-out" => o.events_out = Some(val()?.into()),
            "--max-connections" => {
                o.max_connections = val()?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("--max-connections takes a whole number above 0")?
            }
            "--set" => {
                let kv = val()?;
                let (k, v) = kv.split_once('=').ok_or("--set takes NAME=VALUE")?;
                o.settings.push((k.to_string(), v.to_string()));
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok((cmd, o, file, replace))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The demo prints its own progress; keep the service logs to warnings.
    let quiet = args.first().is_some_and(|c| c == "demo");
    syncaroo_shared::telemetry::init_with_default(if quiet { "error" } else { "info" });
    let (cmd, opts, file, replace) = match parse(&args) {
        Ok(p) => p,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match cmd.as_str() {
        "serve" => serve(opts).await,
        "import" => import(opts, file, replace).await,
        "demo" => demo(opts).await,
        other => Err(format!("unknown command {other}\n{USAGE}")),
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

async fn serve(opts: Options) -> Result<(), String> {
    let given_key = opts.admin_key.is_some();
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
    // The admin key never goes to the logs: a generated one is written to
    // a file only this user can read, and the log says where.
    let where_ = if given_key {
        "the one given with --admin-key".to_string()
    } else {
        let file =
            std::env::temp_dir().join(format!("syncaroo-local-{}.admin-key", running.addr.port()));
        write_private(&file, &running.admin_key)
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        format!("in {}", file.display())
    };
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
    let mut report = run(&sim, &fake.fake).await;
    // Locally we can also look inside: what the worker stored.
    let started = std::time::Instant::now();
    let conn = syncaroo_shared::model::ConnectionId::parse(&sim.connection_id)
        .map_err(|e| e.to_string())?;
    let rates = running
        .store
        .get_synced(&conn, "1198", "rates", None)
        .await
        .map_err(|e| e.to_string())?;
    let status = running
        .store
        .get_location_status(&conn, "1198")
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
    println!(
        "[{:>2}] {} {:<40} {:>6} ms  {detail}",
        report.steps.len() + 1,
        if ok { "PASS" } else { "FAIL" },
        "store: synced data and status",
        started.elapsed().as_millis()
    );
    report.steps.push(syncaroo_sim::run::Step {
        name: "store: synced data and status".into(),
        ok,
        millis: started.elapsed().as_millis(),
        detail,
    });
    // The platform's side: revoke the connection (the platform API's own
    // function), then show the change events the whole run announced.
    let started = std::time::Instant::now();
    let revoked = syncaroo_shared::platform_ops::revoke_connection(&running.app, &conn)
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
    let missing: Vec<&str> = syncaroo_shared::changes::Change::ALL
        .iter()
        .map(|c| c.detail_type())
        .filter(|t| !entries.iter().any(|e| e.detail_type == *t))
        .collect();
    let ok = revoked.is_some() && missing.is_empty();
    let detail = if ok {
        format!("{} entries, all four types", entries.len())
    } else {
        format!("revoked={}, missing {missing:?}", revoked.is_some())
    };
    let name = "platform: revoke; change events";
    println!(
        "\n[{:>2}] {} {:<40} {:>6} ms  {detail}",
        report.steps.len() + 1,
        if ok { "PASS" } else { "FAIL" },
        name,
        started.elapsed().as_millis()
    );
    report.steps.push(syncaroo_sim::run::Step {
        name: name.into(),
        ok,
        millis: started.elapsed().as_millis(),
        detail,
    });
    println!("\n{}", report.table());
    running.stop();
    if report.passed() {
        Ok(())
    } else {
        Err(format!("{} step(s) failed", report.failed().len()))
    }
}

async fn import(opts: Options, file: Option<String>, replace: bool) -> Result<(), String> {
    let file = file.ok_or("import needs --file FILE")?;
    let json = std::fs::read_to_string(&file).map_err(|e| format!("cannot read {file}: {e}"))?;
    let store = DynamoStore::from_env(&opts.table).await;
    store.ensure_table().await.map_err(|e| e.to_string())?;
    let n = if replace {
        syncaroo_local::replace_listings_from(&store, &json).await
    } else {
        syncaroo_local::import_listings(&store, &json).await
    }
    .map_err(|e| e.to_string())?;
    let how = if replace { "replaced with" } else { "imported" };
    eprintln!("{how} {n} locations in table {}", opts.table);
    Ok(())
}
