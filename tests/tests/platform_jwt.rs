//! Platform login without a shared key: authorize accepts the platform's
//! session as an RS256 or ES256 JWT from its identity provider, verified
//! against a JWKS served on loopback. Keys are made here (ES256 by ring,
//! RS256 by the openssl command), tokens signed by the jsonwebtoken crate;
//! every bad variant is sent to login.

use base64::Engine;
use bytes::Bytes;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use syncaroo_shared::handlers;
use syncaroo_shared::http_util::Response;
use syncaroo_shared::store::MemoryStore;
use syncaroo_shared::Config;
use syncaroo_tests::{request, TestApp, EVENTS_NOW};

const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_test";
const AUDIENCE: &str = "platform-app-client";
const COOKIE: &str = "platform_id";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

struct EcKey {
    pkcs8: Vec<u8>,
    jwk: Value,
}

fn ec_key(kid: &str) -> EcKey {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    assert_eq!((point.len(), point[0]), (65, 4), "uncompressed P-256 point");
    EcKey {
        pkcs8: pkcs8.as_ref().to_vec(),
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                    "x": b64(&point[1..33]), "y": b64(&point[33..])}),
    }
}

struct RsaKey {
    pkcs1_der: Vec<u8>,
    public_pem: Vec<u8>,
    jwk: Value,
}

/// An RSA key from the openssl command (2048 bits).
fn rsa_key(kid: &str) -> RsaKey {
    let dir = std::env::temp_dir().join(format!("jwt-{}-{kid}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = dir.join("key.pem");
    let run = |args: &[&str]| syncaroo_tests::openssl(&dir, args);
    run(&["genrsa", "-out", pem.to_str().unwrap(), "2048"]);
    let der = dir.join("key.der");
    let p = pem.to_str().unwrap();
    run(&[
        "rsa",
        "-in",
        p,
        "-traditional",
        "-outform",
        "DER",
        "-out",
        der.to_str().unwrap(),
    ]);
    let modulus = String::from_utf8(run(&["rsa", "-in", p, "-noout", "-modulus"])).unwrap();
    let hex = modulus.trim().trim_start_matches("Modulus=");
    let n: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let public_pem = run(&["rsa", "-in", p, "-pubout"]);
    let pkcs1_der = std::fs::read(der).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    RsaKey {
        pkcs1_der,
        public_pem,
        jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(&n), "e": "AQAB"}),
    }
}

/// A JWKS endpoint on loopback whose key set can be changed; counts reads.
async fn jwks_server(keys: Arc<Mutex<Vec<Value>>>, reads: Arc<AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    syncaroo_sim::server::spawn(
        listener,
        syncaroo_sim::server::handler(move |_req| {
            let (keys, reads) = (keys.clone(), reads.clone());
            async move {
                reads.fetch_add(1, Ordering::SeqCst);
                let body = json!({ "keys": *keys.lock().unwrap() }).to_string();
                http::Response::builder()
                    .header("content-type", "application/json")
                    .body(Bytes::from(body))
                    .unwrap()
            }
        }),
    );
    url
}

fn app(jwks: &str) -> TestApp {
    let jwks = jwks.to_string();
    let config = Config::from_lookup(|k| match k {
        "LOGIN_URL" => Some("https://yourapp.com/login".into()),
        "PUBLIC_BASE_URL" => Some("https://bridge.example.com".into()),
        "PLATFORM_JWKS_URL" => Some(jwks.clone()),
        "PLATFORM_JWT_ISSUER" => Some(ISSUER.into()),
        "PLATFORM_JWT_AUDIENCE" => Some(AUDIENCE.into()),
        "PLATFORM_JWT_COOKIE" => Some(COOKIE.into()),
        "SYNCAROO_ALLOW_LOOPBACK" => Some("true".into()),
        _ => None,
    })
    .unwrap();
    TestApp::with(Arc::new(MemoryStore::new()), config)
}

fn claims(now: i64) -> Value {
    json!({"sub": "1", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, "token_use": "id"})
}

fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(&h, claims, key).unwrap()
}

async fn authorize(t: &TestApp, jwt: &str) -> Response {
    let q = syncaroo_tests::event_json("authorize-consent.json")["rawQueryString"]
        .as_str()
        .unwrap()
        .to_string();
    handlers::authorize(
        &t.app,
        request(
            "GET",
            &format!("/api/oauth/authorize?{q}"),
            &[("cookie", &format!("{COOKIE}={jwt}"))],
            Bytes::new(),
        ),
    )
    .await
}

fn shows_consent(resp: &Response) -> bool {
    resp.status() == 200
        && syncaroo_tests::browser::parse_form(&syncaroo_tests::body_text(resp)).is_some()
}

fn sent_to_login(resp: &Response) -> bool {
    resp.status() == 302 && syncaroo_tests::location(resp).starts_with("https://yourapp.com/login?")
}

