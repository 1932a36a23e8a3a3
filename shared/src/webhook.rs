//! Webhooks from Syncaroo: the payload as the guide describes it, and the
//! `hash` profile that verifies it. Webhooks are notifications, never
//! deduplicated: nothing here identifies a delivery.

use crate::crypto;
use crate::error::Error;
use crate::jcs;
use crate::model::ConnectionId;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha512};

/// How the `hash` is computed. The guide says only "an encrypted hash of
/// the data/payload"; our default (docs/PROTOCOL.md, "Webhooks") is lowercase hex
/// HMAC-SHA256, keyed by our client secret, over the RFC 8785 canonical
/// JSON of the body without its `hash` member. Each part is a setting so a
/// real Syncaroo answer can be matched without code changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashProfile {
    pub algorithm: HashAlgorithm,
    pub encoding: HashEncoding,
    pub key: HashKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    HmacSha256,
    HmacSha512,
    /// Unkeyed; only as strong as the bearer token beside it.
    Sha256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashEncoding {
    Hex,
    Base64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKey {
    /// `yourClientSecret`.
    ClientSecret,
    /// A dedicated `webhookHashKey` secret.
    WebhookKey,
}

impl Default for HashProfile {
    fn default() -> Self {
        Self {
            algorithm: HashAlgorithm::HmacSha256,
            encoding: HashEncoding::Hex,
            key: HashKey::ClientSecret,
        }
    }
}

impl HashProfile {
    pub fn parse(algorithm: &str, encoding: &str, key: &str) -> Result<Self, Error> {
        let algorithm = match algorithm {
            "hmac-sha256" => HashAlgorithm::HmacSha256,
            "hmac-sha512" => HashAlgorithm::HmacSha512,
            "sha256" => HashAlgorithm::Sha256,
            other => {
                return Err(Error::Config(format!(
                    "WEBHOOK_HASH_ALGORITHM {other:?}: use hmac-sha256, hmac-sha512 or sha256"
                )))
            }
        };
        let encoding = match encoding {
            "hex" => HashEncoding::Hex,
            "base64" => HashEncoding::Base64,
            other => {
                return Err(Error::Config(format!(
                    "WEBHOOK_HASH_ENCODING {other:?}: use hex or base64"
                )))
            }
        };
        let key = match key {
            "client_secret" => HashKey::ClientSecret,
            "webhook_key" => HashKey::WebhookKey,
            other => {
                return Err(Error::Config(format!(
                    "WEBHOOK_HASH_KEY {other:?}: use client_secret or webhook_key"
                )))
            }
        };
        Ok(Self {
            algorithm,
            encoding,
            key,
        })
    }

    /// The hash of `body` (an object; its `hash` member is ignored).
    pub fn compute(&self, key: &[u8], body: &Map<String, Value>) -> String {
        let mut without = body.clone();
        without.remove("hash");
        let canonical = jcs::canonicalize(&Value::Object(without));
        let digest: Vec<u8> = match self.algorithm {
            HashAlgorithm::HmacSha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
                m.update(canonical.as_bytes());
                m.finalize().into_bytes().to_vec()
            }
            HashAlgorithm::HmacSha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("any key length");
                m.update(canonical.as_bytes());
                m.finalize().into_bytes().to_vec()
            }
            HashAlgorithm::Sha256 => Sha256::digest(canonical.as_bytes()).to_vec(),
        };
        match self.encoding {
            HashEncoding::Hex => crypto::hex(&digest),
            HashEncoding::Base64 => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(digest)
            }
        }
    }

    /// Constant-time check of the body's `hash` (hex compared case-insensitively).
    pub fn verify(&self, key: &[u8], body: &Map<String, Value>) -> Result<(), Error> {
        let sent = match body.get("hash") {
            Some(Value::String(h)) if !h.is_empty() => h,
            Some(_) => {
                return Err(Error::InvalidSignature(
                    "hash must be a non-empty string".into(),
                ))
            }
            None => return Err(Error::InvalidSignature("missing hash".into())),
        };
        let expected = self.compute(key, body);
        let sent = if self.encoding == HashEncoding::Hex {
            sent.to_ascii_lowercase()
        } else {
            sent.clone()
        };
        if crypto::ct_eq(&sent, &expected) {
            Ok(())
        } else {
            Err(Error::InvalidSignature(
                "hash does not match the payload".into(),
            ))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookType {
    Data,
    Status,
}

impl WebhookType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Status => "status",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "data" => Some(Self::Data),
            "status" => Some(Self::Status),
            _ => None,
        }
    }
}

