//! The checks that send what Syncaroo never would (no bearer, a wrong
//! one, a wrong client secret) and expect a refusal; and the timing of a
//! webhook's answer. None of them changes what a later check relies on.

use crate::ctx::{Ctx, StepResult};
use crate::sender::Sender;
use serde_json::{json, Value};
use std::time::Instant;

/// A webhook answer slower than this is a WARN: Syncaroo's sender should
/// not wait on the platform's fetch.
pub const SLOW_WEBHOOK_MS: u128 = 2_000;

fn refused(status: u16) -> bool {
    matches!(status, 400 | 401 | 403)
}

/// check_connection with no bearer and with a wrong one.
pub(crate) async fn check_bearer_required(c: &Ctx<'_>, access: &str) -> StepResult {
    let (none, _, _) = c.fetch_check(None).await?;
    let (wrong, _, _) = c.fetch_check(Some(&format!("{access}x"))).await?;
    if none == 401 && refused(wrong) {
        Ok(format!("no bearer: {none}; a wrong one: {wrong}"))
    } else {
        Err(format!(
            "expected 401 without a bearer and a refusal for a wrong one, got {none} and {wrong}"
        ))
    }
}

/// A webhook signed as Syncaroo signs, sent without Authorization, and
/// with a bearer the platform never issued.
pub(crate) async fn webhook_bearer_required(
    c: &Ctx<'_>,
    sender: &Sender,
    bearer: &str,
    body: Value,
) -> StepResult {
    let resp = c
        .http
        .post(&c.o.urls.webhook)
        .json(&sender.sign(body.clone()))
        .send()
        .await
        .map_err(|e| format!("unreachable: {e}"))?;
    let none = resp.status().as_u16();
    let wrong = sender.send(&format!("{bearer}x"), body).await?.status;
    if none == 401 && refused(wrong) {
        Ok(format!("no bearer: {none}; a made-up one: {wrong}"))
    } else {
        Err(format!(
            "expected 401 without a bearer and a refusal for a made-up one, got {none} and {wrong}"
        ))
    }
}

/// A webhook whose `hash` does not verify.
pub(crate) async fn forged_hash(sender: &Sender, bearer: &str, body: Value) -> StepResult {
    let mut forged = sender.sign(body);
    forged["hash"] = json!("0000");
    let d = sender.send_raw(bearer, &forged).await?;
    if refused(d.status) {
        Ok(format!("refused with {}", d.status))
    } else {
        Err(format!(
            "expected a refusal for a forged hash, got {}",
            d.status
        ))
    }
}

/// A code exchange with a wrong client secret (the code is not spent by
/// it: RFC 6749 refuses the client before the grant).
pub(crate) async fn wrong_secret(c: &Ctx<'_>, code: &str) -> StepResult {
    let o = c.o;
    let wrong = format!("{}-wrong", o.client_secret);
    let (status, body) = c
        .token_request(&[
            ("clientId", &o.client_id),
            ("clientSecret", &wrong),
            ("code", code),
            ("grantType", "authorization_code"),
        ])
        .await?;
    if refused(status) {
        Ok(format!("refused with {status} {}", body["error"]))
    } else {
        Err(format!(
            "expected a refusal for a wrong clientSecret, got {status}"
        ))
    }
}

/// How long a webhook's answer took: PASS, or WARN over the threshold.
pub(crate) fn answer_time(started: Instant) -> (crate::checks::Status, String) {
    let ms = started.elapsed().as_millis();
    if ms > SLOW_WEBHOOK_MS {
        (
            crate::checks::Status::Warn,
            format!("answered in {ms} ms (over {SLOW_WEBHOOK_MS} ms: fetch after answering)"),
        )
    } else {
        (crate::checks::Status::Pass, format!("answered in {ms} ms"))
    }
}
