//! The route table (shared/src/routes.rs), which the local runner and the
//! simulator use, against the HttpApi events template.yaml deploys: the
//! same (method, path) pairs, each on the function the table names.

use serde_yaml::Value;
use std::collections::BTreeSet;
use syncaroo_shared::routes::ROUTES;

fn template() -> Value {
    let path = syncaroo_tests::repo_root().join("template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("template.yaml"))
        .expect("template.yaml parses")
}

/// (function, method, path) of every HttpApi event in the template.
fn deployed_routes(t: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for (name, res) in t["Resources"].as_mapping().expect("Resources") {
        if res["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let Some(events) = res["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for ev in events.values() {
            if ev["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let p = &ev["Properties"];
            // `!Ref HttpApi`: the one API, never an implicit one.
            match &p["ApiId"] {
                Value::Tagged(t) => {
                    assert_eq!(t.tag.to_string(), "!Ref");
                    assert_eq!(t.value.as_str(), Some("HttpApi"));
                }
                other => panic!("{name:?}: ApiId is {other:?}, not !Ref HttpApi"),
            }
            out.insert((
                name.as_str().unwrap().to_string(),
                p["Method"].as_str().unwrap().to_uppercase(),
                p["Path"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

#[test]
fn the_route_table_is_what_template_yaml_deploys() {
    let table: BTreeSet<_> = ROUTES
        .iter()
        .flat_map(|r| {
            r.methods
                .iter()
                .map(|m| (r.function.to_string(), m.to_string(), r.path.to_string()))
        })
        .collect();
    let deployed = deployed_routes(&template());
    let missing: Vec<_> = table.difference(&deployed).collect();
    let extra: Vec<_> = deployed.difference(&table).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "in the route table, not deployed: {missing:?}\ndeployed, not in the route table: {extra:?}"
    );
    assert!(deployed.len() >= 9, "{deployed:?}");
}

#[test]
fn the_local_runner_serves_every_route_of_the_table() {
    // Every table path answers something other than the runner's own 404
    // (the router answers a wrong method with 405, never 404).
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let running = syncaroo_local::start(syncaroo_local::Options {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        })
        .await
        .unwrap();
        let http = syncaroo_shared::tls::http_client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        for r in ROUTES {
            let resp = http
                .request(
                    r.methods[0].parse().unwrap(),
                    format!("{}{}/", running.base(), r.path),
                )
                .send()
                .await
                .unwrap();
            assert_ne!(resp.status(), 404, "{} {}", r.methods[0], r.path);
        }
        // A wrong method: 405 with the route's methods in Allow (HEAD
        // only where a route takes it: check_connection).
        for (method, path, allow) in [
            ("DELETE", "/api/oauth/token", "POST"),
            ("PUT", "/api/oauth/authorize", "GET, POST"),
            ("POST", "/api/check_connection/", "GET, HEAD"),
            ("GET", "/api/update", "POST"),
            ("POST", "/api/admin/syncaroo/status", "GET"),
            ("HEAD", "/api/admin/syncaroo/connect", "GET"),
        ] {
            let resp = http
                .request(method.parse().unwrap(), format!("{}{path}", running.base()))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 405, "{method} {path}");
            assert_eq!(resp.headers()["allow"], allow, "{method} {path}");
        }
        let resp = http
            .get(format!("{}/api/no/such/route", running.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
        running.stop();
    });
}

/// docs/openapi.yaml describes exactly the route table's routes (and HEAD
/// on check_connection), so a route cannot be added without it.
#[test]
fn the_openapi_document_describes_every_route() {
    let path = syncaroo_tests::repo_root().join("docs/openapi.yaml");
    let doc: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_mapping()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            // `parameters` shared by a path's operations is not one.
            ops.as_mapping()
                .unwrap()
                .keys()
                .filter(|m| m.as_str() != Some("parameters"))
                .map(move |m| {
                    (
                        m.as_str().unwrap().to_uppercase(),
                        p.as_str().unwrap().to_string(),
                    )
                })
        })
        .collect();
    let mut table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .flat_map(|r| {
            r.methods
                .iter()
                .map(|m| (m.to_string(), r.path.to_string()))
        })
        .collect();
    table.insert((
        "HEAD".into(),
        syncaroo_shared::routes::CHECK_CONNECTION_ROUTE.into(),
    ));
    assert_eq!(documented, table);
    // Every operation names its answers, each with a description.
    for (_, ops) in doc["paths"].as_mapping().unwrap() {
        for (m, op) in ops.as_mapping().unwrap() {
            if m.as_str() == Some("parameters") {
                continue;
            }
            let responses = op["responses"]
                .as_mapping()
                .unwrap_or_else(|| panic!("{m:?}"));
            assert!(!responses.is_empty());
        }
    }
}
