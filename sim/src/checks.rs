//! The conformance kit's checks: every rule of the guide the kit tests,
//! under a stable id, with the guide's section and a one-line rule; what a
//! run found for each (PASS, FAIL, WARN, SKIP); and the reports CI systems
//! read (JUnit XML, JSON), judged against a list of known failures.

use serde_json::{json, Value};
use std::collections::BTreeSet;

/// One rule the kit checks.
#[derive(Debug, PartialEq, Eq)]
pub struct Check {
    /// Stable: reports, `--expected-failures` files and docs name it.
    pub id: &'static str,
    /// The guide's section the rule comes from.
    pub section: &'static str,
    pub rule: &'static str,
}

const CONNECTING: &str = "Connecting your users' accounts";
const TOKENS: &str = "Syncaroo will request tokens";
const REFRESHING: &str = "Refreshing access tokens";
const SETUP: &str = "Syncaroo then completes and confirms the initial setup";
const DATA_HOOKS: &str = "Handling Data Sync change notifications";
const STATUS_HOOKS: &str = "Handling Status Sync change notifications";
const API_AUTH: &str = "Authenticating with the Syncaroo API";
const FETCHING: &str = "Fetching data via the Syncaroo API";

macro_rules! catalog {
    ($($id:literal, $section:expr, $rule:literal;)*) => {
        /// Every check, by area.
        pub const CATALOG: &[Check] = &[$(Check { id: $id, section: $section, rule: $rule }),*];
    };
}

catalog! {
    "authorize.redirect", CONNECTING,
        "After consent the user is sent to redirectUri with connectionId and code (and state when sent).";
    "authorize.unknown-client", CONNECTING,
        "An unknown clientId is refused, without a redirect to redirectUri.";
    "authorize.unregistered-redirect", CONNECTING,
        "An unregistered redirectUri is refused, without a redirect to it.";
    "authorize.consent-again", CONNECTING,
        "A second consent for the same connection gives a new code, exchanged for a new pair.";
    "token.form-content-type", TOKENS,
        "The token endpoint takes an application/x-www-form-urlencoded body.";
    "token.code-exchange", TOKENS,
        "A code is exchanged for accessToken, refreshToken and expires.";
    "token.response-fields", TOKENS,
        "The answer holds accessToken, refreshToken and expires, as strings.";
    "token.expires-format", TOKENS,
        "expires is UTC in the guide's format (2009-06-15T13:45:30), without a zone.";
    "token.code-once", TOKENS,
        "A code works once: a second exchange is refused.";
    "token.wrong-secret", TOKENS,
        "A wrong clientSecret is refused.";
    "token.refresh-rotates", REFRESHING,
        "A refresh token gives a new pair, and the new access token works.";
    "token.refresh-once", REFRESHING,
        "A refresh token works once: used again after the platform's grace window, it is refused.";
    "check.bearer-required", SETUP,
        "check_connection without a bearer, or with a wrong one, is refused.";
    "check.content-type", SETUP,
        "check_connection answers Content-Type: application/json; charset=UTF-8.";
    "check.connection-echoed", SETUP,
        "check_connection's answer echoes the connectionId asked for.";
    "check.schema", SETUP,
        "Every location has ID, name and a status from the guide's list; resources have ID, name, status and type.";
    "webhook.status-accepted", STATUS_HOOKS,
        "A status webhook with a valid bearer is accepted.";
    "webhook.forged-hash", DATA_HOOKS,
        "A webhook whose hash does not verify is refused.";
    "webhook.bearer-required", DATA_HOOKS,
        "A webhook without a bearer, or with one the platform did not issue, is refused.";
    "webhook.other-bearer", DATA_HOOKS,
        "A webhook with another connection's bearer is refused.";
    "webhook.fast", DATA_HOOKS,
        "A webhook is answered fast (WARN over the threshold): the fetch happens after the answer.";
    "sync.handshake", API_AUTH,
        "The platform connects to the Syncaroo API through the guide's authorize and token steps.";
    "sync.all-pages", FETCHING,
        "A data webhook's apiUrl is fetched with Syncaroo's bearer, and every page after it.";
    "sync.same-body-refetched", DATA_HOOKS,
        "The same notification sent again after a finished fetch is fetched again.";
    "sync.out-of-order", DATA_HOOKS,
        "Webhooks delivered out of order are each fetched.";
    "sync.token-refresh", REFRESHING,
        "An expired Syncaroo token is refreshed once and the fetch retried.";
}

/// The check `id` names; `None` for an id the kit does not have.
pub fn find(id: &str) -> Option<&'static Check> {
    CATALOG.iter().find(|c| c.id == id)
}

/// What a run found for a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    /// Allowed by the guide, but risky (e.g. a slow webhook answer).
    Warn,
    Fail,
    /// Not run, and why (the detail says).
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone)]
pub struct Finding {
    pub check: &'static Check,
    pub status: Status,
    pub millis: u128,
    /// What was seen; for a FAIL, what was expected and what came.
    pub detail: String,
}

