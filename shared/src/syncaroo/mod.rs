//! Our side as a client of the Syncaroo API: the OAuth client, the stored
//! credentials, and the token provider every caller of the API goes through.

pub mod data;
pub mod oauth;
pub mod provider;

use crate::error::Error;

pub use oauth::{OAuthError, SyncarooOAuth};
pub use provider::{ProviderError, TokenProvider};
// The credentials records live with their store trait.
pub use crate::store::credentials::{CredentialStatus, NewCredentials, SyncarooCredentials};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_rules() {
        assert!(check_base("https://app.syncaroo.com/api/", false).is_ok());
        assert!(check_base("https://app.syncaroo.com/api", false).is_err());
        assert!(check_base("http://app.syncaroo.com/api/", true).is_err());
        assert!(check_base("http://127.0.0.1:8/api/", true).is_ok());
        assert!(check_base("http://[::1]:8/api/", true).is_ok());
        assert!(check_base("http://127.0.0.1:8/api/", false).is_err());
        assert!(check_base("http://127.0.0.1.evil.com/api/", true).is_err());
        assert!(check_base("http://user@10.0.0.1/api/", true).is_err());
        assert!(check_base("ftp://x/", true).is_err());
    }
}
