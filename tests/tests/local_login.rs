//! The local runner's stand-in login page: CSRF-protected (the form's token
//! must match its cookie) and returning only to our authorize URL.

use syncaroo_tests::browser::parse_form;

struct Login {
    base: String,
    http: reqwest::Client,
}

impl Login {
    /// The form's fields and its CSRF cookie, for `return_to`.
    async fn form(&self, return_to: &str) -> (Vec<(String, String)>, String) {
        let resp = self
            .http
            .get(format!("{}/login", self.base))
            .query(&[("return_to", return_to)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|c| c.split(';').next())
            .expect("a CSRF cookie")
            .to_string();
        let fields = parse_form(&resp.text().await.unwrap()).unwrap().fields;
        (fields, cookie)
    }

    async fn post(&self, fields: &[(String, String)], cookie: Option<&str>) -> reqwest::Response {
        let mut req = self.http.post(format!("{}/login", self.base)).form(fields);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }
}

fn with_credentials(mut fields: Vec<(String, String)>) -> Vec<(String, String)> {
    for (k, v) in fields.iter_mut() {
        match k.as_str() {
            "username" => *v = "demo".into(),
            "password" => *v = "demo".into(),
            _ => {}
        }
    }
    fields
}

#[tokio::test]
async fn login_needs_its_csrf_token_and_returns_only_to_authorize() {
    let running = syncaroo_local::start(syncaroo_local::Options {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    })
    .await
    .unwrap();
    let l = Login {
        base: running.base(),
        http: syncaroo_shared::tls::http_client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    };
    let authorize = format!("{}/api/oauth/authorize?connectionId=99&clientId=x", l.base);
    let (fields, cookie) = l.form(&authorize).await;
    assert!(fields.iter().any(|(k, v)| k == "csrf" && !v.is_empty()));
    let fields = with_credentials(fields);
    let without_token: Vec<_> = fields
        .iter()
        .filter(|(k, _)| k != "csrf")
        .cloned()
        .collect();
    let mut wrong_token = fields.clone();
    for (k, v) in wrong_token.iter_mut() {
        if k == "csrf" {
            *v = "forged".into();
        }
    }
    for (name, f, c) in [
        ("no token", &without_token, Some(cookie.as_str())),
        ("no cookie", &fields, None),
        ("wrong token", &wrong_token, Some(cookie.as_str())),
    ] {
        let resp = l.post(f, c).await;
        assert_eq!(resp.status(), 403, "{name}");
        let session = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap_or("").starts_with("syncaroo_session="));
        assert!(!session, "{name}: no session issued");
    }
    let resp = l.post(&fields, Some(&cookie)).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], authorize.as_str());

    // Anything but the authorize path itself goes back to "/".
    for to in [
        format!(
            "{}/api/oauth/authorize/../../api/admin/syncaroo/status",
            l.base
        ),
        format!("{}/api/oauth/authorize/%2e%2e/%2e%2e/login", l.base),
        format!("{}/api/oauth/authorizeX", l.base),
        format!("{}/api/admin/syncaroo/status", l.base),
        "https://evil.example/api/oauth/authorize".to_string(),
        "//evil.example/api/oauth/authorize".to_string(),
    ] {
        let (fields, cookie) = l.form(&to).await;
        let resp = l.post(&with_credentials(fields), Some(&cookie)).await;
        assert_eq!(resp.status(), 303, "{to}");
        assert_eq!(resp.headers()["location"], "/", "{to}");
    }
    running.stop();
}