/// A data webhook's `metaData.attributeType`: what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttributeType {
    Locations,
    Resources,
    Rates,
}

impl AttributeType {
    pub const ALL: [Self; 3] = [Self::Locations, Self::Resources, Self::Rates];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Locations => "locations",
            Self::Resources => "resources",
            Self::Rates => "rates",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// What a data webhook announces: an attribute of a location (or of one of
/// its resources) changed, and where to fetch it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataChange {
    pub attribute: AttributeType,
    /// `metaData.apiUrl`, checked against the data bases before use.
    pub api_url: String,
    pub resource_id: Option<String>,
}

/// What a webhook announces, by its `webhookType`.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookKind {
    Data(DataChange),
    /// A location's status changed; `meta` is the webhook's `metaData`.
    Status {
        meta: Map<String, Value>,
    },
}

/// A validated webhook. The whole body is kept (unknown fields included).
#[derive(Debug, Clone)]
pub struct Webhook {
    pub connection_id: ConnectionId,
    pub location_id: String,
    pub kind: WebhookKind,
    pub body: Map<String, Value>,
}

/// ECMAScript's `Number.MAX_SAFE_INTEGER` (2^53 - 1).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The hash covers the body as RFC 8785 reads it: every number a double.
/// Above 2^53 - 1 several integers share one double (9007199254740993
/// canonicalises as 9007199254740992), so a numeric id there could be
/// changed under a valid hash. A numeric id must be a safe integer, whose
/// canonical form is itself; larger ids travel as strings.
fn safe_integer(v: &Value) -> Result<(), Error> {
    match v {
        Value::Number(n) if n.as_u64().is_some_and(|n| n > MAX_SAFE_INTEGER) => {
            Err(Error::InvalidRequest(
                "a numeric id must be a safe integer (at most 9007199254740991): send larger ids as strings".into(),
            ))
        }
        _ => Ok(()),
    }
}

fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() && s.len() <= 128 && !s.chars().any(char::is_control) => {
            Some(s.clone())
        }
        Value::Number(n) if n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

