//! Schemathesis (PyPI, installed in .tools/venv by scripts/local-aws.sh)
//! against the local runner, driven by docs/openapi.yaml: no server error,
//! and every status, content type and body as the document says. The
//! protocol routes run with a live bearer token, the admin routes with the
//! admin key.

use std::path::PathBuf;
use syncaroo_tests::{connect_over_http, repo_root};

const CHECKS: &str =
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

/// One schemathesis run (blocking, on a thread of its own so the runner
/// keeps serving); its exit status and report.
async fn schemathesis(exe: PathBuf, base: String, extra: Vec<String>) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(&exe)
            .current_dir(repo_root())
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .args([
                "run",
                "docs/openapi.yaml",
                "--url",
                &base,
                "--checks",
                CHECKS,
            ])
            .args(["--max-examples", "60", "--seed", "8785", "--no-color"])
            .args(&extra)
            .output()
            .expect("schemathesis runs");
        let report = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), report)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_on_any_route() {
    let exe = repo_root().join(".tools/venv/bin/schemathesis");
    if !exe.exists() {
        assert!(
            std::env::var_os("SYNCAROO_REQUIRE_LOCAL_AWS").is_none(),
            "schemathesis is required here (bash scripts/local-aws.sh install)"
        );
        eprintln!("schemathesis not installed: skipped");
        return;
    }
    let running = syncaroo_local::start(syncaroo_local::Options {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    })
    .await
    .unwrap();
    let bearer = connect_over_http(&running, "99").await;
    let runs = [
        vec![
            "--exclude-path-regex".to_string(),
            "^/api/(admin|platform)/".into(),
            "--header".into(),
            format!("Authorization: Bearer {bearer}"),
        ],
        vec![
            "--include-path-regex".to_string(),
            "^/api/(admin|platform)/".into(),
            "--auth".into(),
            format!("admin:{}", running.admin_key),
        ],
    ];
    let mut failed = vec![];
    for extra in runs {
        let (ok, report) = schemathesis(exe.clone(), running.base(), extra).await;
        // The report, without the credentials it was given.
        let shown = report
            .replace(&bearer, "<bearer>")
            .replace(&running.admin_key, "<admin key>");
        println!("{shown}");
        if !ok {
            failed.push(shown);
        }
    }
    running.stop();
    assert!(
        failed.is_empty(),
        "schemathesis failed:\n{}",
        failed.join("\n")
    );
}
