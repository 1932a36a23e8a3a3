//! The conformance kit's command line (`syncaroo-sim run --setup FILE`),
//! in-process, against the local runner given only its setup block: every
//! check passes with both joins and both webhook bases; the JUnit report
//! reads in Python's own XML parser and agrees with the JSON one; a listed
//! failure is forgiven, a listed pass is not; a bad setup block or a target
//! that does not answer is exit 2.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use syncaroo_local::StoreKind;
use syncaroo_tests::runner_with_fake;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kit-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The runner's setup block as a platform writes it (`apiUri` with the
/// guide's trailing slash).
fn setup_file(d: &Path, r: &syncaroo_local::Running, extra: &[(&str, Value)]) -> String {
    let mut block = serde_json::to_value(&r.setup).unwrap();
    block["apiUri"] = json!(format!("{}/", r.setup.api_uri.trim_end_matches('/')));
    for (k, v) in extra {
        block[*k] = v.clone();
    }
    let path = d.join("setup.json");
    std::fs::write(&path, block.to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

async fn kit(args: &[&str]) -> u8 {
    // The local runner's refresh retry window is a second.
    let mut all = vec![
        "syncaroo-sim",
        "run",
        "--fake-addr",
        "127.0.0.1:0",
        "--refresh-grace",
        "1",
    ];
    all.extend_from_slice(args);
    syncaroo_sim::cli::main(all).await
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The JUnit file as Python's xml.etree reads it: (tests, failures,
/// skipped) of the suite, and each test case's name.
fn junit_in_python(path: &Path) -> (Value, Vec<String>) {
    let script = r#"
import json, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suite = root.find("testsuite")
cases = suite.findall("testcase")
print(json.dumps({
  "suite": {k: int(suite.get(k)) for k in ("tests", "failures", "skipped")},
  "names": [c.get("name") for c in cases],
  "failed": [c.get("name") for c in cases if c.find("failure") is not None],
}))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names = v["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    (v, names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_passes_the_local_runner_from_its_setup_block_with_reports() {
    let (r, _fake) = runner_with_fake(StoreKind::Memory, "kit", None, &[]).await;
    let d = dir("pass");
    let setup = setup_file(&d, &r, &[]);
    let (junit, report) = (d.join("junit.xml"), d.join("report.json"));
    let code = kit(&[
        "--setup",
        &setup,
        "--junit",
        junit.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ])
    .await;
    let json = json_file(&report);
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["exitCode"], 0);
    let checks = json["checks"].as_array().unwrap();
    assert!(checks.len() >= 18, "{json:#}");
    for c in checks {
        let id = c["id"].as_str().unwrap();
        assert!(syncaroo_sim::checks::find(id).is_some(), "{id}");
        assert!(
            ["PASS", "WARN"].contains(&c["status"].as_str().unwrap()),
            "{c}"
        );
    }
    let (py, names) = junit_in_python(&junit);
    assert_eq!(py["suite"]["tests"], checks.len());
    assert_eq!(py["suite"]["failures"], 0);
    let ids: Vec<&str> = checks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(names, ids, "one test case per check, in order");

    // The other join (the guide's values give a doubled slash) and the
    // other webhook base: our router takes both.
    for extra in [["--join", "literal"], ["--webhook-base", "site"]] {
        let mut args = vec!["--setup", setup.as_str()];
        args.extend(extra);
        assert_eq!(kit(&args).await, 0, "{extra:?}");
    }
    r.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_failures_are_forgiven_and_listed_passes_are_not() {
    // A platform that writes expires with a zone.
    let settings = [("TOKEN_EXPIRES_FORMAT", "rfc3339")];
    let (r, _fake) = runner_with_fake(StoreKind::Memory, "kit", None, &settings).await;
    let d = dir("expected");
    let setup = setup_file(&d, &r, &[]);
    let report = d.join("report.json");
    let report_arg = report.to_str().unwrap();
    assert_eq!(kit(&["--setup", &setup, "--report", report_arg]).await, 1);
    let json = json_file(&report);
    assert_eq!(
        json["unexpectedFailures"],
        json!(["token.expires-format"]),
        "{json:#}"
    );

    let listed = d.join("expected.txt");
    std::fs::write(&listed, "# zone kept for now\ntoken.expires-format\n").unwrap();
    let listed_arg = listed.to_str().unwrap();
    let args = [
        "--setup",
        &setup,
        "--report",
        report_arg,
        "--expected-failures",
        listed_arg,
    ];
    assert_eq!(kit(&args).await, 0);
    assert_eq!(json_file(&report)["unexpectedFailures"], json!([]));

    // A listed check that passes fails the run: take it off the list.
    std::fs::write(&listed, "token.expires-format\ntoken.code-once\n").unwrap();
    assert_eq!(kit(&args).await, 1);
    assert_eq!(
        json_file(&report)["listedButPassing"],
        json!(["token.code-once"])
    );

    // A typo in the list is the kit not running, not a hidden failure.
    std::fs::write(&listed, "token.expires-fromat\n").unwrap();
    assert_eq!(kit(&args).await, 2);
    r.stop();
}

#[tokio::test]
async fn a_bad_setup_block_or_a_silent_target_is_exit_2() {
    let d = dir("bad");
    let bad = d.join("bad.json");
    std::fs::write(&bad, r#"{"siteUri": "not a url"}"#).unwrap();
    assert_eq!(kit(&["--setup", bad.to_str().unwrap()]).await, 2);
    assert_eq!(kit(&["--setup", "/nonexistent/setup.json"]).await, 2);
    // Nothing listens on the target's port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let site = format!("http://127.0.0.1:{port}");
    let block = json!({
        "siteUri": site, "apiUri": format!("{site}/api/"),
        "authUri": format!("{site}/api/oauth/authorize"), "webhookPath": "/update/",
        "checkConnectionPath": "/check_connection/", "yourClientId": "x",
        "yourClientSecret": "y", "authTokenUri": format!("{site}/api/oauth/token"),
    });
    let silent = d.join("silent.json");
    std::fs::write(&silent, block.to_string()).unwrap();
    assert_eq!(kit(&["--setup", silent.to_str().unwrap()]).await, 2);
    // Neither a setup block nor a target.
    assert_eq!(kit(&[]).await, 2);
}

/// docs/CONFORMANCE.md lists exactly the kit's checks, in its order.
#[test]
fn the_conformance_doc_lists_every_check() {
    let doc =
        std::fs::read_to_string(syncaroo_tests::repo_root().join("docs/CONFORMANCE.md")).unwrap();
    let listed: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let ids: Vec<&str> = syncaroo_sim::checks::CATALOG.iter().map(|c| c.id).collect();
    assert_eq!(listed, ids);
}

/// A platform whose refresh tokens stay reusable for longer than it
/// tells the kit (five minutes, against the kit's one second) fails
/// exactly `token.refresh-once`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reusable_refresh_token_fails_its_check() {
    let settings = [("REFRESH_REUSE_GRACE_SECONDS", "300")];
    let (r, _fake) = runner_with_fake(StoreKind::Memory, "kit", None, &settings).await;
    let d = dir("reuse");
    let setup = setup_file(&d, &r, &[]);
    let report = d.join("report.json");
    assert_eq!(
        kit(&["--setup", &setup, "--report", report.to_str().unwrap()]).await,
        1
    );
    let json = json_file(&report);
    assert_eq!(
        json["unexpectedFailures"],
        json!(["token.refresh-once"]),
        "{json:#}"
    );
    r.stop();
}

/// `--sections` runs and reports only the areas asked for (the connect
/// flow runs anyway); an unknown area is the kit not running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sections_narrow_the_run() {
    let (r, _fake) = runner_with_fake(StoreKind::Memory, "kit", None, &[]).await;
    let d = dir("sections");
    let setup = setup_file(&d, &r, &[]);
    let report = d.join("report.json");
    let args = ["--setup", &setup, "--report", report.to_str().unwrap()];
    let mut narrowed = args.to_vec();
    narrowed.extend(["--sections", "check,webhook"]);
    assert_eq!(kit(&narrowed).await, 0);
    let json = json_file(&report);
    let areas: std::collections::BTreeSet<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().split('.').next().unwrap())
        .collect();
    assert_eq!(areas, ["check", "webhook"].into(), "{json:#}");
    let mut unknown = args.to_vec();
    unknown.extend(["--sections", "check,tokens"]);
    assert_eq!(kit(&unknown).await, 2);
    r.stop();
}

/// The webhook signature is the platform's to choose: a platform verifying
/// HMAC-SHA512 in base64 passes with `--hash` saying so, and fails the
/// webhook checks with the kit's default; a malformed spec is exit 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hash_profile_is_the_platforms() {
    let settings = [
        ("WEBHOOK_HASH_ALGORITHM", "hmac-sha512"),
        ("WEBHOOK_HASH_ENCODING", "base64"),
    ];
    let (r, _fake) = runner_with_fake(StoreKind::Memory, "kit", None, &settings).await;
    let d = dir("hash");
    let setup = setup_file(&d, &r, &[]);
    let report = d.join("report.json");
    let args = ["--setup", &setup, "--report", report.to_str().unwrap()];
    let mut theirs = args.to_vec();
    theirs.extend(["--hash", "hmac-sha512:base64:client-secret"]);
    assert_eq!(kit(&theirs).await, 0, "{:#}", json_file(&report));
    assert_eq!(kit(&args).await, 1);
    let failed = json_file(&report)["unexpectedFailures"].clone();
    assert!(
        failed
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "webhook.status-accepted"),
        "{failed}"
    );
    let mut bad = args.to_vec();
    bad.extend(["--hash", "md5:hex:client-secret"]);
    assert_eq!(kit(&bad).await, 2);
    r.stop();
}
