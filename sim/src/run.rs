//! The simulator's scenario: Syncaroo's whole side of the guide against a
//! deployment, step by step, with a report. Each step says what it expected
//! when it fails.

use crate::checks::{Finding, Status};
use crate::ctx::Ctx;
use crate::fake::Fake;
use crate::others;
use crate::probes;
use crate::sender::Sender;
use crate::steps;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use syncaroo_shared::public_url::{AUTHORIZE_PATH, TOKEN_PATH};
use syncaroo_shared::routes::{self, Endpoint};

pub use crate::ctx::is_guide_datetime;
pub use crate::setup::{Join, Setup, Urls, WebhookBase};

/// The URLs of our own layout on `target` (`--target`): the route table's
/// paths; the two Syncaroo appends to apiUri in the guide's form, with
/// their trailing slash.
fn our_layout(target: &str) -> Urls {
    Urls {
        authorize: format!("{target}{AUTHORIZE_PATH}"),
        token: format!("{target}{TOKEN_PATH}"),
        check_connection: format!("{target}{}/", routes::path(Endpoint::CheckConnection)),
        webhook: format!("{target}{}/", routes::path(Endpoint::Webhook)),
    }
}

#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The deployment's `siteUri` (e.g. `http://127.0.0.1:8080`).
    pub target: String,
    /// Where the kit sends each request.
    pub urls: Urls,
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
    /// How long the platform takes a repeated refresh token as a retry:
    /// the reuse check waits past it.
    pub refresh_grace: Duration,
    /// The webhook signature (`None`: ours, HMAC-SHA256 hex of the
    /// canonical JSON keyed by yourClientSecret).
    pub signature: Option<crate::sender::Signature>,
    /// Only these areas' checks (`authorize`, `token`, `check`, `webhook`,
    /// `sync`); `None`: all. The connect flow and the first exchange run
    /// anyway (the rest needs them), reported only when selected or failed.
    pub sections: Option<std::collections::BTreeSet<String>>,
}

impl SimOptions {
    /// Whether the checks of `area` run.
    pub fn runs(&self, area: &str) -> bool {
        self.sections.as_ref().is_none_or(|s| s.contains(area))
    }

    /// Driven by a platform's setup block: every URL from it, joined as
    /// `join` says, webhooks on `webhook_base`.
    pub fn from_setup(setup: &Setup, join: Join, webhook_base: WebhookBase) -> Self {
        let mut o = Self::new(
            &setup.site_uri,
            &setup.your_client_id,
            &setup.your_client_secret,
        );
        o.urls = setup.urls(join, webhook_base);
        o.redirect_uri = setup.redirect_uri.clone();
        o
    }

    pub fn new(target: &str, client_id: &str, client_secret: &str) -> Self {
        Self {
            target: target.trim_end_matches('/').to_string(),
            urls: our_layout(target.trim_end_matches('/')),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_uri: "https://app.syncaroo.com/connection".into(),
            username: "demo".into(),
            password: "demo".into(),
            admin_key: None,
            connection_id: (10_000 + rand::random::<u32>() % 90_000).to_string(),
            progress: false,
            sync_wait: Duration::from_secs(15),
            refresh_grace: Duration::from_secs(10),
            sections: None,
            signature: None,
        }
    }
}

/// What a run found, check by check.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    /// Something ran and nothing failed.
    pub fn passed(&self) -> bool {
        !self.findings.is_empty() && self.failed().is_empty()
    }

    pub fn failed(&self) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| f.status == Status::Fail)
            .collect()
    }

    /// The status of check `id`, if it ran.
    pub fn status(&self, id: &str) -> Option<Status> {
        self.findings
            .iter()
            .find(|f| f.check.id == id)
            .map(|f| f.status)
    }

    pub fn table(&self) -> String {
        crate::checks::table(&self.findings)
    }
}

