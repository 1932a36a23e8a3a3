//! Configuration, read once per cold start from the environment. Nothing
//! secret lives here: secrets come from [`crate::secrets`].

use crate::error::Error;
use std::time::Duration;

/// Where codes may live at most: the guide's flow completes in seconds and
/// RFC 6749 recommends ten minutes as the ceiling.
pub const MAX_CODE_TTL: Duration = Duration::from_secs(600);

/// The form of `expires` in guide-dialect token responses
/// (`TOKEN_EXPIRES_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiresFormat {
    /// `guide`: `YYYY-MM-DDTHH:MM:SS`, UTC without a zone, as Syncaroo
    /// expects.
    Guide,
    /// `rfc3339`: with a `Z`, for clients that insist on a zone.
    Rfc3339,
}

impl ExpiresFormat {
    pub fn parse(v: &str) -> Result<Self, Error> {
        match v {
            "guide" => Ok(Self::Guide),
            "rfc3339" => Ok(Self::Rfc3339),
            other => Err(Error::Config(format!(
                "TOKEN_EXPIRES_FORMAT {other:?}: use guide or rfc3339"
            ))),
        }
    }
}

/// Which webhooks must carry a `hash` (`WEBHOOK_REQUIRE_HASH`). A `hash`
/// that is present is always verified; the guide's own status example has
/// none, and the bearer token authenticates every webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashRequirement {
    /// `data` (default): data webhooks (which make us call Syncaroo).
    Data,
    /// `all`: every webhook.
    All,
    /// `none`: the bearer alone; a hash is checked when sent.
    None,
}

impl HashRequirement {
    pub fn parse(v: &str) -> Result<Self, Error> {
        match v {
            "data" => Ok(Self::Data),
            "all" => Ok(Self::All),
            "none" => Ok(Self::None),
            other => Err(Error::Config(format!(
                "WEBHOOK_REQUIRE_HASH {other:?}: use data, all or none"
            ))),
        }
    }

    pub fn requires(self, webhook_type: crate::webhook::WebhookType) -> bool {
        match self {
            Self::All => true,
            Self::None => false,
            Self::Data => webhook_type == crate::webhook::WebhookType::Data,
        }
    }
}

/// Who may call the platform API (`PLATFORM_API_AUTH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformAuth {
    /// `iam` (the default, and what a deployment uses): only a caller API
    /// Gateway verified with SigV4 (`AWS_IAM`); without one, nothing is let
    /// in, so a direct invoke, a function URL or a future catch-all route
    /// cannot open the platform API to anyone.
    Iam,
    /// `basic`: HTTP Basic `admin:<admin key>` (the local runner, where no
    /// API Gateway stands in front).
    Basic,
}

impl PlatformAuth {
    pub fn parse(v: &str) -> Result<Self, Error> {
        match v {
            "iam" => Ok(Self::Iam),
            "basic" => Ok(Self::Basic),
            other => Err(Error::Config(format!(
                "PLATFORM_API_AUTH {other:?}: use iam or basic"
            ))),
        }
    }
}

/// Settings whose defaults only stand in (the local runner and the tests
/// set their own), with the template parameter that sets each.
pub const PLACEHOLDERS: &[(&str, &str, &str)] = &[
    ("LOGIN_URL", "https://yourapp.com/login", "LoginUrl"),
    (
        "SECRET_ID",
        "syncaroo-bridge/secrets",
        "the stack's secrets",
    ),
];

/// A deployment that left a placeholder setting unset fails at start,
/// naming it (it would otherwise send users to yourapp.com, or read a
/// secret that is not the stack's).
pub fn require_real_settings(get: impl Fn(&str) -> Option<String>) -> Result<(), Error> {
    for (key, placeholder, parameter) in PLACEHOLDERS {
        match get(key).map(|v| v.trim().to_string()) {
            Some(v) if !v.is_empty() && v != *placeholder => {}
            _ => {
                return Err(Error::Config(format!(
                    "{key} is not set (or is the placeholder {placeholder}): set {parameter}"
                )))
            }
        }
    }
    Ok(())
}

/// What a whole-number setting counts, for its error message.
#[derive(Clone, Copy)]
enum Unit {
    Seconds,
    Millis,
    Bytes,
    Count,
}

impl Unit {
    fn of(key: &str) -> Unit {
        if key.ends_with("_SECONDS") {
            Unit::Seconds
        } else if key.ends_with("_MS") {
            Unit::Millis
        } else if key.ends_with("_BYTES") {
            Unit::Bytes
        } else {
            Unit::Count
        }
    }