#[tokio::test]
async fn a_jwks_signed_platform_session_gets_the_consent_page_and_bad_ones_go_to_login() {
    let ec = ec_key("ec-1");
    let rsa = rsa_key("rsa-1");
    let keys = Arc::new(Mutex::new(vec![ec.jwk.clone(), rsa.jwk.clone()]));
    let reads = Arc::new(AtomicUsize::new(0));
    let url = jwks_server(keys.clone(), reads.clone()).await;
    let t = app(&url);
    let now = EVENTS_NOW;
    let es = EncodingKey::from_ec_der(&ec.pkcs8);
    let rs = EncodingKey::from_rsa_der(&rsa.pkcs1_der);

    // Both algorithms, each with its own key.
    let good_es = sign(Algorithm::ES256, "ec-1", &es, &claims(now));
    let page = authorize(&t, &good_es).await;
    assert!(shows_consent(&page), "{}", syncaroo_tests::body_text(&page));
    let good_rs = sign(Algorithm::RS256, "rsa-1", &rs, &claims(now));
    assert!(shows_consent(&authorize(&t, &good_rs).await));
    assert_eq!(
        reads.load(Ordering::SeqCst),
        1,
        "the JWKS is read once and cached"
    );

    // The consent POST carries the same session and issues a code.
    let cookie = format!("{COOKIE}={good_es}");
    let resp = handlers::authorize(
        &t.app,
        syncaroo_tests::consent_post(&page, &cookie, "authorize"),
    )
    .await;
    assert_eq!(resp.status(), 302);
    let back = syncaroo_tests::location(&resp);
    assert!(
        back.starts_with("https://app.syncaroo.com/connection?"),
        "{back}"
    );
    assert!(
        !syncaroo_tests::query_of(&back)["code"].is_empty(),
        "{back}"
    );

    // Every bad variant is sent to login.
    let other = ec_key("ec-1");
    let mut wrong_iss = claims(now);
    wrong_iss["iss"] = json!("https://evil.example.com");
    let mut wrong_aud = claims(now);
    wrong_aud["aud"] = json!("another-client");
    let mut expired = claims(now);
    expired["exp"] = json!(now - 120);
    let mut no_sub = claims(now);
    no_sub.as_object_mut().unwrap().remove("sub");
    let hs_with_public_key = sign(
        Algorithm::HS256,
        "rsa-1",
        &EncodingKey::from_secret(&rsa.public_pem),
        &claims(now),
    );
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","kid":"ec-1"}"#),
        b64(claims(now).to_string().as_bytes())
    );
    let bad = [
        (
            "bad signature",
            sign(
                Algorithm::ES256,
                "ec-1",
                &EncodingKey::from_ec_der(&other.pkcs8),
                &claims(now),
            ),
        ),
        (
            "wrong issuer",
            sign(Algorithm::ES256, "ec-1", &es, &wrong_iss),
        ),
        (
            "wrong audience",
            sign(Algorithm::ES256, "ec-1", &es, &wrong_aud),
        ),
        ("expired", sign(Algorithm::ES256, "ec-1", &es, &expired)),
        (
            "no user claim",
            sign(Algorithm::ES256, "ec-1", &es, &no_sub),
        ),
        (
            "unknown kid",
            sign(Algorithm::ES256, "ec-9", &es, &claims(now)),
        ),
        ("HS256 keyed with the RSA public key", hs_with_public_key),
        ("alg none", none),
        (
            "RS256 under the EC key's kid",
            sign(Algorithm::RS256, "ec-1", &rs, &claims(now)),
        ),
        ("not a JWT", "garbage".to_string()),
    ];
    for (what, jwt) in &bad {
        let resp = authorize(&t, jwt).await;
        assert!(
            sent_to_login(&resp),
            "{what}: {} {}",
            resp.status(),
            syncaroo_tests::body_text(&resp)
        );
    }
    // An unknown kid reads the JWKS again only if the last read is 30 s
    // old (a stream of made-up kids cannot hammer the provider): not yet.
    assert_eq!(reads.load(Ordering::SeqCst), 1);

    // Rotation: the provider publishes a new key; after 30 s its tokens
    // are accepted without any change here.
    let next = ec_key("ec-2");
    keys.lock().unwrap().push(next.jwk.clone());
    t.clock.advance(31);
    let rotated = sign(
        Algorithm::ES256,
        "ec-2",
        &EncodingKey::from_ec_der(&next.pkcs8),
        &claims(now + 31),
    );
    assert!(shows_consent(&authorize(&t, &rotated).await));
    assert_eq!(reads.load(Ordering::SeqCst), 2);
}

#[test]
fn a_jwks_url_needs_an_issuer_and_an_audience_and_https() {
    let cfg = |url: &str, iss: Option<&str>| {
        let (url, iss) = (url.to_string(), iss.map(str::to_string));
        Config::from_lookup(move |k| match k {
            "PLATFORM_JWKS_URL" => Some(url.clone()),
            "PLATFORM_JWT_ISSUER" => iss.clone(),
            "PLATFORM_JWT_AUDIENCE" => Some(AUDIENCE.into()),
            _ => None,
        })
    };
    assert!(cfg("https://idp.example.com/jwks.json", Some(ISSUER)).is_ok());
    let e = cfg("https://idp.example.com/jwks.json", None).unwrap_err();
    assert!(e.to_string().contains("PLATFORM_JWT_ISSUER"), "{e}");
    let e = cfg("http://idp.example.com/jwks.json", Some(ISSUER)).unwrap_err();
    assert!(e.to_string().contains("https"), "{e}");
}