/// Runs one step: times it, records it, and says whether it passed.
macro_rules! step {
    ($c:ident, $id:expr, $fut:expr) => {{
        let started = Instant::now();
        let r = $fut.await;
        $c.record($id, started, r)
    }};
}

/// Runs every check against `o`'s URLs, with `fake` as the Syncaroo API
/// the target was configured to call.
pub async fn run(o: &SimOptions, fake: &Arc<Fake>) -> Report {
    let mut c = Ctx::new(o, fake);
    if connects(&mut c).await {
        if o.runs("authorize") {
            step!(c, "authorize.unknown-client", others::unknown_client(&c));
            step!(
                c,
                "authorize.unregistered-redirect",
                others::unregistered_redirect(&c)
            );
        }
        let bearer = c.access.clone().unwrap_or_default();
        let mut sender = Sender::new(o.urls.webhook.clone(), o.client_secret.clone());
        if let Some(sig) = &o.signature {
            sender = sender.with_signature(sig, &o.client_secret);
        }
        if o.runs("webhook") {
            webhooks(&mut c, &sender, &bearer).await;
        }
        if o.runs("webhook") || o.runs("token") {
            on_a_throwaway_connection(&mut c, &sender).await;
        }
        // The data sync, when the platform may be connected to the fake API.
        match o.admin_key.clone() {
            Some(admin_key) if o.runs("sync") => {
                syncs_data(&mut c, o, &admin_key, &sender, &bearer).await
            }
            _ => {}
        }
    }
    c.report
}

/// The user connects: authorize, login, consent, back to Syncaroo; then
/// Syncaroo exchanges the code (once only), reconnects, checks the
/// connection and refreshes. `false`: a check the rest needs failed.
async fn connects(c: &mut Ctx<'_>) -> bool {
    let (start, state) = steps::authorize_url(c);
    let mut code = String::new();
    if !step!(
        c,
        "authorize.redirect",
        steps::user_connects(c, &start, &state, &mut code)
    ) {
        return false;
    }
    if !exchanges(c, &code).await {
        return false;
    }
    step!(c, "token.code-once", steps::code_replay(c, &code));
    // The replay revoked the first pair: a second consent gives a fresh
    // code, first offered with a wrong client secret.
    let started = Instant::now();
    let code = match steps::consent_again(c, &start).await {
        Ok(code) => code,
        Err(e) => return c.record("authorize.consent-again", started, Err(e)),
    };
    step!(c, "token.wrong-secret", probes::wrong_secret(c, &code));
    if !step!(
        c,
        "authorize.consent-again",
        steps::exchange_for_pair(c, &code)
    ) {
        return false;
    }
    let access = c.access.clone().unwrap_or_default();
    if c.o.runs("check") {
        checks_the_connection(c, &access).await;
    }
    if c.o.runs("token") {
        step!(c, "token.refresh-rotates", steps::refresh_rotates(c));
    }
    true
}

/// The first code exchange, and what its answer must hold.
async fn exchanges(c: &mut Ctx<'_>, code: &str) -> bool {
    let started = Instant::now();
    let body = match steps::exchange(c, code).await {
        Ok((200, body)) => body,
        Ok((415, body)) => {
            let why = format!("the form-encoded request was refused: 415 {body}");
            c.record("token.form-content-type", started, Err(why.clone()));
            return c.record("token.code-exchange", started, Err(why));
        }
        Ok((s, body)) => {
            let why = format!("expected 200 with tokens, got {s}: {body}");
            return c.record("token.code-exchange", started, Err(why));
        }
        Err(e) => return c.record("token.code-exchange", started, Err(e)),
    };
    c.record("token.code-exchange", started, Ok("200".into()));
    let form = Ok("taken as application/x-www-form-urlencoded".to_string());
    c.record("token.form-content-type", started, form);
    let fields = crate::ctx::response_fields(&body);
    let have_pair = c.record("token.response-fields", started, fields);
    c.record(
        "token.expires-format",
        started,
        crate::ctx::expires_format(&body),
    );
    have_pair && c.keep_tokens(&body).is_ok()
}

