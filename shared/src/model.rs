//! The protocol's nouns, in the guide's words.

use crate::error::Error;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// Syncaroo's identifier for one integration. It arrives as a JSON number
/// (`"connectionId": 99`) or as a query-string string; both are stored in one
/// canonical string form, and a numeric id is written back as a number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(String);

impl ConnectionId {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let raw = raw.trim();
        let ok = !raw.is_empty()
            && raw.len() <= 128
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        if !ok {
            return Err(Error::InvalidRequest(
                "connectionId must be 1-128 characters of letters, digits, - _ . :".into(),
            ));
        }
        // "0099" and "99" are the same connection when it is numeric.
        if raw.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = raw.parse::<u64>() {
                return Ok(Self(n.to_string()));
            }
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn as_number(&self) -> Option<u64> {
        if self.0.bytes().all(|b| b.is_ascii_digit()) {
            self.0.parse().ok()
        } else {
            None
        }
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ConnectionId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.as_number() {
            Some(n) => s.serialize_u64(n),
            None => s.serialize_str(&self.0),
        }
    }
}

impl<'de> Deserialize<'de> for ConnectionId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        let s = match Raw::deserialize(d)? {
            Raw::N(n) => n.to_string(),
            Raw::S(s) => s,
        };
        ConnectionId::parse(&s).map_err(|e| serde::de::Error::custom(e.description()))
    }
}

/// The platform's own user identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        if raw.is_empty() || raw.len() > 128 || raw.chars().any(|c| c.is_control()) {
            return Err(Error::InvalidRequest(
                "userId must be 1-128 printable characters".into(),
            ));
        }
        Ok(Self(raw.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A listing's status, as the guide enumerates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListingStatus {
    Draft,
    Active,
    Private,
    Pending,
    Deleted,
}

/// A bookable resource inside a location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub status: ListingStatus,
    #[serde(rename = "type")]
    pub resource_type: String,
}

/// A workspace location, exactly as check_connection returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub status: ListingStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
}

impl Location {
    pub fn validate(&self) -> Result<(), Error> {
        let id_ok = |s: &str| !s.is_empty() && s.len() <= 128 && !s.chars().any(char::is_control);
        if !id_ok(&self.id) || self.name.is_empty() {
            return Err(Error::InvalidRequest(format!(
                "location {:?} needs a non-empty ID (<=128 chars) and name",
                self.id
            )));
        }
        for r in &self.resources {
            if !id_ok(&r.id) || r.name.is_empty() || r.resource_type.is_empty() {
                return Err(Error::InvalidRequest(format!(
                    "resource {:?} of location {:?} needs ID, name and type",
                    r.id, self.id
                )));
            }
        }
        Ok(())
    }
}

/// The check_connection body of the guide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckConnectionResponse {
    pub connection_id: ConnectionId,
    pub user_id: UserId,
    pub locations: BTreeMap<String, Location>,
}

/// One user's listings, in the same shape check_connection returns: the
/// import file format (one object, or an array of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserListings {
    pub user_id: UserId,
    pub locations: BTreeMap<String, Location>,
}

impl UserListings {
    /// Parses and validates an import file; nothing is written on error.
    pub fn parse_file(json: &str) -> Result<Vec<UserListings>, Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            Many(Vec<UserListings>),
            One(UserListings),
        }
        let parsed: OneOrMany = serde_json::from_str(json)
            .map_err(|e| Error::InvalidRequest(format!("listings file: {e}")))?;
        let all = match parsed {
            OneOrMany::Many(v) => v,
            OneOrMany::One(u) => vec![u],
        };
        for u in &all {
            validate_locations(&u.locations)?;
        }
        Ok(all)
    }
}

