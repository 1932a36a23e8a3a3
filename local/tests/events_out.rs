//! `syncaroo-local serve --events-out FILE`, the binary itself: the
//! simulator runs the whole protocol against it, the platform API revokes
//! the connection, and the file holds one PutEvents entry a line with
//! PutEvents' own fields, every one of the four kinds, and no token.

use serde_json::Value;
use std::process::Stdio;
use syncaroo_sim::run::{run, SimOptions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// One HTTP/1.1 request on a fresh connection; the status code.
async fn http(addr: &str, request: String) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_appends_every_change_event_to_the_events_file() {
    let fake = syncaroo_sim::FakeSyncaroo::start_local(syncaroo_sim::FakeConfig::default())
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("events-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("events.jsonl");
    let _ = std::fs::remove_file(&file);
    let key = "k".repeat(40);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_syncaroo-local"))
        .args(["serve", "--addr", "127.0.0.1:0", "--syncaroo-base"])
        .arg(fake.base())
        .args(["--admin-key", &key, "--events-out"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let setup: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    let site = setup["siteUri"].as_str().unwrap().to_string();
    let mut o = SimOptions::new(
        &site,
        setup["yourClientId"].as_str().unwrap(),
        setup["yourClientSecret"].as_str().unwrap(),
    );
    o.admin_key = Some(key.clone());
    o.refresh_grace = std::time::Duration::from_secs(1);
    let report = run(&o, &fake.fake).await;
    assert!(report.passed(), "{}", report.table());

    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{key}"));
    let addr = site.trim_start_matches("http://");
    let status = http(
        addr,
        format!(
            "DELETE /api/platform/connections/{} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {basic}\r\nConnection: close\r\n\r\n",
            o.connection_id
        ),
    )
    .await;
    assert_eq!(status, 200);
    child.kill().await.unwrap();

    let text = std::fs::read_to_string(&file).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for line in text.lines() {
        let e: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
        let keys: Vec<&str> = e.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["Detail", "DetailType", "EventBusName", "Source"],
            "{line}"
        );
        assert_eq!(
            (e["Source"].as_str(), e["EventBusName"].as_str()),
            (Some("syncaroo-bridge"), Some("default"))
        );
        // Detail is a string holding a JSON object, as PutEvents takes it.
        let detail: Value = serde_json::from_str(e["Detail"].as_str().unwrap()).unwrap();
        assert_eq!(
            detail["connectionId"].as_str(),
            Some(o.connection_id.as_str()),
            "{line}"
        );
        assert!(
            !line.contains("scb_at_") && !line.contains("scb_rt_") && !line.contains(&key),
            "{line}"
        );
        assert!(!line.contains(setup["yourClientSecret"].as_str().unwrap()));
        seen.insert(e["DetailType"].as_str().unwrap().to_string());
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [
            "Syncaroo Connection Confirmed",
            "Syncaroo Connection Revoked",
            "Syncaroo Data Synced",
            "Syncaroo Location Status Changed"
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
