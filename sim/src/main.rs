//! `syncaroo-sim`: the Syncaroo side, for local runs.
//!
//! ```text
//! syncaroo-sim fake-syncaroo [--addr 127.0.0.1:9090] [--client-id ID] [--client-secret S]
//! ```

use std::process::ExitCode;
use syncaroo_sim::{FakeConfig, FakeSyncaroo};

const USAGE: &str = "usage:
  syncaroo-sim fake-syncaroo [--addr 127.0.0.1:9090] [--client-id ID] [--client-secret SECRET]
      A fake Syncaroo API (OAuth authorize/token, 10-minute tokens, single-use refresh tokens).";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let mut cfg = FakeConfig::default();
    let mut addr = "127.0.0.1:9090".to_string();
    let mut it = args[1..].iter();
    while let Some(flag) = it.next() {
        let Some(val) = it.next() else {
            eprintln!("error: {flag} needs a value\n{USAGE}");
            return ExitCode::from(2);
        };
        match flag.as_str() {
            "--addr" => addr = val.clone(),
            "--client-id" => cfg.client_id = val.clone(),
            "--client-secret" => cfg.client_secret = val.clone(),
            other => {
                eprintln!("error: unknown flag {other}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    match cmd.as_str() {
        "fake-syncaroo" => {
            let Ok(addr) = addr.parse() else {
                eprintln!("error: --addr is not host:port");
                return ExitCode::from(2);
            };
            let fake = match FakeSyncaroo::start(cfg.clone(), addr).await {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("error: cannot listen on {addr}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            println!(
                "{}",
                serde_json::json!({
                    "syncarooApiBase": fake.base(),
                    "syncarooClientId": cfg.client_id,
                    "syncarooClientSecret": cfg.client_secret,
                })
            );
            eprintln!("fake Syncaroo API on {} (Ctrl-C to stop)", fake.base());
            let _ = tokio::signal::ctrl_c().await;
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("error: unknown command {other}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