/// Locations keyed by ID (check_connection's shape): each valid, each under
/// its own ID.
pub fn validate_locations(locations: &BTreeMap<String, Location>) -> Result<(), Error> {
    for (key, loc) in locations {
        loc.validate()?;
        if key != &loc.id {
            return Err(Error::InvalidRequest(format!(
                "location key {key:?} differs from its ID {:?}",
                loc.id
            )));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// The user consented; no token has been issued yet.
    Pending,
    /// Syncaroo redeemed the code.
    Authorized,
    /// Syncaroo called check_connection.
    Confirmed,
    /// The platform revoked it: every token of it is refused.
    Revoked,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Authorized => "authorized",
            Self::Confirmed => "confirmed",
            Self::Revoked => "revoked",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "authorized" => Some(Self::Authorized),
            "confirmed" => Some(Self::Confirmed),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: ConnectionId,
    pub user_id: UserId,
    pub client_id: String,
    pub status: ConnectionStatus,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The token families a revocation ended: their tokens are refused for
    /// good, also after a new consent brings the connection back (a new
    /// consent is a new family).
    pub revoked_families: Vec<String>,
    /// Which life of the connection this is: a new random value when it is
    /// created, and again when a consent starts it afresh after a
    /// revocation (empty: created before generations existed). Writes a
    /// webhook's work makes for the connection name the generation they
    /// began under and are refused once it ended (revoked, erased or
    /// started afresh): see [`crate::store::sync::CONNECTION_ENDED`].
    pub generation: String,
}

impl Connection {
    /// Whether a token of `family`, issued for this connection, is still
    /// good: the connection is not revoked, and was not since the family's
    /// consent.
    pub fn accepts(&self, family: &str) -> bool {
        self.status != ConnectionStatus::Revoked
            && !self.revoked_families.iter().any(|f| f == family)
    }
}

/// What a code carries in the clear (see [`crate::crypto::mint`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantPayload {
    /// connection
    pub c: ConnectionId,
    /// user
    pub u: UserId,
    /// token family (one per authorization)
    pub f: String,
}

/// An authorization code, as stored (hash only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCodeRecord {
    pub hash: String,
    pub connection_id: ConnectionId,
    pub user_id: UserId,
    pub client_id: String,
    pub redirect_uri: String,
    pub family: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "access" => Some(Self::Access),
            "refresh" => Some(Self::Refresh),
            _ => None,
        }
    }
    /// The readable prefix of each credential type.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Access => ACCESS_PREFIX,
            Self::Refresh => REFRESH_PREFIX,
        }
    }
}

pub const CODE_PREFIX: &str = "scb_code_";
pub const ACCESS_PREFIX: &str = "scb_at_";
pub const REFRESH_PREFIX: &str = "scb_rt_";

/// An access or refresh token, as stored (hash only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub hash: String,
    pub kind: TokenKind,
    pub connection_id: ConnectionId,
    pub user_id: UserId,
    pub client_id: String,
    pub family: String,
    pub expires_at: i64,
    pub revoked: bool,
    /// Refresh tokens: when they were first exchanged.
    pub used_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_id_accepts_number_and_string() {
        let a: ConnectionId = serde_json::from_str("99").unwrap();
        let b: ConnectionId = serde_json::from_str("\"99\"").unwrap();
        let c = ConnectionId::parse("0099").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(serde_json::to_string(&a).unwrap(), "99");
        let s = ConnectionId::parse("conn-abc").unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"conn-abc\"");
        for bad in ["", "a b", "<x>", &"9".repeat(200)] {
            assert!(ConnectionId::parse(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<ConnectionId>("-1").is_err());
        assert!(serde_json::from_str::<ConnectionId>("1.5").is_err());
    }

    #[test]
    fn guide_example_roundtrips() {
        let json = r#"{"userId":"1","locations":{
            "1198":{"ID":"1198","name":"Demo Workspace - London","status":"active","resources":[
                {"ID":"7843","name":"Demo Meeting Room - London","status":"active","type":"meeting-room"}]},
            "9587":{"ID":"9587","name":"Deleted Workspace","status":"deleted"}}}"#;
        let l = UserListings::parse_file(json).unwrap();
        assert_eq!(
            l[0].locations["1198"].resources[0].resource_type,
            "meeting-room"
        );
        let out = serde_json::to_value(&l[0].locations["9587"]).unwrap();
        assert!(
            out.get("resources").is_none(),
            "no resources key when there are none"
        );
    }

    #[test]
    fn listings_file_rejects_bad_status_key_mismatch_and_unknown_fields() {
        let bad_status =
            r#"{"userId":"1","locations":{"1":{"ID":"1","name":"n","status":"open"}}}"#;
        assert!(UserListings::parse_file(bad_status).is_err());
        let mismatch =
            r#"{"userId":"1","locations":{"1":{"ID":"2","name":"n","status":"active"}}}"#;
        assert!(UserListings::parse_file(mismatch).is_err());
        let unknown =
            r#"{"userId":"1","locations":{"1":{"ID":"1","name":"n","status":"active","x":1}}}"#;
        assert!(UserListings::parse_file(unknown).is_err());
        assert!(UserListings::parse_file("[]").unwrap().is_empty());
    }
}
