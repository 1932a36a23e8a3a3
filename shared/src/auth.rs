//! Who is calling. Bearer: the access tokens we issued, which Syncaroo
//! presents to check_connection and with every webhook. HTTP Basic: the
//! token endpoint's client credentials and the admin key. Tokens are looked
//! up only by their keyed hash ([`BridgeSecrets::token_hash`]).

use crate::error::Error;
use crate::http_util::{header, Request};
use crate::model::{ConnectionId, TokenKind, TokenRecord};
use crate::secrets::BridgeSecrets;
use crate::store::GrantStore;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// `Authorization: Bearer <token>`, scheme case-insensitive.
pub fn bearer_token(req: &Request) -> Result<&str, Error> {
    let v = header(req, "authorization")
        .ok_or_else(|| Error::InvalidToken("missing Authorization: Bearer header".into()))?;
    match v.split_once(' ') {
        Some((scheme, tok)) if scheme.eq_ignore_ascii_case("bearer") && !tok.trim().is_empty() => {
            Ok(tok.trim())
        }
        _ => Err(Error::InvalidToken(
            "Authorization header is not a Bearer token".into(),
        )),
    }
}

/// What an `Authorization: Basic` header holds (RFC 7617).
#[derive(Debug, PartialEq, Eq)]
pub enum Basic {
    /// No Basic header (none at all, or another scheme).
    Absent,
    /// A Basic header that is not base64 of UTF-8 `user:password`.
    Malformed,
    Credentials {
        user: String,
        password: String,
    },
}

pub fn basic_credentials<B>(req: &http::Request<B>) -> Basic {
    let Some(b64) = header(req, "authorization").and_then(|h| {
        let (scheme, rest) = h.split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
    }) else {
        return Basic::Absent;
    };
    let raw = STANDARD
        .decode(b64)
        .ok()
        .and_then(|r| String::from_utf8(r).ok());
    match raw.as_deref().and_then(|r| r.split_once(':')) {
        Some((user, password)) => Basic::Credentials {
            user: user.to_string(),
            password: password.to_string(),
        },
        None => Basic::Malformed,
    }
}

/// The live access token `raw` is, presented for `connection`, or why not.
/// The token and the connection are read in one consistent request, so a
/// revocation refuses every token of the connection at once, whatever
/// reached the token items (the connection records which families it ended).
/// A live token of another connection is [`Error::Forbidden`].
pub async fn access_token(
    store: &dyn GrantStore,
    secrets: &BridgeSecrets,
    raw: &str,
    connection: &ConnectionId,
    now: i64,
) -> Result<TokenRecord, Error> {
    let invalid = || Error::InvalidToken("access token is not valid".into());
    let revoked = || Error::InvalidToken("access token has been revoked".into());
    let (t, conn) = store
        .get_token_and_connection(&secrets.token_hash(raw), connection)
        .await?;
    let t = t.ok_or_else(invalid)?;
    if t.kind != TokenKind::Access {
        return Err(invalid());
    }
    if t.revoked {
        return Err(revoked());
    }
    if t.expires_at <= now {
        return Err(Error::InvalidToken("access token has expired".into()));
    }
    if &t.connection_id != connection {
        return Err(Error::Forbidden(
            "access token was not issued for this connectionId".into(),
        ));
    }
    match conn {
        Some(c) if c.user_id == t.user_id && c.accepts(&t.family) => Ok(t),
        _ => Err(revoked()),
    }
}

/// The request's bearer token, live and issued for `connection`.
pub async fn bearer_for(
    store: &dyn GrantStore,
    secrets: &BridgeSecrets,
    req: &Request,
    connection: &ConnectionId,
    now: i64,
) -> Result<TokenRecord, Error> {
    match access_token(store, secrets, bearer_token(req)?, connection, now).await {
        Err(Error::Forbidden(m)) => Err(Error::InvalidToken(m)),
        other => other,
    }
}

/// The AWS principal API Gateway verified for an `AWS_IAM`-authorized
/// route (its ARN), put in the request's extensions by the Lambda edge
/// from the request context, never from anything the client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamCaller(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    fn req(auth: Option<&str>) -> Request {
        let mut b = http::Request::builder().uri("/x");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(bytes::Bytes::new()).unwrap()
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_trimmed() {
        assert_eq!(bearer_token(&req(Some("bearer  tok "))).unwrap(), "tok");
        assert!(bearer_token(&req(Some("Basic abc"))).is_err());
        assert!(bearer_token(&req(Some("Bearer "))).is_err());
        assert!(bearer_token(&req(None)).is_err());
    }

    #[test]
    fn basic_credentials_per_rfc_7617() {
        // RFC 7617 section 2's example: Aladdin / open sesame.
        assert_eq!(
            basic_credentials(&req(Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="))),
            Basic::Credentials {
                user: "Aladdin".into(),
                password: "open sesame".into()
            }
        );
        // The password may hold colons; the user may not.
        let b64 = STANDARD.encode("admin:a:b");
        assert_eq!(
            basic_credentials(&req(Some(&format!("basic {b64}")))),
            Basic::Credentials {
                user: "admin".into(),
                password: "a:b".into()
            }
        );
        assert_eq!(basic_credentials(&req(None)), Basic::Absent);
        assert_eq!(basic_credentials(&req(Some("Bearer x"))), Basic::Absent);
        assert_eq!(basic_credentials(&req(Some("Basic !!!"))), Basic::Malformed);
        let no_colon = STANDARD.encode("admin");
        assert_eq!(
            basic_credentials(&req(Some(&format!("Basic {no_colon}")))),
            Basic::Malformed
        );
    }
}
