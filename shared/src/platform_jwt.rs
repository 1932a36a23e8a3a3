//! The platform's session as a JWT from its own identity provider (Amazon
//! Cognito, any OIDC provider): RS256 or ES256, verified against the
//! provider's JWKS, so a platform signs nothing with a key it shares with
//! us. Beside (not instead of) the HS256 session cookie.
//!
//! Verification is the `jsonwebtoken` crate's; here: which key (by `kid`,
//! from the JWKS, cached and fetched again for an unknown `kid` so a key
//! rotation needs nothing from us), which algorithm (the key's own: an RSA
//! key verifies only RS256, a P-256 key only ES256, so no token can pick
//! HS256 or `none`), issuer, audience, and times on the handlers' clock.

use crate::crypto::SessionClaims;
use crate::error::{Error, Fault};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

/// The settings (`PLATFORM_JWKS_URL` and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformJwtConfig {
    pub jwks_url: String,
    pub issuer: String,
    pub audience: String,
    /// The cookie carrying the JWT (default: the session cookie's name).
    pub cookie: String,
    /// The claim naming the platform's user (default `sub`).
    pub user_claim: String,
    /// How long fetched keys are used before the JWKS is read again.
    pub cache_ttl: std::time::Duration,
}

/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: i64 = 30;
/// An unknown `kid` reads the JWKS again at most this often.
const REFETCH_SECS: i64 = 30;

struct Keys {
    by_kid: HashMap<String, (DecodingKey, Algorithm)>,
    fetched_at: Option<i64>,
}

pub struct PlatformJwt {
    cfg: PlatformJwtConfig,
    http: reqwest::Client,
    keys: tokio::sync::Mutex<Keys>,
}

fn refused(why: &str) -> Error {
    Error::InvalidToken(format!("platform session refused: {why}"))
}

impl PlatformJwt {
    pub fn new(cfg: PlatformJwtConfig, timeout: Duration) -> Self {
        let http = crate::tls::http_client_builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        Self {
            cfg,
            http,
            keys: tokio::sync::Mutex::new(Keys {
                by_kid: HashMap::new(),
                fetched_at: None,
            }),
        }
    }

    pub fn cookie(&self) -> &str {
        &self.cfg.cookie
    }

