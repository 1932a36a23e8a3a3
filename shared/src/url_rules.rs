//! Rules for the URLs we are configured with: the Syncaroo API base and our
//! own public base. Apart from both `config` (which checks its settings
//! with them) and the modules that use the URLs, so neither imports the
//! other.

use crate::error::Error;

/// Checks a configured Syncaroo base URL: https, or http on a loopback
/// host when the local profile allows it; ends with `/`.
pub fn check_base(base: &str, allow_loopback: bool) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::Config(format!("SYNCAROO_API_BASE {why}")));
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
