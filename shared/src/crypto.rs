//! Random credentials, keyed hashes, constant-time comparison and the HS256
//! session token. Everything that touches a secret value lives here.

use crate::error::Error;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of randomness in every code and token: 256 bits.
pub const SECRET_BYTES: usize = 32;

pub fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    B64.encode(buf)
}

/// HMAC-SHA256 of `value` under `key`, lowercase hex. Codes and tokens are
/// stored only in this form, so a read of the table yields nothing usable.
pub fn keyed_hash(key: &[u8], value: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(value.as_bytes());
    hex(&mac.finalize().into_bytes())
}

pub fn hmac_bytes(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        // Length-prefix each part so ("ab","c") and ("a","bc") differ.
        mac.update(&(p.len() as u64).to_be_bytes());
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// Compares two secrets without leaking where they differ, nor (by hashing
/// first) how long the expected one is.
pub fn ct_eq(a: &str, b: &str) -> bool {
    let ha = Sha256::digest(a.as_bytes());
    let hb = Sha256::digest(b.as_bytes());
    ha.ct_eq(&hb).into()
}

/// A credential with a readable type prefix and an optional public payload:
/// `<prefix><b64url(json payload)>.<b64url(256 random bits)>` or, without
/// payload, `<prefix><b64url(random)>`. The payload lets one DynamoDB
/// transaction redeem a code or rotate a refresh token without reading it
/// first; it is trusted only because the keyed hash of the whole string must
/// already be in the store.
pub fn mint(prefix: &str, payload: Option<&impl Serialize>) -> String {
    assemble(prefix, payload, random_b64(SECRET_BYTES))
}

/// Like [`mint`], with the secret part derived from `seed` under `key`
/// (HMAC-SHA256, domain-separated by `prefix`): the same seed always gives
/// the same credential, and nobody without `key` can compute it. A refresh
/// token repeated within the grace window gets the very same successors.
pub fn mint_derived(
    prefix: &str,
    payload: Option<&impl Serialize>,
    key: &[u8],
    seed: &str,
) -> String {
    let secret = hmac_bytes(key, &[b"successor", prefix.as_bytes(), seed.as_bytes()]);
    assemble(prefix, payload, B64.encode(secret))
}

fn assemble(prefix: &str, payload: Option<&impl Serialize>, random: String) -> String {
    match payload {
        Some(p) => {
            let json = serde_json::to_vec(p).expect("payload serializes");
            format!("{prefix}{}.{random}", B64.encode(json))
        }
        None => format!("{prefix}{random}"),
    }
}

/// Reads the payload of a credential minted by [`mint`]. Says nothing about
/// whether the credential is genuine: that is the store's hash lookup.
pub fn peek_payload<T: DeserializeOwned>(prefix: &str, value: &str) -> Option<T> {
    let rest = value.strip_prefix(prefix)?;
    let (payload, random) = rest.split_once('.')?;
    if random.len() < 43 || payload.len() > 2048 {
        return None;
    }
    serde_json::from_slice(&B64.decode(payload).ok()?).ok()
}

/// Claims of the platform session cookie.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionClaims {
    /// The platform's user id.
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
}

/// Signs an HS256 JWT (jsonwebtoken, as the platform's tokens are
/// verified). The platform mints these with any JWT library.
pub fn sign_jwt(key: &[u8], claims: &impl Serialize) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .expect("claims serialize and HS256 takes any key")
}

/// Verifies an HS256 JWT: HS256 only (no `none`, no algorithm confusion),
/// the signature checked by jsonwebtoken, `exp` in the future on the
/// handlers' clock, and a `sub`.
pub fn verify_session(key: &[u8], token: &str, now: i64) -> Result<SessionClaims, Error> {
    let bad = || Error::InvalidToken("session is not valid".into());
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    // `exp` is checked below against the handlers' clock, not the system's.
    v.validate_exp = false;
    v.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<SessionClaims>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(key),
        &v,
    )
    .map_err(|_| bad())?
    .claims;
    if claims.exp <= now || claims.sub.is_empty() {
        return Err(Error::InvalidToken("session has expired".into()));
    }
    Ok(claims)
}

