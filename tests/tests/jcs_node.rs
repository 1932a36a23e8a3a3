//! RFC 8785 canonical JSON checked against an implementation nobody here
//! wrote: Node's `JSON.parse` and `JSON.stringify` (which print numbers as
//! RFC 8785 requires, ECMAScript's Number-to-String) over keys sorted by
//! UTF-16 code units (JavaScript's default sort). Thousands of random
//! doubles, 17-significant-digit decimals and integers beyond 2^53, each
//! parsed from the same text by both sides; then webhooks signed over
//! Node's canonical form verify here.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::process::{Command, Stdio};
use syncaroo_shared::handlers;
use syncaroo_shared::jcs::canonicalize;
use syncaroo_tests::{body_json, events_creds, request, TestApp};

const NODE_CANONICAL: &str = r#"
const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean);
const sort = (v) => Array.isArray(v) ? v.map(sort)
  : (v !== null && typeof v === "object")
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort(v[k])]))
    : v;
process.stdout.write(lines.map((l) => JSON.stringify(sort(JSON.parse(l)))).join("\n") + "\n");
"#;

/// Node's canonical form of each line, or None when Node is not installed
/// (CI installs it: .ci/run; there its absence fails the test).
fn node_canonical(lines: &[String]) -> Option<Vec<String>> {
    let child = Command::new("node")
        .args(["-e", NODE_CANONICAL])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var_os("SYNCAROO_REQUIRE_LOCAL_AWS").is_none(),
                "node is required here: {e}"
            );
            eprintln!("node not installed: skipping the cross-check ({e})");
            return None;
        }
    };
    let input = lines.join("\n") + "\n";
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("node runs");
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "node failed");
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect(),
    )
}

/// Number texts: shortest round-trip doubles from random bit patterns,
/// 17-significant-digit decimals (each must round to the nearest double),
/// and integers across the whole u64 / i64 range.
fn number_texts(n: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(8785);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let d = f64::from_bits(rng.random::<u64>());
        if !d.is_finite() {
            continue;
        }
        out.push(match out.len() % 4 {
            0 => serde_json::to_string(&d).unwrap(),
            1 => format!("{d:.16e}"),
            2 => rng.random::<u64>().to_string(),
            _ => (rng.random::<i64>() >> rng.random_range(0..63)).to_string(),
        });
    }
    out
}

#[test]
fn canonical_numbers_and_keys_match_node() {
    let numbers = number_texts(4000);
    // Each line an object with keys out of order (UTF-16 order matters for
    // the last two) and the number in three positions.
    let lines: Vec<String> = numbers
        .iter()
        .map(|x| format!(r#"{{"z":{x},"a":[{x},true,null],"m":{{"😀":{x},"€":"x"}}}}"#))
        .collect();
    let Some(node) = node_canonical(&lines) else {
        return;
    };
    assert_eq!(node.len(), lines.len());
    let mut mismatches = vec![];
    for ((line, theirs), x) in lines.iter().zip(&node).zip(&numbers) {
        let ours = canonicalize(&serde_json::from_str(line).unwrap());
        if &ours != theirs {
            mismatches.push(format!("{x}: ours {ours} node {theirs}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} differ, e.g. {:?}",
        mismatches.len(),
        lines.len(),
        &mismatches[..mismatches.len().min(5)]
    );
}

/// Bodies with numbers a hand-rolled canonicaliser gets wrong, signed
/// over Node's canonical form, are accepted.
#[tokio::test]
async fn webhooks_signed_over_node_canonical_form_verify() {
    let bodies = [
        r#"{"connectionId":99,"webhookType":"status","locationId":"1198","metaData":{"status":"open","revision":9007199254740993}}"#,
        r#"{"connectionId":99,"webhookType":"status","locationId":"1198","metaData":{"status":"open","score":0.9392884321352825}}"#,
        r#"{"connectionId":99,"webhookType":"status","locationId":"1198","metaData":{"status":"open","at":1795948873.8246393}}"#,
    ];
    let lines: Vec<String> = bodies.iter().map(|b| b.to_string()).collect();
    let Some(canonical) = node_canonical(&lines) else {
        return;
    };
    let (t, _) = TestApp::memory();
    t.seed_events_tokens().await;
    let key = t.secrets.client_secret.expose().to_string();
    for (body, canon) in bodies.iter().zip(&canonical) {
        let hash = syncaroo_shared::crypto::hex(&hmac_sha256(key.as_bytes(), canon.as_bytes()));
        // The hash goes into the raw text, so the body is sent exactly as
        // the signer wrote it.
        let signed = format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]);
        let req = request(
            "POST",
            "/api/update",
            &[
                ("authorization", &format!("Bearer {}", events_creds::ACCESS)),
                ("content-type", "application/json"),
            ],
            signed,
        );
        let resp = handlers::webhook(&t.app, req).await;
        assert!(
            resp.status().is_success(),
            "{body}: {} {}",
            resp.status(),
            body_json(&resp)
        );
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // RFC 2104 over SHA-256 by hand, so the check shares no HMAC code with
    // the handler (sha2 only for the hash function).
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::digest([ipad.as_slice(), msg].concat());
    Sha256::digest([opad.as_slice(), inner.as_slice()].concat()).to_vec()
}
