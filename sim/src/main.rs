//! `syncaroo-sim`: the Syncaroo side of the integration guide, for testing a
//! deployment without a Syncaroo sandbox.
//!
//! ```text
//! syncaroo-sim run --target URL --client-id ID --client-secret S [options]
//! syncaroo-sim fake-syncaroo [--addr 127.0.0.1:9090] [--client-id ID] [--client-secret S]
//! ```

use std::process::ExitCode;
use std::time::Duration;
use syncaroo_sim::run::{run, SimOptions};
use syncaroo_sim::{FakeConfig, FakeSyncaroo};

const USAGE: &str = "usage:
  syncaroo-sim run --target URL --client-id ID --client-secret SECRET [options]
      Plays Syncaroo against a deployment: connect flow (browser login and consent),
      token exchange and refresh, check_connection, webhooks (signed, duplicated,
      out of order, forged), and with --admin-key the platform's own connection to
      the fake Syncaroo API and the data sync. Prints a report; exits 1 on any failure.
      --redirect-uri URL      Syncaroo's redirectUri registered at the target
                              (default https://app.syncaroo.com/connection)
      --username U --password P   the platform login to use (default demo / demo)
      --connection-id ID      (default: random)
      --admin-key KEY         the target's admin key: also run the API-side steps
      --fake-addr HOST:PORT   where the fake Syncaroo API listens (default 127.0.0.1:9090);
                              the target's SYNCAROO_API_BASE and SYNCAROO_DATA_BASES must be
                              http://HOST:PORT/api/ (the local runner sets both)
      --syncaroo-client-id ID --syncaroo-client-secret S   the fake's OAuth client
      --sync-wait SECONDS     how long to wait for fetches (default 15)
  syncaroo-sim fake-syncaroo [--addr 127.0.0.1:9090] [--client-id ID] [--client-secret SECRET]
      Only the fake Syncaroo API (OAuth authorize/token, paginating data API).";

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}\n{USAGE}");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first().cloned() else {
        return fail("missing command");
    };
    let mut fake_cfg = FakeConfig::default();
    let mut fake_addr = "127.0.0.1:9090".to_string();
    let mut target = None;
    let (mut client_id, mut client_secret) = (None, None);
    let mut o = SimOptions::new("http://127.0.0.1:8080", "", "");
    o.progress = true;
    let mut it = args[1..].iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            eprintln!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        let Some(val) = it.next().cloned() else {
            return fail(&format!("{flag} needs a value"));
        };
        match (cmd.as_str(), flag.as_str()) {
            ("fake-syncaroo", "--addr") | ("run", "--fake-addr") => fake_addr = val,
            ("fake-syncaroo", "--client-id") | ("run", "--syncaroo-client-id") => {
                fake_cfg.client_id = val
            }
            ("fake-syncaroo", "--client-secret") | ("run", "--syncaroo-client-secret") => {
                fake_cfg.client_secret = val
            }
            ("run", "--target") => target = Some(val),
            ("run", "--client-id") => client_id = Some(val),
            ("run", "--client-secret") => client_secret = Some(val),
            ("run", "--redirect-uri") => o.redirect_uri = val,
            ("run", "--username") => o.username = val,
            ("run", "--password") => o.password = val,
            ("run", "--connection-id") => o.connection_id = val,
            ("run", "--admin-key") => o.admin_key = Some(val),
            ("run", "--sync-wait") => match val.parse() {
                Ok(s) => o.sync_wait = Duration::from_secs(s),
                Err(_) => return fail("--sync-wait takes whole seconds"),
            },
            _ => return fail(&format!("unknown flag {flag} for {cmd}")),
        }
    }
    let Ok(addr) = fake_addr.parse() else {
        return fail("the fake's address is not host:port");
    };
    let fake = match FakeSyncaroo::start(fake_cfg.clone(), addr).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot listen on {fake_addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cmd.as_str() {
        "fake-syncaroo" => {
            println!(
                "{}",
                serde_json::json!({
                    "syncarooApiBase": fake.base(),
                    "syncarooClientId": fake_cfg.client_id,
                    "syncarooClientSecret": fake_cfg.client_secret,
                })
            );
            eprintln!("fake Syncaroo API on {} (Ctrl-C to stop)", fake.base());
            let _ = tokio::signal::ctrl_c().await;
            ExitCode::SUCCESS
        }
        "run" => {
            let (Some(t), Some(id), Some(secret)) = (target, client_id, client_secret) else {
                return fail("run needs --target, --client-id and --client-secret");
            };
            let mut opts = SimOptions::new(&t, &id, &secret);
            opts.redirect_uri = o.redirect_uri;
            opts.username = o.username;
            opts.password = o.password;
            opts.connection_id = o.connection_id;
            opts.admin_key = o.admin_key;
            opts.sync_wait = o.sync_wait;
            opts.progress = true;
            println!(
                "simulating Syncaroo against {t} (fake Syncaroo API on {})",
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
        other => fail(&format!("unknown command {other}")),
    }
}
