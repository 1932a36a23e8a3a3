//! The consent page in headless Chromium (playwright-core), against the
//! local runner, landing on the simulator's redirect. Keeps a screenshot in
//! test-artifacts/. Needs Debian's chromium and `.tools/node` (installed by
//! .ci/run and scripts/local-aws.sh); skipped with a notice elsewhere unless
//! SYNCAROO_REQUIRE_BROWSER=1.

use std::path::PathBuf;
use syncaroo_local::Options;
use syncaroo_sim::{FakeConfig, FakeSyncaroo};
use syncaroo_tests::repo_root;

fn tools() -> Option<(PathBuf, PathBuf)> {
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    let pw = repo_root().join(".tools/node/node_modules/playwright-core");
    if chromium.exists() && pw.exists() {
        return Some((chromium, pw));
    }
    if std::env::var("SYNCAROO_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!(
            "chromium ({}) or playwright-core ({}) missing",
            chromium.display(),
            pw.display()
        );
    }
    eprintln!("SKIPPED: chromium or playwright-core not installed (see .ci/run)");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_page_in_headless_chromium() {
    let Some((chromium, pw)) = tools() else {
        return;
    };
    let fake = FakeSyncaroo::start_local(FakeConfig::default())
        .await
        .unwrap();
    let redirect = format!("http://{}/connection", fake.addr);
    let r = syncaroo_local::start(Options {
        addr: "127.0.0.1:0".parse().unwrap(),
        redirect_uri: redirect.clone(),
        ..Options::default()
    })
    .await
    .unwrap();
    let url = format!(
        "{}?connectionId=4711&clientId={}&redirectUri={}&response_type=code&state=e2e",
        r.setup.auth_uri,
        r.setup.your_client_id,
        form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    let artifacts = repo_root().join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("consent.png");
    let _ = std::fs::remove_file(&shot);
    let (script, shot_arg, redirect_arg) = (
        repo_root().join("tests/e2e/consent.cjs"),
        shot.clone(),
        redirect.clone(),
    );
    // The browser runs while this runtime keeps serving the runner.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .arg(&url)
            .arg(&redirect_arg)
            .arg(&shot_arg)
            .env("PLAYWRIGHT_CORE", &pw)
            .env("CHROMIUM", &chromium)
            .output()
    })
    .await
    .unwrap()
    .expect("node runs");
    assert!(
        out.status.success(),
        "browser run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(v["title"], "Connect Syncaroo to Demo Platform");
    let explanation = v["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("Syncaroo is asking") && explanation.contains("4711"),
        "{explanation}"
    );
    let shared = v["shared"].as_str().unwrap();
    assert!(
        shared.contains("workspace locations") && shared.contains("resources"),
        "{shared}"
    );
    assert_eq!(v["buttons"]["authorize"]["visible"], true);
    assert_eq!(v["buttons"]["authorize"]["text"], "Authorize");
    assert_eq!(v["buttons"]["deny"]["text"], "Deny");
    let landed = v["landed"].as_str().unwrap();
    assert!(
        landed.starts_with(&format!("{redirect}?connectionId=4711&code=scb_code_")),
        "{landed}"
    );
    assert!(landed.ends_with("&state=e2e"));
    assert_eq!(v["heading"], "Syncaroo received the authorization code");
    let png = std::fs::read(&shot).expect("screenshot kept");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "a real screenshot"
    );
    r.stop();
}
