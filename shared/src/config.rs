//! Configuration, read once per cold start from the environment. Nothing
//! secret lives here: secrets come from [`crate::secrets`].

use crate::error::Error;

/// Where codes may live at most: the guide's flow completes in seconds and
/// RFC 6749 recommends ten minutes as the ceiling.
pub const MAX_CODE_TTL: u64 = 600;

#[derive(Debug, Clone)]
pub struct Config {
    /// The client id we gave Syncaroo (`yourClientId`).
    pub client_id: String,
    /// The one redirect URI Syncaroo registered; compared byte for byte.
    pub redirect_uri: String,
    /// The public URL of the authorize endpoint (`authUri`), used as the
    /// return address after the platform's login.
    pub auth_uri: String,
    /// The platform's login page; we append `login_return_param=<return>`.
    pub login_url: String,
    pub login_return_param: String,
    /// Cookie that carries the platform session (an HS256 JWT).
    pub session_cookie: String,
    /// Shown on the consent page.
    pub platform_name: String,
    pub code_ttl: u64,
    pub access_token_ttl: u64,
    pub refresh_token_ttl: u64,
    /// A refresh token reused within this many seconds of its first use is
    /// treated as a network retry, not theft.
    pub refresh_reuse_grace: u64,
    pub table_name: String,
    pub secret_id: String,
    pub secrets_cache_ttl: u64,
}

impl Config {
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads every setting through `get`, so tests need no process env.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let s = |k: &str, d: &str| get(k).filter(|v| !v.is_empty()).unwrap_or_else(|| d.into());
        let n = |k: &str, d: u64| -> Result<u64, Error> {
            match get(k).filter(|v| !v.is_empty()) {
                None => Ok(d),
                Some(v) => v
                    .parse()
                    .map_err(|_| Error::Config(format!("{k} must be a whole number of seconds"))),
            }
        };
        let cfg = Config {
            client_id: s("OAUTH_CLIENT_ID", "syncaroo"),
            redirect_uri: s("OAUTH_REDIRECT_URI", "https://app.syncaroo.com/connection"),
            auth_uri: s("AUTH_URI", "https://yourapp.com/api/oauth/authorize"),
            login_url: s("LOGIN_URL", "https://yourapp.com/login"),
            login_return_param: s("LOGIN_RETURN_PARAM", "return_to"),
            session_cookie: s("SESSION_COOKIE", "syncaroo_session"),
            platform_name: s("PLATFORM_NAME", "Your platform"),
            code_ttl: n("CODE_TTL_SECONDS", 300)?,
            access_token_ttl: n("ACCESS_TOKEN_TTL_SECONDS", 3600)?,
            refresh_token_ttl: n("REFRESH_TOKEN_TTL_SECONDS", 30 * 86_400)?,
            refresh_reuse_grace: n("REFRESH_REUSE_GRACE_SECONDS", 10)?,
            table_name: s("TABLE_NAME", "syncaroo-bridge"),
            secret_id: s("SECRET_ID", "syncaroo-bridge/secrets"),
            secrets_cache_ttl: n("SECRETS_CACHE_TTL_SECONDS", 300)?,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), Error> {
        if self.code_ttl == 0 || self.code_ttl > MAX_CODE_TTL {
            return Err(Error::Config(format!(
                "CODE_TTL_SECONDS must be between 1 and {MAX_CODE_TTL}"
            )));
        }
        if self.access_token_ttl == 0 || self.refresh_token_ttl <= self.access_token_ttl {
            return Err(Error::Config(
                "ACCESS_TOKEN_TTL_SECONDS must be positive and shorter than REFRESH_TOKEN_TTL_SECONDS"
                    .into(),
            ));
        }
        if self.refresh_reuse_grace > 300 {
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
    }

    #[test]
    fn reads_overrides() {
        let c = cfg(&[("OAUTH_CLIENT_ID", "xyz1243"), ("CODE_TTL_SECONDS", "60")]).unwrap();
        assert_eq!(c.client_id, "xyz1243");
        assert_eq!(c.code_ttl, 60);
    }
}
