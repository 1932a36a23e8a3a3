//! One TLS configuration for every outbound HTTPS call this crate makes
//! (the AWS APIs and Syncaroo), built once per process.
//!
//! The trusted roots are Mozilla's, compiled in (`webpki-roots`): they are
//! ready-made trust anchors, so building the configuration reads no file and
//! parses no certificate. Loading the system store instead scanned
//! `/etc/ssl/certs` (a bundle plus ~150 files, each parsed) on every cold
//! start and was the largest share of our init. An operator who needs a
//! private CA (a TLS-inspecting proxy, say) sets `SSL_CERT_FILE` to a PEM
//! bundle; then exactly that bundle is trusted, as with OpenSSL.
//!
//! Crypto is `ring`: small, no CPU-jitter entropy collection at start-up,
//! nothing to configure at build time.

use std::sync::{Arc, OnceLock};

/// The variable naming a PEM bundle to trust instead of the built-in roots.
pub const CERT_FILE_VAR: &str = "SSL_CERT_FILE";

static CONFIG: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();

/// The process-wide client configuration (roots as described above). An
/// unreadable or empty `SSL_CERT_FILE` is an error naming the file, so a
/// misconfigured function fails its init instead of every request.
pub fn client_config() -> Result<rustls::ClientConfig, String> {
    CONFIG
        .get_or_init(|| build(std::env::var(CERT_FILE_VAR).ok().as_deref()))
        .clone()
}

/// A configuration trusting the PEM file at `cert_file`, or the built-in
/// roots when it is `None` or empty.
pub fn build(cert_file: Option<&str>) -> Result<rustls::ClientConfig, String> {
    let roots = match cert_file.filter(|f| !f.is_empty()) {
        None => rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
        Some(path) => roots_from_pem(path)?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn roots_from_pem(path: &str) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{CERT_FILE_VAR}={path}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{CERT_FILE_VAR}={path}: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "{CERT_FILE_VAR}={path}: no usable certificate in the file"
        ));
    }
    Ok(roots)
}

/// A reqwest client builder that uses [`client_config`]: every HTTP client
/// in the workspace starts here. Panics only if `SSL_CERT_FILE` is unusable,
/// which [`crate::App::from_aws_env`] reports as an init error first.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    let tls = client_config().unwrap_or_else(|e| panic!("TLS configuration: {e}"));
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_roots_need_no_file() {
        let c = build(None).expect("built-in roots");
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
        assert!(c.crypto_provider().cipher_suites.len() >= 3);
        assert!(build(Some("")).is_ok(), "empty means unset");
    }

    #[test]
    fn a_bad_cert_file_is_a_clear_error() {
        let missing = build(Some("/nonexistent/bundle.pem")).unwrap_err();
        assert!(
            missing.contains("SSL_CERT_FILE=/nonexistent/bundle.pem"),
            "{missing}"
        );
        let dir = std::env::temp_dir().join(format!("tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = build(Some(empty.to_str().unwrap())).unwrap_err();
        assert!(err.contains("no usable certificate"), "{err}");
    }

    #[test]
    fn a_pem_bundle_replaces_the_built_in_roots() {
        let one = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/isrg-root-x1.pem");
        assert_eq!(
            roots_from_pem(one).unwrap().len(),
            1,
            "only the file's root"
        );
        assert!(build(Some(one)).is_ok());
    }
}
