//! The setup block a platform sends Syncaroo before getting started (the
//! guide's "Before getting started"), read from a file, and the URLs the
//! kit calls, joined as Syncaroo joins them.
//!
//! The guide's own values join to a doubled slash: `apiUri`
//! `https://yourapp.com/api/` and `webhookPath` `/update/` concatenate to
//! `https://yourapp.com/api//update/`. The kit sends one slash at the seam
//! by default (`--join collapse`), which any router accepts; `--join
//! literal` sends the concatenation as it is, for a platform that wants to
//! see exactly what a literal-minded sender does.
//!
//! Webhooks: the setup block appends `webhookPath` to `apiUri`; the data
//! webhook section says `<site_url>/<webhook_path>`. The block is what a
//! platform registers, so the kit's default is `api`; `--webhook-base
//! site` takes the other reading.

use serde::Deserialize;

/// The setup block, with the kit's one addition (`redirectUri`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Setup {
    pub site_uri: String,
    /// The guide: defaults to `<site_url>/api/`.
    #[serde(default)]
    pub api_uri: Option<String>,
    pub auth_uri: String,
    pub webhook_path: String,
    pub check_connection_path: String,
    pub your_client_id: String,
    pub your_client_secret: String,
    pub auth_token_uri: String,
    /// The Syncaroo redirect URI the platform registered.
    #[serde(default = "default_redirect")]
    pub redirect_uri: String,
}

fn default_redirect() -> String {
    "https://app.syncaroo.com/connection".into()
}

/// How a base and a path are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Join {
    /// One slash at the seam.
    #[default]
    Collapse,
    /// The concatenation, as it is.
    Literal,
}

/// Which base `webhookPath` is appended to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookBase {
    #[default]
    Api,
    Site,
}

/// The URLs the kit calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urls {
    pub authorize: String,
    pub token: String,
    pub check_connection: String,
    pub webhook: String,
}

pub fn join(base: &str, path: &str, how: Join) -> String {
    match how {
        Join::Literal => format!("{base}{path}"),
        Join::Collapse => format!(
            "{}/{}",
            base.trim_end_matches('/'),
            path.trim_start_matches('/')
        ),
    }
}

fn absolute(name: &str, v: &str) -> Result<(), String> {
    let u = url::Url::parse(v).map_err(|e| format!("{name}: {v:?} is not a URL: {e}"))?;
    match u.scheme() {
        "http" | "https" if u.host().is_some() => Ok(()),
        _ => Err(format!("{name}: {v:?} must be an http(s) URL with a host")),
    }
}

impl Setup {
    /// Reads a setup block: JSON with the guide's names (every field but
    /// `apiUri` and `redirectUri` required); URLs must be absolute.
    pub fn parse(text: &str) -> Result<Self, String> {
        let s: Setup = serde_json::from_str(text).map_err(|e| format!("setup file: {e}"))?;
        absolute("siteUri", &s.site_uri)?;
        absolute("authUri", &s.auth_uri)?;
        absolute("authTokenUri", &s.auth_token_uri)?;
        absolute("redirectUri", &s.redirect_uri)?;
        if let Some(api) = &s.api_uri {
            absolute("apiUri", api)?;
        }
        for (name, v) in [
            ("webhookPath", &s.webhook_path),
            ("checkConnectionPath", &s.check_connection_path),
            ("yourClientId", &s.your_client_id),
            ("yourClientSecret", &s.your_client_secret),
        ] {
            if v.trim().is_empty() {
                return Err(format!("setup file: {name} is empty"));
            }
        }
        Ok(s)
    }

    /// `apiUri`, or the guide's default `<site_url>/api/`.
    pub fn api_uri(&self) -> String {
        self.api_uri
            .clone()
            .unwrap_or_else(|| join(&self.site_uri, "api/", Join::Collapse))
    }

    pub fn urls(&self, how: Join, webhook_base: WebhookBase) -> Urls {
        let api = self.api_uri();
        let hook_base = match webhook_base {
            WebhookBase::Api => api.clone(),
            WebhookBase::Site => self.site_uri.clone(),
        };
        Urls {
            authorize: self.auth_uri.clone(),
            token: self.auth_token_uri.clone(),
            check_connection: join(&api, &self.check_connection_path, how),
            webhook: join(&hook_base, &self.webhook_path, how),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guide's example block, with its values as printed.
    const GUIDE: &str = r#"{
        "siteUri": "https://yourapp.com",
        "apiUri": "https://yourapp.com/api/",
        "authUri": "https://yourapp.com/api/oauth/authorize",
        "webhookPath": "/update/",
        "checkConnectionPath": "/check_connection/",
        "yourClientId": "xyz1243",
        "yourClientSecret": "...",
        "authTokenUri": "https://yourapp.com/api/oauth/token"
    }"#;

    #[test]
    fn the_guides_block_joins_both_ways() {
        let s = Setup::parse(GUIDE).unwrap();
        assert_eq!(s.redirect_uri, "https://app.syncaroo.com/connection");
        let c = s.urls(Join::Collapse, WebhookBase::Api);
        assert_eq!(c.webhook, "https://yourapp.com/api/update/");
        assert_eq!(
            c.check_connection,
            "https://yourapp.com/api/check_connection/"
        );
        assert_eq!(c.token, "https://yourapp.com/api/oauth/token");
        let l = s.urls(Join::Literal, WebhookBase::Api);
        assert_eq!(l.webhook, "https://yourapp.com/api//update/");
        assert_eq!(
            l.check_connection,
            "https://yourapp.com/api//check_connection/"
        );
        let site = s.urls(Join::Collapse, WebhookBase::Site);
        assert_eq!(site.webhook, "https://yourapp.com/update/");
    }

    #[test]
    fn api_uri_defaults_to_the_site_and_api() {
        let mut v: serde_json::Value = serde_json::from_str(GUIDE).unwrap();
        v.as_object_mut().unwrap().remove("apiUri");
        let s = Setup::parse(&v.to_string()).unwrap();
        assert_eq!(s.api_uri(), "https://yourapp.com/api/");
        let no_slash = join("https://yourapp.com/api", "update", Join::Collapse);
        assert_eq!(no_slash, "https://yourapp.com/api/update");
    }

    #[test]
    fn a_bad_block_is_refused_with_the_field_named() {
        for (field, value, says) in [
            ("authUri", "/api/oauth/authorize", "authUri"),
            ("siteUri", "ftp://yourapp.com", "siteUri"),
            ("yourClientId", " ", "yourClientId"),
        ] {
            let mut v: serde_json::Value = serde_json::from_str(GUIDE).unwrap();
            v[field] = value.into();
            let err = Setup::parse(&v.to_string()).unwrap_err();
            assert!(err.contains(says), "{field}: {err}");
        }
        let mut v: serde_json::Value = serde_json::from_str(GUIDE).unwrap();
        v.as_object_mut().unwrap().remove("authTokenUri");
        assert!(Setup::parse(&v.to_string())
            .unwrap_err()
            .contains("authTokenUri"));
        assert!(Setup::parse("not json").is_err());
    }
}