    fn what(self) -> &'static str {
        match self {
            Unit::Seconds => "a whole number of seconds",
            Unit::Millis => "a whole number of milliseconds",
            Unit::Bytes => "a whole number of bytes",
            Unit::Count => "a whole number",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The client id we gave Syncaroo (`yourClientId`).
    pub client_id: String,
    /// The one redirect URI Syncaroo registered; compared byte for byte.
    pub redirect_uri: String,
    /// Where this deployment is reached (`https://yourapp.com`, a custom
    /// domain); `None`: the host each request came in on
    /// ([`crate::public_url`]).
    pub public_base_url: Option<String>,
    /// The platform's login page; we append `login_return_param=<return>`.
    pub login_url: String,
    pub login_return_param: String,
    /// Cookie that carries the platform session (an HS256 JWT).
    pub session_cookie: String,
    /// Shown on the consent page.
    pub platform_name: String,
    pub code_ttl: Duration,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// A refresh token reused within this many seconds of its first use is
    /// treated as a network retry, not theft.
    pub refresh_reuse_grace: Duration,
    pub table_name: String,
    pub secret_id: String,
    pub secrets_cache_ttl: Duration,
    /// After a rotation of `yourClientSecret`, the replaced secret is
    /// accepted this long, from the new version's creation.
    pub client_secret_grace: Duration,
    /// Base of the Syncaroo API (`<base>authorize`, `<base>token`, data).
    pub syncaroo_api_base: String,
    /// Where the data API's URLs may point (`SYNCAROO_DATA_BASES`), apart
    /// from the OAuth base above.
    pub syncaroo_data_bases: crate::url_rules::DataBases,
    /// How strictly webhooks must carry a `hash` (`WEBHOOK_REQUIRE_HASH`).
    pub webhook_require_hash: HashRequirement,
    /// Lets the bases be `http://` on a loopback host (local runs and tests
    /// only; the template never sets it).
    pub syncaroo_allow_loopback: bool,
    /// Refresh Syncaroo's access token when it expires within this margin.
    pub syncaroo_refresh_margin: Duration,
    /// How long a refresher holds the lease before others may take over.
    pub syncaroo_lease: Duration,
    /// How long a caller waits for another refresher before giving up.
    pub syncaroo_wait: Duration,
    pub syncaroo_http_timeout: Duration,
    pub syncaroo_refresh_attempts: u64,
    /// `expires` in guide-dialect token responses.
    pub token_expires_format: ExpiresFormat,
    /// How webhook `hash`es are verified.
    pub webhook_hash: crate::webhook::HashProfile,
    /// Processing attempts per webhook event before it is dead-lettered.
    pub sync_max_attempts: u64,
    /// Pages followed per `apiUrl` at most.
    pub sync_max_pages: u64,
    /// Bytes read per page at most.
    pub sync_max_response_bytes: u64,
    /// Tries per page on 429, 5xx and unreadable bodies.
    pub sync_page_attempts: u64,
    /// Wall-clock budget for fetching all pages of one event.
    pub sync_deadline: Duration,
    /// Where failed events go (SQS queue URL); empty: none configured.
    pub dead_letter_queue_url: String,
    /// Change events: the `Source` of every entry (`EVENT_SOURCE`) and the
    /// bus they go to (`EVENT_BUS_NAME`, a name or ARN).
    pub event_source: String,
    pub event_bus_name: String,
    /// The platform's session as an RS256/ES256 JWT from its identity
    /// provider (`PLATFORM_JWKS_URL`, `PLATFORM_JWT_ISSUER`,
    /// `PLATFORM_JWT_AUDIENCE`, `PLATFORM_JWT_COOKIE`,
    /// `PLATFORM_JWT_USER_CLAIM`, `PLATFORM_JWKS_CACHE_SECONDS`); off when
    /// no JWKS URL is set.
    pub platform_jwt: Option<crate::platform_jwt::PlatformJwtConfig>,
    /// Who may call the platform API.
    pub platform_api_auth: PlatformAuth,
    /// `PLATFORM_CALLER_ARNS`: the IAM callers let in (comma-separated
    /// ARNs; a trailing `*` matches any rest, e.g. every session of an
    /// assumed role). Empty: any caller API Gateway verified (the IAM
    /// policy on the route is then the only gate).
    pub platform_caller_arns: Vec<String>,
    /// A target is fetched at most once per this many milliseconds
    /// (`SYNC_MIN_FETCH_INTERVAL_MS`); a notification inside it is fetched
    /// when it has passed, never dropped.
    pub sync_min_fetch_interval: Duration,
}

/// Settings read by name: empty counts as unset.
struct Lookup<F>(F);

impl<F: Fn(&str) -> Option<String>> Lookup<F> {
    fn get(&self, k: &str) -> Option<String> {
        (self.0)(k).filter(|v| !v.is_empty())
    }

