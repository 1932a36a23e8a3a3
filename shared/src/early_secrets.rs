//! The cold start's first secrets fetch, sent before anything else is
//! built.
//!
//! Secrets Manager is the slowest answer in init, so the request leaves
//! first and everything else (logging, the SDK config and clients, the
//! DynamoDB warm-up) is built while it is in flight. Going through the SDK
//! would mean building its config and a Secrets Manager client first, so
//! this sends the same `GetSecretValue` call itself: signed by the SDK's
//! own SigV4 signer (`aws-sigv4`), over the workspace's TLS configuration.
//!
//! It is only a head start. It runs only when the environment says plainly
//! where and as whom to ask (on Lambda: the region and the function's
//! credentials are environment variables); anything unusual (FIPS or
//! dual-stack endpoints, a profile, a partition other than `aws`) leaves the
//! fetch to the SDK client, and so does any failure here: the SDK then
//! fetches again with its retries and its own error messages. The SDK
//! client does every later refresh.

use crate::error::Error;
use std::time::{Duration, SystemTime};

/// How long the head start may take before init falls back to the SDK.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where and as whom to send `GetSecretValue`.
#[derive(Clone)]
pub struct Target {
    endpoint: String,
    region: String,
    access_key: String,
    secret_key: String,
    session_token: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys never reach a log line.
        f.debug_struct("Target")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// A region of the standard `aws` partition (`eu-west-1`), the only one
/// whose endpoint this module writes itself.
fn standard_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    matches!(
        parts.as_slice(),
        [prefix, area, number]
            if ["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"].contains(prefix)
                && !area.is_empty()
                && area.bytes().all(|b| b.is_ascii_lowercase())
                && !number.is_empty()
                && number.bytes().all(|b| b.is_ascii_digit())
    )
}