impl Webhook {
    /// Parses and validates a body: a JSON object with the guide's fields.
    pub fn parse(raw: &[u8]) -> Result<Self, Error> {
        let v: Value = serde_json::from_slice(raw).map_err(|e| {
            Error::InvalidRequest(format!(
                "body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let Value::Object(body) = v else {
            return Err(Error::InvalidRequest("body must be a JSON object".into()));
        };
        for id in [
            body.get("connectionId"),
            body.get("locationId"),
            body.get("metaData").and_then(|m| m.get("resourceId")),
        ]
        .into_iter()
        .flatten()
        {
            safe_integer(id)?;
        }
        let connection_id: ConnectionId = body
            .get("connectionId")
            .cloned()
            .ok_or_else(|| Error::InvalidRequest("missing connectionId".into()))
            .and_then(|v| {
                serde_json::from_value(v)
                    .map_err(|_| Error::InvalidRequest("connectionId is not a valid id".into()))
            })?;
        let webhook_type = body
            .get("webhookType")
            .and_then(Value::as_str)
            .and_then(WebhookType::parse)
            .ok_or_else(|| {
                Error::InvalidRequest("webhookType must be \"data\" or \"status\"".into())
            })?;
        let location_id = body
            .get("locationId")
            .and_then(id_string)
            .ok_or_else(|| Error::InvalidRequest("locationId must be a non-empty id".into()))?;
        let meta = match body.get("metaData") {
            Some(Value::Object(m)) => m,
            _ => return Err(Error::InvalidRequest("metaData must be an object".into())),
        };
        let kind = match webhook_type {
            WebhookType::Data => WebhookKind::Data(data_meta(meta)?),
            WebhookType::Status => WebhookKind::Status { meta: meta.clone() },
        };
        Ok(Self {
            connection_id,
            location_id,
            kind,
            body,
        })
    }

    pub fn webhook_type(&self) -> WebhookType {
        match self.kind {
            WebhookKind::Data(_) => WebhookType::Data,
            WebhookKind::Status { .. } => WebhookType::Status,
        }
    }

    /// The body without `hash`, as stored.
    pub fn stored_payload(&self) -> String {
        let mut without = self.body.clone();
        without.remove("hash");
        Value::Object(without).to_string()
    }
}

/// A data webhook's `metaData`: its attribute type, resource id (if any)
/// and `apiUrl`, each checked.
fn data_meta(meta: &serde_json::Map<String, Value>) -> Result<DataChange, Error> {
    let attribute = meta
        .get("attributeType")
        .and_then(Value::as_str)
        .and_then(AttributeType::parse)
        .ok_or_else(|| {
            Error::InvalidRequest(
                "metaData.attributeType must be locations, resources or rates".into(),
            )
        })?;
    let api_url = match meta.get("apiUrl").and_then(Value::as_str) {
        Some(u) if !u.is_empty() && u.len() <= 2048 => u.to_string(),
        _ => {
            return Err(Error::InvalidRequest(
                "metaData.apiUrl must be a URL".into(),
            ))
        }
    };
    let resource_id = match meta.get("resourceId") {
        None | Some(Value::Null) => None,
        Some(v) => Some(id_string(v).ok_or_else(|| {
            Error::InvalidRequest("metaData.resourceId is not a valid id".into())
        })?),
    };
    Ok(DataChange {
        attribute,
        api_url,
        resource_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn default_profile_is_hex_hmac_sha256_over_jcs_without_hash() {
        let b = body(
            json!({"webhookType": "status", "connectionId": 99, "locationId": "1198", "metaData": {}, "hash": "x"}),
        );
        let h = HashProfile::default().compute(b"secret", &b);
        // Independently: HMAC-SHA256("secret", canonical JSON without hash).
        let canonical =
            r#"{"connectionId":99,"locationId":"1198","metaData":{},"webhookType":"status"}"#;
        let mut m = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        m.update(canonical.as_bytes());
        assert_eq!(h, crypto::hex(&m.finalize().into_bytes()));
        let mut signed = b.clone();
        signed.insert("hash".into(), Value::String(h.to_uppercase()));
        assert!(
            HashProfile::default().verify(b"secret", &signed).is_ok(),
            "hex is case-insensitive"
        );
        assert!(HashProfile::default().verify(b"other", &signed).is_err());
        signed.insert("locationId".into(), json!("1199"));
        assert!(
            HashProfile::default().verify(b"secret", &signed).is_err(),
            "tampered"
        );
        signed.remove("hash");
        assert!(matches!(
            HashProfile::default().verify(b"secret", &signed),
            Err(Error::InvalidSignature(_))
        ));
    }

    #[test]
    fn profiles_parse_and_differ() {
        let p = HashProfile::parse("hmac-sha512", "base64", "webhook_key").unwrap();
        let b = body(json!({"a": 1}));
        assert_ne!(
            p.compute(b"k", &b),
            HashProfile::default().compute(b"k", &b)
        );
        assert!(HashProfile::parse("md5", "hex", "client_secret").is_err());
    }

    #[test]
    fn parse_validates_the_guides_fields_and_keeps_unknown_ones() {
        let ok = json!({"connectionId": 99, "webhookType": "data", "locationId": "1198",
            "metaData": {"resourceId": "19284", "attributeType": "resources", "resourceType": "meeting-room",
                         "apiUrl": "https://app.syncaroo.com/api/x", "extra": true}, "future": 1, "hash": "h"});
        let w = Webhook::parse(ok.to_string().as_bytes()).unwrap();
        assert_eq!(
            w.kind,
            WebhookKind::Data(DataChange {
                attribute: AttributeType::Resources,
                api_url: "https://app.syncaroo.com/api/x".into(),
                resource_id: Some("19284".into()),
            })
        );
        assert!(w.body.contains_key("future"));
        let bad = [
            "not json",
            "[]",
            r#"{"webhookType":"data"}"#,
            r#"{"connectionId":99,"webhookType":"push","locationId":"1","metaData":{}}"#,
            r#"{"connectionId":99,"webhookType":"data","locationId":"1","metaData":{"attributeType":"prices","apiUrl":"https://x/"}}"#,
            r#"{"connectionId":99,"webhookType":"data","locationId":"1","metaData":{"attributeType":"rates"}}"#,
            r#"{"connectionId":99,"webhookType":"status","locationId":"","metaData":{}}"#,
            r#"{"connectionId":99,"webhookType":"status","locationId":"1","metaData":"x"}"#,
            r#"{"connectionId":-4,"webhookType":"status","locationId":"1","metaData":{}}"#,
            // Not safe integers (2^53 and above): refused, not rounded.
            r#"{"connectionId":9007199254740992,"webhookType":"status","locationId":"1","metaData":{}}"#,
            r#"{"connectionId":99,"webhookType":"status","locationId":9007199254740993,"metaData":{}}"#,
            r#"{"connectionId":99,"webhookType":"data","locationId":"1","metaData":{"attributeType":"rates","apiUrl":"https://x/","resourceId":18446744073709551615}}"#,
        ];
        for b in bad {
            assert!(
                matches!(Webhook::parse(b.as_bytes()), Err(Error::InvalidRequest(_))),
                "{b}"
            );
        }
    }
}
