//! Our side as a client of the Syncaroo API: the OAuth client, the stored
//! credentials, and the token provider every caller of the API goes through.

pub mod data;
pub mod oauth;
pub mod provider;

pub use oauth::{OAuthError, SyncarooOAuth};
pub use provider::{CredentialEvents, ProviderError, TokenProvider};
// URL rules and the credentials records live in their own modules.
pub use crate::store::credentials::{CredentialStatus, NewCredentials, SyncarooCredentials};
pub use crate::url_rules::{check_base, host_of, is_loopback_host};

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
