//! Rules for the URLs we are configured with: the Syncaroo API base and our
//! own public base. Apart from both `config` (which checks its settings
//! with them) and the modules that use the URLs, so neither imports the
//! other.

use crate::error::Error;

/// Checks a configured Syncaroo base URL: https, or http on a loopback
/// host when the local profile allows it; ends with `/`.
pub fn check_base(base: &str, allow_loopback: bool) -> Result<(), Error> {
    check_base_named("SYNCAROO_API_BASE", base, allow_loopback)
}

fn check_base_named(setting: &str, base: &str, allow_loopback: bool) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::Config(format!("{setting} {base:?} {why}")));
    if !base.ends_with('/') {
        return bad("must end with /");
    }
    if base.starts_with("https://") {
        return Ok(());
    }
    if let Some(rest) = base.strip_prefix("http://") {
        let host = host_of(rest);
        if allow_loopback && is_loopback_host(host) {
            return Ok(());
        }
        return bad("must be https (http only on a loopback host with SYNCAROO_ALLOW_LOOPBACK)");
    }
    bad("must be an https URL")
}

/// The host of `authority/path...` (after the scheme), without port.
pub fn host_of(after_scheme: &str) -> &str {
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks a configured `PUBLIC_BASE_URL`: absolute http(s), no query or
/// fragment.
pub fn check_base_url(raw: &str) -> Result<(), Error> {
    let bad = || {
        Error::Config(format!(
            "PUBLIC_BASE_URL must be an absolute https:// URL without query or fragment, got {raw:?}"
        ))
    };
    let u = url::Url::parse(raw).map_err(|_| bad())?;
    if !matches!(u.scheme(), "https" | "http")
        || u.host_str().is_none()
        || u.query().is_some()
        || u.fragment().is_some()
        || !u.username().is_empty()
    {
        return Err(bad());
    }
    Ok(())
}

/// The prefixes the data API's URLs (`apiUrl`, `pages.next`) must fall
/// under (`SYNCAROO_DATA_BASES`): scheme, host, port and path prefix each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataBases(Vec<url::Url>);

/// The guide's `apiUrl` example is on api.syncaroo.com; its OAuth endpoints
/// are under app.syncaroo.com/api/.
pub const DEFAULT_DATA_BASES: &str = "https://api.syncaroo.com/,https://app.syncaroo.com/api/";

impl DataBases {
    /// Comma-separated prefixes, each an https base ending in `/` (http on
    /// a loopback host when `allow_loopback`).
    pub fn parse(list: &str, allow_loopback: bool) -> Result<Self, Error> {
        let mut out = Vec::new();
        for base in list.split(',').map(str::trim).filter(|b| !b.is_empty()) {
            check_base_named("SYNCAROO_DATA_BASES entry", base, allow_loopback)?;
            let u = url::Url::parse(base).map_err(|_| {
                Error::Config(format!("SYNCAROO_DATA_BASES entry {base:?} is not a URL"))
            })?;
            if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() {
                return Err(Error::Config(format!(
                    "SYNCAROO_DATA_BASES entry {base:?}: scheme, host and path only"
                )));
            }
            out.push(u);
        }
        if out.is_empty() {
            return Err(Error::Config("SYNCAROO_DATA_BASES names no prefix".into()));
        }
        Ok(Self(out))
    }

    /// `raw` as the URL we will call, or why not. Parsed as a browser
    /// would (the `url` crate: dot segments, also `%2e%2e`, resolved; host
    /// lowercased; default ports dropped), then accepted only when its
    /// scheme, host and port are a prefix's and its path starts with the
    /// prefix's path, and rebuilt from that prefix's origin with the
    /// normalised path and query (no fragment, no credentials).
    pub fn rebuild(&self, raw: &str) -> Result<String, String> {
        if raw
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        {
            return Err("control characters, spaces or backslashes in the URL".into());
        }
        let u = url::Url::parse(raw).map_err(|_| "not an absolute URL".to_string())?;
        if !u.username().is_empty() || u.password().is_some() {
            return Err("credentials in the URL".into());
        }
        let base = self
            .0
            .iter()
            .find(|b| {
                b.scheme() == u.scheme()
                    && b.host() == u.host()
                    && b.port_or_known_default() == u.port_or_known_default()
                    && u.path().starts_with(b.path())
            })
            .ok_or_else(|| {
                format!(
                    "{}://{}{} is not under a configured Syncaroo data API prefix",
                    u.scheme(),
                    u.host_str().unwrap_or(""),
                    u.path()
                )
            })?;
        let tail = &u[url::Position::BeforePath..url::Position::AfterQuery];
        Ok(format!("{}{tail}", base.origin().ascii_serialization()))
    }
}