    fn s(&self, k: &str, d: &str) -> String {
        self.get(k).unwrap_or_else(|| d.into())
    }

    /// A whole number; the key's suffix (_SECONDS, _MS, _BYTES) is its
    /// unit, and the error names it.
    fn n(&self, k: &str, d: u64) -> Result<u64, Error> {
        match self.get(k) {
            None => Ok(d),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| Error::Config(format!("{k} must be {}", Unit::of(k).what()))),
        }
    }

    /// A duration in the unit its name says (`_SECONDS` or `_MS`).
    fn duration(&self, k: &str, d: u64) -> Result<Duration, Error> {
        let n = self.n(k, d)?;
        Ok(match Unit::of(k) {
            Unit::Millis => Duration::from_millis(n),
            _ => Duration::from_secs(n),
        })
    }

    fn flag(&self, k: &str) -> Result<bool, Error> {
        match self.s(k, "false").to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(Error::Config(format!("{k} must be true or false"))),
        }
    }

    /// A comma-separated list, blanks dropped.
    fn list(&self, k: &str) -> Vec<String> {
        self.s(k, "")
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The platform's ID tokens as sessions: only with a JWKS URL.
    fn platform_jwt(&self) -> Result<Option<crate::platform_jwt::PlatformJwtConfig>, Error> {
        let Some(jwks_url) = self.get("PLATFORM_JWKS_URL") else {
            return Ok(None);
        };
        Ok(Some(crate::platform_jwt::PlatformJwtConfig {
            jwks_url,
            issuer: self.s("PLATFORM_JWT_ISSUER", ""),
            audience: self.s("PLATFORM_JWT_AUDIENCE", ""),
            cookie: self.s(
                "PLATFORM_JWT_COOKIE",
                &self.s("SESSION_COOKIE", "syncaroo_session"),
            ),
            user_claim: self.s("PLATFORM_JWT_USER_CLAIM", "sub"),
            cache_ttl: self.duration("PLATFORM_JWKS_CACHE_SECONDS", 600)?,
        }))
    }
}

impl Config {
    /// A deployed function's configuration: [`Self::from_lookup`] on the
    /// environment, and a setting whose default is only a placeholder
    /// ([`PLACEHOLDERS`]) must have been given, or init fails naming it.
    pub fn from_env() -> Result<Self, Error> {
        let get = |k: &str| std::env::var(k).ok();
        require_real_settings(get)?;
        Self::from_lookup(get)
    }