/// A CSRF token for the consent form, bound to the session and to the exact
/// authorization request, so it can be checked without storing anything.
pub fn csrf_token(key: &[u8], session: &SessionClaims, request: &[&str]) -> String {
    let mut parts: Vec<&[u8]> = vec![b"consent-csrf", session.sub.as_bytes()];
    let iat = session.iat.to_be_bytes();
    parts.push(&iat);
    parts.extend(request.iter().map(|s| s.as_bytes()));
    B64.encode(hmac_bytes(key, &parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_values_are_256_bits_and_distinct() {
        let a = random_b64(SECRET_BYTES);
        assert_eq!(B64.decode(&a).unwrap().len(), 32);
        assert_ne!(a, random_b64(SECRET_BYTES));
    }

    #[test]
    fn derived_credentials_repeat_only_for_the_same_seed_and_key() {
        let p = serde_json::json!({"c": 99});
        let a = mint_derived("scb_rt_", Some(&p), b"k", "old-token");
        assert_eq!(a, mint_derived("scb_rt_", Some(&p), b"k", "old-token"));
        assert_ne!(a, mint_derived("scb_rt_", Some(&p), b"k", "other-token"));
        assert_ne!(a, mint_derived("scb_rt_", Some(&p), b"k2", "old-token"));
        assert_ne!(
            mint_derived("scb_at_", None::<&()>, b"k", "old-token"),
            mint_derived("scb_rt_", None::<&()>, b"k", "old-token"),
            "access and refresh successors differ"
        );
        let back: serde_json::Value = peek_payload("scb_rt_", &a).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn keyed_hash_depends_on_key() {
        assert_ne!(keyed_hash(b"k1", "v"), keyed_hash(b"k2", "v"));
        assert_eq!(keyed_hash(b"k1", "v").len(), 64);
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
    }

    #[test]
    fn mint_and_peek_roundtrip() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct P {
            c: String,
        }
        let t = mint("scc_", Some(&P { c: "99".into() }));
        assert!(t.starts_with("scc_"));
        assert_eq!(peek_payload::<P>("scc_", &t), Some(P { c: "99".into() }));
        assert_eq!(peek_payload::<P>("scr_", &t), None);
        assert_eq!(peek_payload::<P>("scc_", "scc_garbage"), None);
        let opaque = mint("sca_", None::<&()>);
        assert_eq!(opaque.len(), 4 + 43);
    }

    #[test]
    fn jwt_roundtrip_and_rejections() {
        let c = SessionClaims {
            sub: "1".into(),
            iat: 100,
            exp: 200,
        };
        let t = sign_jwt(b"key", &c);
        assert_eq!(verify_session(b"key", &t, 150).unwrap(), c);
        assert!(verify_session(b"other", &t, 150).is_err());
        assert!(verify_session(b"key", &t, 200).is_err());
        // alg=none with no signature is refused.
        let none = format!(
            "{}.{}.",
            B64.encode(br#"{"alg":"none"}"#),
            t.split('.').nth(1).unwrap()
        );
        assert!(verify_session(b"key", &none, 150).is_err());
        // A tampered body breaks the signature.
        let forged = format!(
            "{}.{}.{}",
            t.split('.').next().unwrap(),
            B64.encode(br#"{"sub":"2","iat":100,"exp":200}"#),
            t.split('.').nth(2).unwrap()
        );
        assert!(verify_session(b"key", &forged, 150).is_err());
        assert!(verify_session(b"key", "a.b", 150).is_err());
    }

    #[test]
    fn csrf_is_bound_to_session_and_request() {
        let s = SessionClaims {
            sub: "1".into(),
            iat: 1,
            exp: 2,
        };
        let t = csrf_token(b"k", &s, &["99", "uri"]);
        assert_eq!(t, csrf_token(b"k", &s, &["99", "uri"]));
        assert_ne!(t, csrf_token(b"k", &s, &["98", "uri"]));
        let other = SessionClaims {
            sub: "2".into(),
            ..s
        };
        assert_ne!(t, csrf_token(b"k", &other, &["99", "uri"]));
    }
}