    /// The session a valid `token` stands for, at `now` (epoch seconds).
    pub async fn verify(&self, token: &str, now: i64) -> Result<SessionClaims, Error> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| refused("not a JWT"))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(refused("only RS256 and ES256 are accepted"));
        }
        let kid = header.kid.ok_or_else(|| refused("no kid"))?;
        let (key, alg) = self.key(&kid, now).await?;
        if header.alg != alg {
            return Err(refused("the algorithm does not match the key"));
        }
        let mut v = Validation::new(alg);
        // Times are checked below on the handlers' clock.
        v.validate_exp = false;
        v.required_spec_claims.clear();
        v.set_issuer(&[&self.cfg.issuer]);
        v.set_audience(&[&self.cfg.audience]);
        let data = jsonwebtoken::decode::<Value>(token, &key, &v)
            .map_err(|e| refused(&format!("{:?}", e.kind())))?;
        let c = data.claims;
        if c["iss"].as_str() != Some(self.cfg.issuer.as_str()) {
            return Err(refused("wrong issuer"));
        }
        let aud_ok = match &c["aud"] {
            Value::String(a) => a == &self.cfg.audience,
            Value::Array(a) => a.iter().any(|x| x.as_str() == Some(&self.cfg.audience)),
            _ => false,
        };
        if !aud_ok {
            return Err(refused("wrong audience"));
        }
        let exp = c["exp"].as_i64().ok_or_else(|| refused("no exp"))?;
        if exp + LEEWAY_SECS <= now {
            return Err(refused("expired"));
        }
        if c["nbf"].as_i64().is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
            return Err(refused("not yet valid"));
        }
        let sub = c[self.cfg.user_claim.as_str()]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| refused("no user claim"))?;
        Ok(SessionClaims {
            sub: sub.to_string(),
            iat: c["iat"].as_i64().unwrap_or(now),
            exp,
        })
    }

    /// The key for `kid`: cached, or from a fresh read of the JWKS when the
    /// cache is old or does not know it (at most every REFETCH_SECS).
    async fn key(&self, kid: &str, now: i64) -> Result<(DecodingKey, Algorithm), Error> {
        let mut keys = self.keys.lock().await;
        let age = keys.fetched_at.map(|t| now - t);
        let stale = age.is_none_or(|a| a >= crate::clock::secs(self.cfg.cache_ttl));
        let unknown = !keys.by_kid.contains_key(kid);
        if stale || (unknown && age.is_none_or(|a| a >= REFETCH_SECS)) {
            match self.fetch().await {
                Ok(by_kid) => {
                    keys.by_kid = by_kid;
                    keys.fetched_at = Some(now);
                }
                // Keys already fetched keep working while the JWKS is down.
                Err(e) if keys.fetched_at.is_some() => {
                    tracing::warn!(error = %e, "JWKS not refreshed; using the keys fetched before")
                }
                Err(e) => return Err(e),
            }
        }
        keys.by_kid
            .get(kid)
            .cloned()
            .ok_or_else(|| refused("unknown kid"))
    }

    async fn fetch(&self) -> Result<HashMap<String, (DecodingKey, Algorithm)>, Error> {
        let resp = self
            .http
            .get(&self.cfg.jwks_url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| {
                let why = if e.is_timeout() {
                    "timed out"
                } else {
                    "request failed"
                };
                Error::Upstream(Fault::transient(format!("JWKS: {why}")).with_source(e))
            })?;
        if !resp.status().is_success() {
            return Err(Error::upstream(format!("JWKS: HTTP {}", resp.status())));
        }
        let set: JwkSet = resp
            .json()
            .await
            .map_err(|e| Error::Upstream(Fault::transient("JWKS: not a JWK set").with_source(e)))?;
        let mut out = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), alg) = (&jwk.common.key_id, key_algorithm(&jwk.algorithm)) else {
                continue;
            };
            let Some(alg) = alg else { continue };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                out.insert(kid.clone(), (key, alg));
            }
        }
        Ok(out)
    }
}

/// The one algorithm a key verifies: RSA -> RS256, EC P-256 -> ES256.
fn key_algorithm(p: &AlgorithmParameters) -> Option<Algorithm> {
    match p {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Some(Algorithm::ES256)
        }
        _ => None,
    }
}

/// `PLATFORM_JWKS_URL` must be https (http only on a loopback host when
/// loopback is allowed, as for the Syncaroo base).
pub fn check_jwks_url(url: &str, allow_loopback: bool) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::Config(format!("PLATFORM_JWKS_URL {url:?} {why}")));
    let Ok(u) = url::Url::parse(url) else {
        return bad("is not a URL");
    };
    match (u.scheme(), u.host_str()) {
        ("https", Some(_)) => Ok(()),
        ("http", Some(h)) if allow_loopback && crate::url_rules::is_loopback_host(h) => Ok(()),
        _ => bad("must be https (http only on a loopback host with SYNCAROO_ALLOW_LOOPBACK)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_url_must_be_https_unless_loopback_is_allowed() {
        assert!(check_jwks_url(
            "https://cognito-idp.eu-west-1.amazonaws.com/x/.well-known/jwks.json",
            false
        )
        .is_ok());
        assert!(check_jwks_url("http://idp.example.com/jwks", true).is_err());
        assert!(check_jwks_url("http://127.0.0.1:9/jwks", false).is_err());
        assert!(check_jwks_url("http://127.0.0.1:9/jwks", true).is_ok());
        assert!(check_jwks_url("not a url", true).is_err());
    }
}