impl Target {
    /// From the environment (as read by `get`); `None` when anything would
    /// make the SDK resolve the endpoint or the credentials differently.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        for changes_resolution in [
            "AWS_USE_FIPS_ENDPOINT",
            "AWS_USE_DUALSTACK_ENDPOINT",
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
            "AWS_PROFILE",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
        ] {
            if get(changes_resolution).is_some() {
                return None;
            }
        }
        let region = get("AWS_REGION")?;
        let access_key = get("AWS_ACCESS_KEY_ID")?;
        let secret_key = get("AWS_SECRET_ACCESS_KEY")?;
        let endpoint =
            match get("AWS_ENDPOINT_URL_SECRETS_MANAGER").or_else(|| get("AWS_ENDPOINT_URL")) {
                Some(url) => url,
                None if standard_region(&region) => {
                    format!("https://secretsmanager.{region}.amazonaws.com")
                }
                None => return None,
            };
        Some(Self {
            endpoint,
            region,
            access_key,
            secret_key,
            session_token: get("AWS_SESSION_TOKEN"),
        })
    }

    pub fn from_env() -> Option<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// The signed `GetSecretValue` request for `secret_id`.
    fn request(&self, secret_id: &str, now: SystemTime) -> Result<http::Request<Vec<u8>>, Error> {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let fail = |what: &str| Error::Secrets(format!("GetSecretValue {secret_id}: {what}"));
        let body = serde_json::to_vec(&serde_json::json!({ "SecretId": secret_id }))
            .map_err(|_| fail("request body"))?;
        let uri = format!("{}/", self.endpoint.trim_end_matches('/'));
        let mut req = http::Request::post(&uri)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "secretsmanager.GetSecretValue")
            .body(body)
            .map_err(|_| fail("endpoint is not a URL"))?;
        let identity = aws_credential_types::Credentials::new(
            &self.access_key,
            &self.secret_key,
            self.session_token.clone(),
            None,
            "environment",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("secretsmanager")
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .map_err(|_| fail("signing parameters"))?
            .into();
        let headers: Vec<(&str, &str)> = req
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
            .collect();
        let signable = SignableRequest::new(
            "POST",
            &uri,
            headers.into_iter(),
            SignableBody::Bytes(req.body()),
        )
        .map_err(|_| fail("request cannot be signed"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|_| fail("signing failed"))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut req);
        Ok(req)
    }

    /// `GetSecretValue` for `secret_id`: its `SecretString`.
    pub async fn fetch(&self, http: &reqwest::Client, secret_id: &str) -> Result<String, Error> {
        let fail = |what: String| Error::Secrets(format!("GetSecretValue {secret_id}: {what}"));
        let req = reqwest::Request::try_from(self.request(secret_id, SystemTime::now())?)
            .map_err(|_| fail("request".into()))?;
        let resp = tokio::time::timeout(TIMEOUT, async {
            let resp = http.execute(req).await?;
            let status = resp.status();
            Ok::<_, reqwest::Error>((status, resp.bytes().await?))
        })
        .await
        .map_err(|_| fail("timed out".into()))?
        .map_err(|e| fail(format!("request failed ({})", e.without_url())))?;
        let (status, body) = resp;
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(rename = "SecretString")]
            secret_string: Option<String>,
            // An error's type (`ResourceNotFoundException`); never a value.
            #[serde(rename = "__type")]
            kind: Option<String>,
        }
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|_| fail(format!("HTTP {status} with an unreadable answer")))?;
        if !status.is_success() {
            let kind = answer.kind.unwrap_or_default();
            let kind = kind.rsplit('#').next().unwrap_or_default().to_string();
            return Err(fail(format!("HTTP {status} {kind}")));
        }
        answer
            .secret_string
            .ok_or_else(|| fail("no SecretString".into()))
    }

    /// Every secret in `secret_ids` (comma-separated, as `SECRET_ID`),
    /// concurrently; the documents in order.
    pub async fn fetch_all(&self, secret_ids: &str) -> Result<Vec<String>, Error> {
        let http = crate::tls::http_client_builder()
            .tcp_nodelay(true)
            .build()
            .map_err(|_| Error::Secrets("HTTP client".into()))?;
        let ids = crate::secrets::split_ids(secret_ids);
        crate::secrets::fetch_each(&ids, |id| {
            let (target, http) = (self.clone(), http.clone());
            async move { target.fetch(&http, &id).await }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const LAMBDA: &[(&str, &str)] = &[
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEKEY"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY",
        ),
        ("AWS_SESSION_TOKEN", "session-token-value"),
    ];

    #[test]
    fn runs_only_when_the_environment_is_plain() {
        let t = Target::from_lookup(env(LAMBDA)).expect("a Lambda environment");
        assert_eq!(t.endpoint, "https://secretsmanager.eu-west-1.amazonaws.com");

        let mut e = LAMBDA.to_vec();
        e.push(("AWS_ENDPOINT_URL", "http://127.0.0.1:1"));
        e.push(("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:2"));
        let t = Target::from_lookup(env(&e)).unwrap();
        assert_eq!(
            t.endpoint, "http://127.0.0.1:2",
            "the service's own URL wins"
        );

        for (k, v) in [
            ("AWS_USE_FIPS_ENDPOINT", "true"),
            ("AWS_USE_DUALSTACK_ENDPOINT", "true"),
            ("AWS_PROFILE", "dev"),
        ] {
            let mut e = LAMBDA.to_vec();
            e.push((k, v));
            assert!(
                Target::from_lookup(env(&e)).is_none(),
                "{k} is left to the SDK"
            );
        }
        for region in [
            "cn-north-1",
            "us-gov-west-1",
            "us-isob-east-1",
            "eusc-de-east-1",
            "",
        ] {
            let mut e: Vec<_> = LAMBDA
                .iter()
                .filter(|(k, _)| *k != "AWS_REGION")
                .copied()
                .collect();
            e.push(("AWS_REGION", region));
            assert!(
                Target::from_lookup(env(&e)).is_none(),
                "{region} is left to the SDK"
            );
        }
        let no_key: Vec<_> = LAMBDA
            .iter()
            .filter(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY")
            .copied()
            .collect();
        assert!(Target::from_lookup(env(&no_key)).is_none());
    }

    #[test]
    fn signs_with_sigv4_and_never_shows_the_keys() {
        let t = Target::from_lookup(env(LAMBDA)).unwrap();
        let debug = format!("{t:?}");
        assert!(
            !debug.contains("SECRETKEY") && !debug.contains("session-token"),
            "{debug}"
        );

        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_824_000);
        let req = t.request("bridge/secrets", at).unwrap();
        let h = |k: &str| {
            req.headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        assert!(
            h("authorization").starts_with(
                "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEKEY/20261128/eu-west-1/secretsmanager/aws4_request"
            ),
            "{}",
            h("authorization")
        );
        assert!(
            h("authorization").contains("x-amz-target"),
            "the target is signed"
        );
        assert_eq!(h("x-amz-security-token"), "session-token-value");
        assert_eq!(h("x-amz-target"), "secretsmanager.GetSecretValue");
        assert_eq!(req.body(), br#"{"SecretId":"bridge/secrets"}"#);
        for (_, v) in req.headers() {
            assert!(!v.to_str().unwrap_or("").contains("SECRETKEY"));
        }
        // Same inputs, same signature: nothing random in it.
        let again = t.request("bridge/secrets", at).unwrap();
        assert_eq!(
            req.headers().get("authorization"),
            again.headers().get("authorization")
        );
    }
}
