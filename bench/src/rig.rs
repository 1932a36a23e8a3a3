//! The far side of the benchmark's functions, set up once: the local AWS
//! stand-ins behind counting proxies, seeded, and the environment each
//! function process gets (behind a simulated link when asked).

use crate::netem;
use crate::servers::Servers;
use crate::Row;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use syncaroo_tests::ddb_proxy::start_for;

/// The far side the functions talk to: DynamoDB Local, moto's Secrets
/// Manager and EventBridge behind counting proxies, seeded with what the
/// events refer to, and the environment every function gets.
pub struct Rig {
    pub proxies: [(&'static str, String); 3],
    pub servers: Servers,
    pub base_env: Vec<(String, String)>,
}

pub async fn rig() -> Rig {
    let endpoint = |var: &str| std::env::var(var).expect("run through benches/run.sh");
    let (ddb_proxy, ddb) = start_for(&endpoint("AWS_ENDPOINT_URL_DYNAMODB")).await;
    let (sm_proxy, sm) = start_for(&endpoint("AWS_ENDPOINT_URL_SECRETS_MANAGER")).await;
    // State the events refer to, and the secret they were signed with.
    let table = format!("bench-{}", std::process::id());
    let doc = syncaroo_tests::seed::seed_events(&table).await;
    let sdk = syncaroo_shared::aws_http::load_sdk_config().await.unwrap();
    let secret = format!("bench-secret-{}", std::process::id());
    let sm_client = aws_sdk_secretsmanager::Client::new(&sdk);
    sm_client
        .create_secret()
        .name(&secret)
        .secret_string(doc.to_string())
        .send()
        .await
        .expect("secret");
    let ddb_client = aws_sdk_dynamodb::Client::new(&sdk);
    warm_servers(&ddb_client, &sm_client, &table, &secret).await;
    // Self-check: the proxy sees and names a request.
    let via = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&sdk)
            .endpoint_url(&sm_proxy)
            .build(),
    );
    via.get_secret_value()
        .secret_id(&secret)
        .send()
        .await
        .expect("secret via proxy");
    assert_eq!(
        sm.ops(),
        ["GetSecretValue"],
        "the Secrets Manager proxy records requests"
    );
    sm.reset();
    // Change events (check_connection's first confirmation, the sync
    // worker's status change) go to a bus of their own on moto.
    let (eb_proxy, eb) = start_for(&endpoint("AWS_ENDPOINT_URL_EVENTBRIDGE")).await;
    let bus = format!("bench-bus-{}", std::process::id());
    aws_sdk_eventbridge::Client::new(&sdk)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("bus");
    Rig {
        proxies: [
            ("AWS_ENDPOINT_URL_DYNAMODB", ddb_proxy),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", sm_proxy),
            ("AWS_ENDPOINT_URL_EVENTBRIDGE", eb_proxy),
        ],
        servers: Servers {
            ddb,
            sm,
            eb,
            owed: netem::Owed::default(),
        },
        base_env: base_env(&table, &secret, &bus),
    }
}

/// Warms the JVM behind DynamoDB Local and moto before measuring.
async fn warm_servers(
    ddb: &aws_sdk_dynamodb::Client,
    sm: &aws_sdk_secretsmanager::Client,
    table: &str,
    secret: &str,
) {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    for _ in 0..200 {
        let _ = ddb
            .get_item()
            .table_name(table)
            .key("pk", S("WARM".into()))
            .key("sk", S("WARM".into()))
            .send()
            .await;
    }
    for _ in 0..30 {
        let _ = sm.get_secret_value().secret_id(secret).send().await;
    }
}

/// What every function's process gets, as Lambda would set it.
fn base_env(table: &str, secret: &str, bus: &str) -> Vec<(String, String)> {
    let log = std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into());
    [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "bench"),
        ("TABLE_NAME", table),
        ("SECRET_ID", secret),
        ("LOGIN_URL", "https://yourapp.example/login"),
        ("EVENT_BUS_NAME", bus),
        ("RUST_LOG", &log),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The environment behind a link of `rtt` (none: the proxies directly).
pub async fn link_env(
    rig: &Rig,
    rtt: Option<u64>,
    ca: Option<&(PathBuf, Arc<rustls::ServerConfig>)>,
) -> Vec<(String, String)> {
    let mut env = rig.base_env.clone();
    for (var, proxy) in &rig.proxies {
        let url = match rtt {
            None => proxy.clone(),
            Some(ms) => {
                let tls = ca.map(|(_, cfg)| cfg);
                netem::endpoint(proxy, Duration::from_millis(ms), tls, &rig.servers.owed).await
            }
        };
        env.push((var.to_string(), url));
    }
    if let Some((pem, _)) = ca {
        env.push(("SSL_CERT_FILE".into(), pem.display().to_string()));
    }
    env
}

/// One measurement's rows as the results file keeps them (what
/// benches/report.py renders into docs/PERFORMANCE.md), with each row's
/// limit behind a link.
pub fn result_rows(rows: &[Row], rtt: Option<u64>, tls: bool, memory: Option<u64>) -> Vec<Value> {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let hello_own = rows
        .iter()
        .find(|r| r.name == "hello")
        .map_or(Duration::ZERO, |h| h.init_own);
    rows.iter()
        .map(|r| {
            let mut v = json!({
                "rttMs": rtt, "tls": tls, "memoryMb": memory,
                "function": r.name, "coldMs": ms(r.cold_request), "initMs": ms(r.init),
                "initOwnMs": ms(r.init_own),
                "ownOverHello": r.init_own.as_secs_f64() / hello_own.as_secs_f64().max(1e-9),
                "initRequests": r.init_requests,
                "firstMs": ms(r.first), "p50Ms": ms(r.p50), "p99Ms": ms(r.p99),
                "firstDdb": r.first_ddb, "warmDdb": r.warm_ddb,
                "zipBytes": r.zip_bytes, "rssKb": r.rss_kb,
                "coldServerMs": ms(r.cold_server), "warmServerMs": ms(r.warm_server),
                "errors": r.errors,
            });
            if let Some(rtt) = rtt {
                let l = crate::limits::limit(rows, r, Duration::from_millis(rtt), tls);
                v["roundTrips"] = json!(l.round_trips);
                v["limitMs"] = json!(ms(l.cold));
                v["ratio"] = json!(l.ratio);
                v["warmLimitMs"] = json!(ms(l.warm));
            }
            v
        })
        .collect()
}