/// check_connection: refused without the bearer, then one answer checked
/// for each rule.
async fn checks_the_connection(c: &mut Ctx<'_>, access: &str) {
    step!(
        c,
        "check.bearer-required",
        probes::check_bearer_required(c, access)
    );
    let started = Instant::now();
    let (status, ct, body) = match c.fetch_check(Some(access)).await {
        Ok((200, ct, body)) => (200, ct, body),
        Ok((s, _, body)) => {
            let why = format!("expected 200, got {s}: {body}");
            c.record("check.schema", started, Err(why));
            return;
        }
        Err(e) => {
            c.record("check.schema", started, Err(e));
            return;
        }
    };
    debug_assert_eq!(status, 200);
    let id = c.o.connection_id.clone();
    c.record("check.content-type", started, crate::ctx::content_type(&ct));
    c.record(
        "check.connection-echoed",
        started,
        crate::ctx::echoed(&body, &id),
    );
    c.record("check.schema", started, crate::ctx::schema(&body));
}

/// Webhooks: refused without a bearer, with a wrong one, with a forged
/// hash; a status webhook accepted, and how fast.
async fn webhooks(c: &mut Ctx<'_>, sender: &Sender, bearer: &str) {
    let status = |text: &str| {
        serde_json::json!({"connectionId": steps::connection_value(c), "webhookType": "status",
                           "locationId": "1198", "metaData": {"status": text}})
    };
    let (open, closed) = (status("open"), status("closed"));
    step!(
        c,
        "webhook.bearer-required",
        probes::webhook_bearer_required(c, sender, bearer, open.clone())
    );
    step!(
        c,
        "webhook.forged-hash",
        probes::forged_hash(sender, bearer, open)
    );
    let started = Instant::now();
    let accepted = step!(
        c,
        "webhook.status-accepted",
        steps::status_webhook(sender, bearer, closed)
    );
    if accepted {
        let (s, detail) = probes::answer_time(started);
        c.record_status("webhook.fast", started, s, detail);
    }
}

/// Checks that revoke what they touch, on a connection of the kit's own:
/// another connection's bearer, then a refresh token used twice.
async fn on_a_throwaway_connection(c: &mut Ctx<'_>, sender: &Sender) {
    let started = Instant::now();
    let other = match others::throwaway(c).await {
        Ok(o) => o,
        Err(e) => {
            let why = format!("a throwaway connection could not be made: {e}");
            for id in ["webhook.other-bearer", "token.refresh-once"] {
                c.record_status(id, started, Status::Skip, why.clone());
            }
            return;
        }
    };
    let body = serde_json::json!({"connectionId": steps::connection_value(c), "webhookType": "status",
                                  "locationId": "1198", "metaData": {"status": "open"}});
    step!(
        c,
        "webhook.other-bearer",
        others::other_bearer(sender, &other, body)
    );
    let grace = c.o.refresh_grace;
    step!(
        c,
        "token.refresh-once",
        others::refresh_once(c, &other, grace)
    );
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
    if !step!(c, "sync.handshake", steps::admin_connect(c, admin_key)) {
        return;
    }
    let rates = format!("/api/v1/locations/1198/rates/{}", o.connection_id);
    let mut data = Value::Null;
    step!(
        c,
        "sync.all-pages",
        steps::data_webhook(c, sender, bearer, &rates, &mut data)
    );
    step!(
        c,
        "sync.same-body-refetched",
        steps::same_body_again(c, sender, bearer, &rates, &data)
    );
    step!(
        c,
        "sync.out-of-order",
        steps::out_of_order(c, sender, bearer)
    );
    step!(
        c,
        "sync.token-refresh",
        steps::token_refresh_on_401(c, sender, bearer)
    );
}