    /// Reads every setting through `get`, so tests need no process env.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let r = Lookup(get);
        let cfg = Config {
            client_id: r.s("OAUTH_CLIENT_ID", "syncaroo"),
            redirect_uri: r.s("OAUTH_REDIRECT_URI", "https://app.syncaroo.com/connection"),
            public_base_url: r.get("PUBLIC_BASE_URL"),
            login_url: r.s("LOGIN_URL", "https://yourapp.com/login"),
            login_return_param: r.s("LOGIN_RETURN_PARAM", "return_to"),
            session_cookie: r.s("SESSION_COOKIE", "syncaroo_session"),
            platform_name: r.s("PLATFORM_NAME", "Your platform"),
            code_ttl: r.duration("CODE_TTL_SECONDS", 300)?,
            access_token_ttl: r.duration("ACCESS_TOKEN_TTL_SECONDS", 3600)?,
            refresh_token_ttl: r.duration("REFRESH_TOKEN_TTL_SECONDS", 30 * 86_400)?,
            refresh_reuse_grace: r.duration("REFRESH_REUSE_GRACE_SECONDS", 10)?,
            table_name: r.s("TABLE_NAME", "syncaroo-bridge"),
            secret_id: r.s("SECRET_ID", "syncaroo-bridge/secrets"),
            secrets_cache_ttl: r.duration("SECRETS_CACHE_TTL_SECONDS", 300)?,
            client_secret_grace: r.duration("CLIENT_SECRET_GRACE_SECONDS", 86_400)?,
            syncaroo_api_base: r.s("SYNCAROO_API_BASE", "https://app.syncaroo.com/api/"),
            syncaroo_data_bases: crate::url_rules::DataBases::parse(
                &r.s("SYNCAROO_DATA_BASES", crate::url_rules::DEFAULT_DATA_BASES),
                r.flag("SYNCAROO_ALLOW_LOOPBACK")?,
            )?,
            webhook_require_hash: HashRequirement::parse(&r.s("WEBHOOK_REQUIRE_HASH", "data"))?,
            syncaroo_allow_loopback: r.flag("SYNCAROO_ALLOW_LOOPBACK")?,
            syncaroo_refresh_margin: r.duration("SYNCAROO_REFRESH_MARGIN_SECONDS", 240)?,
            syncaroo_lease: r.duration("SYNCAROO_LEASE_MS", 30_000)?,
            syncaroo_wait: r.duration("SYNCAROO_WAIT_MS", 15_000)?,
            syncaroo_http_timeout: r.duration("SYNCAROO_HTTP_TIMEOUT_MS", 5_000)?,
            syncaroo_refresh_attempts: r.n("SYNCAROO_REFRESH_ATTEMPTS", 3)?,
            token_expires_format: ExpiresFormat::parse(&r.s("TOKEN_EXPIRES_FORMAT", "guide"))?,
            webhook_hash: crate::webhook::HashProfile::parse(
                &r.s("WEBHOOK_HASH_ALGORITHM", "hmac-sha256"),
                &r.s("WEBHOOK_HASH_ENCODING", "hex"),
                &r.s("WEBHOOK_HASH_KEY", "client_secret"),
            )?,
            sync_max_attempts: r.n("SYNC_MAX_ATTEMPTS", 5)?,
            sync_max_pages: r.n("SYNC_MAX_PAGES", 50)?,
            sync_max_response_bytes: r.n("SYNC_MAX_RESPONSE_BYTES", 1_048_576)?,
            sync_page_attempts: r.n("SYNC_PAGE_ATTEMPTS", 4)?,
            sync_deadline: r.duration("SYNC_DEADLINE_MS", 60_000)?,
            dead_letter_queue_url: r.s("DEAD_LETTER_QUEUE_URL", ""),
            event_source: r.s("EVENT_SOURCE", "syncaroo-bridge"),
            event_bus_name: r.s("EVENT_BUS_NAME", "default"),
            platform_api_auth: PlatformAuth::parse(&r.s("PLATFORM_API_AUTH", "iam"))?,
            platform_caller_arns: r.list("PLATFORM_CALLER_ARNS"),
            sync_min_fetch_interval: r.duration("SYNC_MIN_FETCH_INTERVAL_MS", 5_000)?,
            platform_jwt: r.platform_jwt()?,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), Error> {
        if let Some(j) = &self.platform_jwt {
            crate::platform_jwt::check_jwks_url(&j.jwks_url, self.syncaroo_allow_loopback)?;
            if j.issuer.is_empty() || j.audience.is_empty() || j.user_claim.is_empty() {
                return Err(Error::Config(
                    "PLATFORM_JWKS_URL needs PLATFORM_JWT_ISSUER and PLATFORM_JWT_AUDIENCE".into(),
                ));
            }
        }
        if self.code_ttl.is_zero() || self.code_ttl > MAX_CODE_TTL {
            return Err(Error::Config(format!(
                "CODE_TTL_SECONDS must be between 1 and {}",
                MAX_CODE_TTL.as_secs()
            )));
        }
        if self.access_token_ttl.is_zero() || self.refresh_token_ttl <= self.access_token_ttl {
            return Err(Error::Config(
                "ACCESS_TOKEN_TTL_SECONDS must be positive and shorter than REFRESH_TOKEN_TTL_SECONDS"
                    .into(),
            ));
        }
        if self.refresh_reuse_grace > Duration::from_secs(300) {
            return Err(Error::Config(
                "REFRESH_REUSE_GRACE_SECONDS above 300 defeats reuse detection".into(),
            ));
        }
        if !(self.redirect_uri.starts_with("https://") || self.redirect_uri.starts_with("http://"))
        {
            return Err(Error::Config(
                "OAUTH_REDIRECT_URI must be an absolute URL".into(),
            ));
        }
        if let Some(b) = &self.public_base_url {
            crate::url_rules::check_base_url(b)?;
        }
        crate::url_rules::check_base(&self.syncaroo_api_base, self.syncaroo_allow_loopback)?;
        if self.sync_max_attempts == 0 || self.sync_max_pages == 0 || self.sync_page_attempts == 0 {
            return Err(Error::Config(
                "SYNC_MAX_ATTEMPTS, SYNC_MAX_PAGES and SYNC_PAGE_ATTEMPTS must be >= 1".into(),
            ));
        }
        if self.syncaroo_refresh_attempts == 0 || self.syncaroo_lease < Duration::from_secs(1) {
            return Err(Error::Config(
                "SYNCAROO_REFRESH_ATTEMPTS must be >= 1 and SYNCAROO_LEASE_MS >= 1000".into(),
            ));
        }
        if self.client_id.is_empty() || self.session_cookie.is_empty() {
            return Err(Error::Config(
                "OAUTH_CLIENT_ID and SESSION_COOKIE must not be empty".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, Error> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn a_deployment_must_set_what_only_has_a_placeholder() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let err = require_real_settings(env(&[("SECRET_ID", "arn:x")])).unwrap_err();
        assert!(err.to_string().contains("LOGIN_URL"), "{err}");
        assert!(err.to_string().contains("LoginUrl"), "{err}");
        let err = require_real_settings(env(&[
            ("LOGIN_URL", "https://yourapp.com/login"),
            ("SECRET_ID", "arn:x"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("placeholder"), "{err}");
        let err =
            require_real_settings(env(&[("LOGIN_URL", "https://shop.example/login")])).unwrap_err();
        assert!(err.to_string().contains("SECRET_ID"), "{err}");
        assert!(require_real_settings(env(&[
            ("LOGIN_URL", "https://shop.example/login"),
            ("SECRET_ID", "arn:x"),
        ]))
        .is_ok());
    }

    #[test]
    fn defaults_are_safe() {
        let c = cfg(&[]).unwrap();
        assert!(c.code_ttl <= MAX_CODE_TTL);
        assert!(c.access_token_ttl < c.refresh_token_ttl);
        assert_eq!(c.redirect_uri, "https://app.syncaroo.com/connection");
    }

    #[test]
    fn rejects_long_code_lifetime_and_garbage() {
        assert!(cfg(&[("CODE_TTL_SECONDS", "601")]).is_err());
        assert!(cfg(&[("CODE_TTL_SECONDS", "ten")]).is_err());
        assert!(cfg(&[("ACCESS_TOKEN_TTL_SECONDS", "0")]).is_err());
        assert!(cfg(&[("OAUTH_REDIRECT_URI", "app.syncaroo.com")]).is_err());
        assert!(cfg(&[("REFRESH_REUSE_GRACE_SECONDS", "3600")]).is_err());
        assert!(cfg(&[("SYNCAROO_API_BASE", "http://app.syncaroo.com/api/")]).is_err());
        assert!(cfg(&[("SYNCAROO_API_BASE", "http://127.0.0.1:9/api/")]).is_err());
        assert!(cfg(&[
            ("SYNCAROO_API_BASE", "http://127.0.0.1:9/api/"),
            ("SYNCAROO_ALLOW_LOOPBACK", "true")
        ])
        .is_ok());
        assert!(cfg(&[
            ("SYNCAROO_API_BASE", "http://10.0.0.1/api/"),
            ("SYNCAROO_ALLOW_LOOPBACK", "true")
        ])
        .is_err());
    }

    #[test]
    fn reads_overrides() {
        let c = cfg(&[("OAUTH_CLIENT_ID", "xyz1243"), ("CODE_TTL_SECONDS", "60")]).unwrap();
        assert_eq!(c.client_id, "xyz1243");
        assert_eq!(c.code_ttl, Duration::from_secs(60));
        let c = cfg(&[
            ("TOKEN_EXPIRES_FORMAT", "rfc3339"),
            ("SYNCAROO_ALLOW_LOOPBACK", "FALSE"),
        ])
        .unwrap();
        assert_eq!(c.token_expires_format, ExpiresFormat::Rfc3339);
        assert!(!c.syncaroo_allow_loopback);
    }

    #[test]
    fn errors_name_the_unit_of_the_setting() {
        let msg = |k: &str, v: &str| cfg(&[(k, v)]).unwrap_err().to_string();
        let cases = [
            (
                "SYNCAROO_LEASE_MS",
                "30s",
                "SYNCAROO_LEASE_MS must be a whole number of milliseconds",
            ),
            (
                "CODE_TTL_SECONDS",
                "5m",
                "CODE_TTL_SECONDS must be a whole number of seconds",
            ),
            (
                "SYNC_MAX_RESPONSE_BYTES",
                "1MB",
                "SYNC_MAX_RESPONSE_BYTES must be a whole number of bytes",
            ),
            (
                "SYNC_MAX_PAGES",
                "many",
                "SYNC_MAX_PAGES must be a whole number",
            ),
            ("TOKEN_EXPIRES_FORMAT", "unix", "use guide or rfc3339"),
            (
                "SYNCAROO_ALLOW_LOOPBACK",
                "maybe",
                "SYNCAROO_ALLOW_LOOPBACK must be true or false",
            ),
        ];
        for (k, v, want) in cases {
            let m = msg(k, v);
            assert!(m.contains(want), "{k}={v}: {m}");
        }
    }
}