/// The ids a platform knowingly fails: a file of one id a line (`#`
/// starts a comment) or a JSON array of ids. An id the kit does not have
/// is refused, so a typo cannot hide a failure.
pub fn parse_expected_failures(text: &str) -> Result<BTreeSet<String>, String> {
    let ids: Vec<String> = match serde_json::from_str::<Vec<String>>(text) {
        Ok(ids) => ids,
        Err(_) if text.trim_start().starts_with('[') => {
            return Err("expected failures: a JSON list must hold check ids as strings".into())
        }
        Err(_) => text
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
    };
    match ids.iter().find(|id| find(id).is_none()) {
        Some(unknown) => Err(format!(
            "expected failures: {unknown:?} is not a check id (`syncaroo-sim checks` lists them)"
        )),
        None => Ok(ids.into_iter().collect()),
    }
}

/// A run judged against the expected failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// FAILs not on the list.
    pub unexpected: Vec<&'static str>,
    /// Listed ids that passed (or warned): take them off the list.
    pub now_passing: Vec<&'static str>,
    /// Listed ids that failed, as expected.
    pub expected: Vec<&'static str>,
}

impl Verdict {
    pub fn of(findings: &[Finding], listed: &BTreeSet<String>) -> Self {
        let mut v = Verdict {
            unexpected: vec![],
            now_passing: vec![],
            expected: vec![],
        };
        for f in findings {
            let on_list = listed.contains(f.check.id);
            match (f.status, on_list) {
                (Status::Fail, true) => v.expected.push(f.check.id),
                (Status::Fail, false) => v.unexpected.push(f.check.id),
                (Status::Pass | Status::Warn, true) => v.now_passing.push(f.check.id),
                _ => {}
            }
        }
        v
    }

    /// 0: everything passed or failed as listed; 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        u8::from(!(self.unexpected.is_empty() && self.now_passing.is_empty()))
    }
}

fn counts(findings: &[Finding]) -> Value {
    let n = |s: Status| findings.iter().filter(|f| f.status == s).count();
    json!({
        "pass": n(Status::Pass), "warn": n(Status::Warn),
        "fail": n(Status::Fail), "skip": n(Status::Skip),
    })
}

/// The JSON report: each check with its section, rule, status and
/// detail, the counts, and the verdict.
pub fn json_report(findings: &[Finding], verdict: &Verdict, target: &str) -> Value {
    let checks: Vec<Value> = findings
        .iter()
        .map(|f| {
            json!({
                "id": f.check.id, "section": f.check.section, "rule": f.check.rule,
                "status": f.status.as_str(), "millis": f.millis as u64, "detail": f.detail,
                "expectedFailure": verdict.expected.contains(&f.check.id),
            })
        })
        .collect();
    json!({
        "kit": "syncaroo-sim",
        "version": env!("CARGO_PKG_VERSION"),
        "target": target,
        "summary": counts(findings),
        "checks": checks,
        "unexpectedFailures": verdict.unexpected,
        "listedButPassing": verdict.now_passing,
        "exitCode": verdict.exit_code(),
    })
}

