//! The simulator's scenario: Syncaroo's whole side of the guide against a
//! deployment, step by step, with a report. Each step says what it expected
//! when it fails.

use crate::ctx::Ctx;
use crate::fake::Fake;
use crate::sender::Sender;
use crate::steps;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use syncaroo_shared::public_url::{AUTHORIZE_PATH, TOKEN_PATH};
use syncaroo_shared::routes::{self, Endpoint};

pub use crate::ctx::is_guide_datetime;

#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The deployment's `siteUri` (e.g. `http://127.0.0.1:8080`).
    pub target: String,
    pub auth_path: String,
    pub token_path: String,
    pub check_connection_path: String,
    pub webhook_path: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    pub username: String,
    pub password: String,
    /// With an admin key the simulator also connects the platform to its
    /// fake Syncaroo API and checks the data sync.
    pub admin_key: Option<String>,
    pub connection_id: String,
    /// Print a line per step as it finishes.
    pub progress: bool,
    /// How long to wait for the platform to fetch announced data.
    pub sync_wait: Duration,
}

impl SimOptions {
    pub fn new(target: &str, client_id: &str, client_secret: &str) -> Self {
        Self {
            target: target.trim_end_matches('/').to_string(),
            // The route table's paths; the two Syncaroo appends to apiUri
            // in the guide's form, with their trailing slash.
            auth_path: AUTHORIZE_PATH.into(),
            token_path: TOKEN_PATH.into(),
            check_connection_path: format!("{}/", routes::path(Endpoint::CheckConnection)),
            webhook_path: format!("{}/", routes::path(Endpoint::Webhook)),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_uri: "https://app.syncaroo.com/connection".into(),
            username: "demo".into(),
            password: "demo".into(),
            admin_key: None,
            connection_id: (10_000 + rand::random::<u32>() % 90_000).to_string(),
            progress: false,
            sync_wait: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub ok: bool,
    pub millis: u128,
    pub detail: String,
}

#[derive(Debug, Default, Clone)]
pub struct Report {
    pub steps: Vec<Step>,
}

impl Report {
    pub fn passed(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.ok)
    }

    pub fn failed(&self) -> Vec<&Step> {
        self.steps.iter().filter(|s| !s.ok).collect()
    }

    pub fn table(&self) -> String {
        let w = self
            .steps
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!(
            "{:<3} {:<w$}  {:<6} {:>8}  {}\n",
            "#", "step", "result", "ms", "detail"
        );
        for (i, s) in self.steps.iter().enumerate() {
            out.push_str(&format!(
                "{:<3} {:<w$}  {:<6} {:>8}  {}\n",
                i + 1,
                s.name,
                if s.ok { "PASS" } else { "FAIL" },
                s.millis,
                s.detail
            ));
        }
        let passed = self.steps.iter().filter(|s| s.ok).count();
        out.push_str(&format!(
            "{} passed, {} failed\n",
            passed,
            self.steps.len() - passed
        ));
        out
    }
}

/// Runs one step: times it, records it, and says whether it passed.
macro_rules! step {
    ($c:ident, $name:expr, $fut:expr) => {{
        let started = Instant::now();
        let r = $fut.await;
        $c.record($name, started, r)
    }};
}

/// Runs the whole scenario against `o.target`, with `fake` as the Syncaroo
/// API the target was configured to call.
pub async fn run(o: &SimOptions, fake: &Arc<Fake>) -> Report {
    let mut c = Ctx::new(o, fake);
    if connects(&mut c).await {
        let bearer = c.access.clone().unwrap_or_default();
        let sender = Sender::new(c.url(&o.webhook_path), o.client_secret.clone());
        step!(
            c,
            "webhook: forged ones refused",
            steps::forged_webhooks(&c, &sender, &bearer)
        );
        step!(
            c,
            "webhook: status",
            steps::status_webhook(&c, &sender, &bearer)
        );
        // The data sync, when the platform may be connected to the fake API.
        if let Some(admin_key) = o.admin_key.clone() {
            syncs_data(&mut c, o, &admin_key, &sender, &bearer).await;
        }
    }
    c.report
}

/// The user connects: authorize, login, consent, back to Syncaroo; then
/// Syncaroo exchanges the code (once only), reconnects, checks the
/// connection and refreshes. `false`: a step the rest needs failed.
async fn connects(c: &mut Ctx<'_>) -> bool {
    let (start, state) = steps::authorize_url(c);
    let mut code = String::new();
    if !step!(
        c,
        "authorize: login + consent",
        steps::user_connects(c, &start, &state, &mut code)
    ) {
        return false;
    }
    if !step!(
        c,
        "token: code exchange (guide dialect)",
        steps::code_exchange(c, &code)
    ) {
        return false;
    }
    step!(
        c,
        "token: reused code refused",
        steps::code_replay(c, &code)
    );
    if !step!(
        c,
        "authorize + token again (fresh pair)",
        steps::reconnect(c, &start)
    ) {
        return false;
    }
    let access = c.access.clone().unwrap_or_default();
    step!(c, "check_connection: listings", c.check_connection(&access));
    step!(c, "token: refresh rotates", steps::refresh_rotates(c));
    true
}

/// The platform connects to the fake Syncaroo API; data webhooks are
/// fetched, again for the same body, in any order, with a token refresh.
async fn syncs_data(
    c: &mut Ctx<'_>,
    o: &SimOptions,
    admin_key: &str,
    sender: &Sender,
    bearer: &str,
) {
    if !step!(
        c,
        "admin: connect to the Syncaroo API",
        steps::admin_connect(c, admin_key)
    ) {
        return;
    }
    let rates = format!("/api/v1/locations/1198/rates/{}", o.connection_id);
    let mut data = Value::Null;
    step!(
        c,
        "webhook: data, 3 pages fetched",
        steps::data_webhook(c, sender, bearer, &rates, &mut data)
    );
    step!(
        c,
        "webhook: same body again, fetched again",
        steps::same_body_again(c, sender, bearer, &rates, &data)
    );
    step!(
        c,
        "webhook: out-of-order deliveries",
        steps::out_of_order(c, sender, bearer)
    );
    step!(
        c,
        "syncaroo token: refresh on 401",
        steps::token_refresh_on_401(c, sender, bearer)
    );
}