fn attr(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// The JUnit XML report: one test case per check, its section as the
/// class. A FAIL is a `<failure>`, unless the list expected it (then
/// `<skipped>`, saying so); a listed check that passed is a `<failure>`
/// (take it off the list); a SKIP is `<skipped>`; a WARN passes with its
/// warning in `<system-out>`.
pub fn junit_report(findings: &[Finding], verdict: &Verdict) -> String {
    let failures = verdict.unexpected.len() + verdict.now_passing.len();
    let skipped = findings
        .iter()
        .filter(|f| f.status == Status::Skip || verdict.expected.contains(&f.check.id))
        .count();
    let secs = |ms: u128| format!("{:.3}", ms as f64 / 1000.0);
    let total: u128 = findings.iter().map(|f| f.millis).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"syncaroo-conformance\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{}\">\n",
        findings.len(),
        secs(total)
    ));
    out.push_str(&format!(
        "  <testsuite name=\"syncaroo-conformance\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{}\">\n",
        findings.len(),
        secs(total)
    ));
    for f in findings {
        let id = f.check.id;
        out.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\">\n",
            attr(f.check.section),
            attr(id),
            secs(f.millis)
        ));
        let (tag, message) = match f.status {
            Status::Fail if verdict.expected.contains(&id) => {
                ("skipped", format!("expected failure: {}", f.check.rule))
            }
            Status::Fail => ("failure", f.check.rule.to_string()),
            _ if verdict.now_passing.contains(&id) => (
                "failure",
                "listed as an expected failure but passed: take it off the list".to_string(),
            ),
            Status::Skip => ("skipped", f.detail.clone()),
            Status::Warn => ("system-out", String::new()),
            Status::Pass => ("", String::new()),
        };
        match tag {
            "" => {}
            "system-out" => out.push_str(&format!(
                "      <system-out>WARN: {}</system-out>\n",
                attr(&f.detail)
            )),
            _ => out.push_str(&format!(
                "      <{tag} message=\"{}\">{}</{tag}>\n",
                attr(&message),
                attr(&f.detail)
            )),
        }
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// The terminal table: id, status, time, detail; then the counts.
pub fn table(findings: &[Finding]) -> String {
    let w = findings
        .iter()
        .map(|f| f.check.id.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!("{:<w$}  {:<6} {:>8}  detail\n", "check", "result", "ms");
    for f in findings {
        out.push_str(&format!(
            "{:<w$}  {:<6} {:>8}  {}\n",
            f.check.id,
            f.status.as_str(),
            f.millis,
            f.detail
        ));
    }
    let c = counts(findings);
    out.push_str(&format!(
        "{} passed, {} warned, {} failed, {} skipped\n",
        c["pass"], c["warn"], c["fail"], c["skip"]
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &str, status: Status, detail: &str) -> Finding {
        Finding {
            check: find(id).unwrap(),
            status,
            millis: 12,
            detail: detail.into(),
        }
    }

    #[test]
    fn ids_are_unique_dotted_and_sectioned() {
        let mut seen = BTreeSet::new();
        for c in CATALOG {
            assert!(seen.insert(c.id), "{} twice", c.id);
            let (area, name) = c.id.split_once('.').unwrap();
            assert!(
                ["authorize", "token", "check", "webhook", "sync"].contains(&area),
                "{}",
                c.id
            );
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
            assert!(c.rule.ends_with('.') && !c.section.is_empty());
        }
    }

    #[test]
    fn expected_failures_come_as_lines_or_json_and_unknown_ids_are_refused() {
        let lines = "# known\ntoken.expires-format\n\n check.content-type # charset\n";
        let want: BTreeSet<String> = ["check.content-type", "token.expires-format"]
            .map(String::from)
            .into();
        assert_eq!(parse_expected_failures(lines).unwrap(), want);
        let json = r#"["token.expires-format", "check.content-type"]"#;
        assert_eq!(parse_expected_failures(json).unwrap(), want);
        let err = parse_expected_failures("token.expires-fromat").unwrap_err();
        assert!(err.contains("token.expires-fromat"), "{err}");
        assert!(parse_expected_failures("[1, 2]").is_err());
    }

    #[test]
    fn the_verdict_fails_on_unexpected_failures_and_on_listed_passes() {
        let findings = [
            finding("token.code-once", Status::Pass, "refused"),
            finding(
                "token.expires-format",
                Status::Fail,
                "expected no zone, got Z",
            ),
            finding("webhook.fast", Status::Warn, "1200 ms"),
            finding("sync.handshake", Status::Skip, "no --admin-start"),
        ];
        let none = BTreeSet::new();
        let v = Verdict::of(&findings, &none);
        assert_eq!(
            (v.unexpected.clone(), v.exit_code()),
            (vec!["token.expires-format"], 1)
        );
        let listed: BTreeSet<String> = ["token.expires-format".to_string()].into();
        let v = Verdict::of(&findings, &listed);
        assert_eq!(v.exit_code(), 0, "{v:?}");
        let stale: BTreeSet<String> = ["token.expires-format", "token.code-once"]
            .map(String::from)
            .into();
        let v = Verdict::of(&findings, &stale);
        assert_eq!(
            (v.now_passing.clone(), v.exit_code()),
            (vec!["token.code-once"], 1)
        );
    }

    #[test]
    fn the_reports_say_the_same() {
        let findings = [
            finding(
                "token.code-once",
                Status::Pass,
                "refused with invalid_grant",
            ),
            finding(
                "token.expires-format",
                Status::Fail,
                "expected no zone, got \"<2024Z>\" & more",
            ),
            finding("webhook.fast", Status::Warn, "1200 ms"),
            finding("sync.handshake", Status::Skip, "no --admin-start"),
        ];
        let listed: BTreeSet<String> = BTreeSet::new();
        let v = Verdict::of(&findings, &listed);
        let j = json_report(&findings, &v, "http://127.0.0.1:1");
        assert_eq!(
            j["summary"],
            json!({"pass": 1, "warn": 1, "fail": 1, "skip": 1})
        );
        assert_eq!(j["checks"][1]["status"], "FAIL");
        assert_eq!(j["unexpectedFailures"], json!(["token.expires-format"]));
        assert_eq!(j["exitCode"], 1);
        let x = junit_report(&findings, &v);
        assert!(
            x.contains("tests=\"4\" failures=\"1\" skipped=\"1\""),
            "{x}"
        );
        assert!(x.contains("&lt;2024Z&gt;"), "escaped: {x}");
        assert!(x.contains("<failure message="), "{x}");
    }
}
