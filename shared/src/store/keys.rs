//! Every key format of the table, in one place, and the one rule that keeps
//! composite keys unambiguous.
//!
//! A composite key joins its fields with `#`, and a sync target's key writes
//! "no resource" as `-`. Ids come from Syncaroo and the platform as given
//! (a location or resource id may hold any printable character), so each
//! variable field that is joined with others passes through [`part`]: `%`
//! and `#` are percent-encoded (`%25`, `%23`), and an id that is exactly
//! `-` is written `%2D`. An encoded field therefore never holds `#`, and is
//! `-` only for "none": two different targets never share a key.
//!
//! Items written before this rule: every id without `#` or `%` that is not
//! exactly `-` encodes to itself, so their keys are unchanged and they read
//! back as before. Only the ids the old joining confused (a `#` or `%`
//! inside, a resource named `-`) move to new keys; what was stored under
//! the old, shared key is left to its TTL (target notes and state: 30
//! days) or overwritten by the next fetch of the location-level target it
//! was confused with, and the next notification of such a target fetches
//! and stores it under its own key.
//!
//! A key with a single variable field at its end (`CONN#<id>`,
//! `USER#<id>`, `LOC#<id>`, ...) cannot be confused with another and is
//! written as is.

use crate::model::{ConnectionId, UserId};
use std::borrow::Cow;

/// One field of a composite key (see the module's rule).
pub fn part(id: &str) -> Cow<'_, str> {
    if id == NONE {
        return Cow::Borrowed("%2D");
    }
    if !id.contains(['%', '#']) {
        return Cow::Borrowed(id);
    }
    Cow::Owned(id.replace('%', "%25").replace('#', "%23"))
}

/// "No resource" in a target's key.
const NONE: &str = "-";

/// The id a [`part`] encodes.
fn unpart(p: &str) -> String {
    if p == "%2D" {
        return NONE.to_string();
    }
    p.replace("%23", "#").replace("%25", "%")
}

fn resource_part(resource: Option<&str>) -> Cow<'_, str> {
    resource.map_or(Cow::Borrowed(NONE), part)
}

// Grants.
pub fn connection_pk(id: &ConnectionId) -> String {
    format!("CONN#{id}")
}
pub const CONNECTION_SK: &str = "CONNECTION";
/// The connection id a connection item's key names.
pub fn connection_id_of(pk: &str) -> Option<&str> {
    pk.strip_prefix("CONN#")
}
pub fn token_pk(hash: &str) -> String {
    format!("TOKEN#{hash}")
}
pub const TOKEN_SK: &str = "TOKEN";
/// The keyed hash a token item's key names.
pub fn token_hash_of(pk: &str) -> Option<&str> {
    pk.strip_prefix("TOKEN#")
}
pub fn family_pk(family: &str) -> String {
    format!("FAM#{family}")
}
pub const FAMILY_SK: &str = "FAMILY";
pub fn code_pk(hash: &str) -> String {
    format!("CODE#{hash}")
}
pub const CODE_SK: &str = "CODE";
pub fn form_pk(hash: &str) -> String {
    format!("FORM#{hash}")
}
pub const FORM_SK: &str = "FORM";
/// A user's connections, in the GSI (the connection items carry it).
pub fn user_connections_pk(user: &UserId) -> String {
    format!("USERCONN#{user}")
}
/// A connection's webhooks, in the GSI (target notes and status changes
/// carry it, with the receipt time as the sort key).
pub fn hooks_pk(connection: &ConnectionId) -> String {
    format!("HOOKS#{connection}")
}
/// What erasure finds of a connection in the GSI that no other key names:
/// its codes, consent forms and location statuses (each under its own
/// table key as the sort key).
pub fn owned_pk(connection: &ConnectionId) -> String {
    format!("OWNED#{connection}")
}
/// The GSI sort key of an owned item: its table key.
pub fn owned_sk(pk: &str, sk: &str) -> String {
    format!("{pk}|{sk}")
}
/// A user's erasure under way (see [`crate::store::erase`]).
pub fn erasure_pk(user: &UserId) -> String {
    format!("ERASURE#{user}")
}
pub const ERASURE_SK: &str = "ERASURE";
/// The GSI sort key of a webhook receipt time: zero-padded, so it sorts.
pub fn hook_sk(ms: i64) -> String {
    format!("{ms:015}")
}

// Listings.
pub fn user_pk(user: &UserId) -> String {
    format!("USER#{user}")
}
const LOCATION_PREFIX: &str = "LOC#";
pub fn location_sk(location: &str) -> String {
    format!("{LOCATION_PREFIX}{location}")
}
/// The location id a listing's sort key names.
pub fn location_of(sk: &str) -> Option<&str> {
    sk.strip_prefix(LOCATION_PREFIX)
}
pub const LOCATION_SK_PREFIX: &str = LOCATION_PREFIX;
pub const LISTINGS_VERSION_SK: &str = "LISTINGS";

// Syncaroo credentials and the admin handshake.
pub const CREDENTIALS_PK: &str = "SYNCAROO";
pub const CREDENTIALS_SK: &str = "CREDENTIALS";
pub fn admin_state_pk(hash: &str) -> String {
    format!("ADMINSTATE#{hash}")
}
pub const ADMIN_STATE_SK: &str = "STATE";

// Webhooks and sync.
pub fn event_pk(id: &str) -> String {
    format!("EVENT#{id}")
}
pub fn event_id_of(pk: &str) -> Option<&str> {
    pk.strip_prefix("EVENT#")
}
pub const EVENT_SK: &str = "EVENT";
/// A sync target's id: its fields joined unambiguously (also its table
/// key, after `TARGET#`).
pub fn target_id(
    connection: &ConnectionId,
    location: &str,
    attribute_type: &str,
    resource: Option<&str>,
) -> String {
    format!(
        "{connection}#{}#{attribute_type}#{}",
        part(location),
        resource_part(resource)
    )
}
pub fn target_pk(target_id: &str) -> String {
    format!("TARGET#{target_id}")
}
pub fn is_target_pk(pk: &str) -> bool {
    pk.starts_with("TARGET#")
}
/// A target's notifications (written by webhooks) and fetches (written by
/// the worker only).
pub const NOTE_SK: &str = "NOTE";
pub const STATE_SK: &str = "STATE";
/// A connection's synced data and status of one location.
pub fn sync_pk(connection: &ConnectionId, location: &str) -> String {
    format!("SYNC#{connection}#{}", part(location))
}
/// The target a synced-data head's key names: connection, location,
/// attribute type, resource (`None` for a location-level target).
pub fn data_key_target(pk: &str, sk: &str) -> Option<(String, String, String, Option<String>)> {
    let (conn, location) = pk.strip_prefix("SYNC#")?.split_once('#')?;
    let (attr, resource) = sk.strip_prefix("DATA#")?.split_once('#')?;
    let resource = (resource != NONE).then(|| unpart(resource));
    Some((conn.into(), unpart(location), attr.into(), resource))
}
pub fn data_sk(attribute_type: &str, resource: Option<&str>) -> String {
    format!("DATA#{attribute_type}#{}", resource_part(resource))
}
/// The chunk items of one target's data all start with this.
pub fn chunk_prefix(attribute_type: &str, resource: Option<&str>) -> String {
    format!("CHUNK#{attribute_type}#{}#", resource_part(resource))
}
/// Chunk `i` of one write's generation (`gen`: base64url, never `#`);
/// `None`, the form written before generations (read, then replaced).
pub fn chunk_sk(
    attribute_type: &str,
    resource: Option<&str>,
    gen: Option<&str>,
    i: usize,
) -> String {
    match gen {
        Some(g) => format!("{}{g}#{i:03}", chunk_prefix(attribute_type, resource)),
        None => format!("{}{i:03}", chunk_prefix(attribute_type, resource)),
    }
}
pub const STATUS_SK: &str = "STATUS";
/// A user's data log ([`crate::store::datalog`]): its counter, and one
/// entry per stored target under a zero-padded number (sorting after the
/// counter's sort key).
pub fn data_log_pk(user: &UserId) -> String {
    format!("DATALOG#{user}")
}
pub const DATA_LOG_SK: &str = "LOG";
pub fn data_log_entry_sk(seq: u64) -> String {
    format!("SEQ#{seq:020}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_ids_keep_their_keys() {
        let c = ConnectionId::parse("99").unwrap();
        assert_eq!(target_id(&c, "1198", "rates", None), "99#1198#rates#-");
        assert_eq!(
            target_id(&c, "1198", "resources", Some("7843")),
            "99#1198#resources#7843"
        );
        assert_eq!(sync_pk(&c, "1198"), "SYNC#99#1198");
        assert_eq!(data_sk("rates", None), "DATA#rates#-");
        assert_eq!(
            chunk_sk("rates", Some("r-1"), None, 2),
            "CHUNK#rates#r-1#002"
        );
        assert_eq!(
            chunk_sk("rates", Some("r-1"), Some("AbC-_9"), 2),
            "CHUNK#rates#r-1#AbC-_9#002"
        );
    }

    #[test]
    fn no_two_targets_share_a_key() {
        let c = ConnectionId::parse("99").unwrap();
        let cases: [(&str, Option<&str>); 7] = [
            ("1198", None),
            ("1198", Some("-")),
            ("1198#rates", None),
            ("1198", Some("rates#-")),
            ("1198", Some("%2D")),
            ("1198", Some("%23")),
            ("1198", Some("#")),
        ];
        let mut ids: Vec<String> = cases
            .iter()
            .map(|(l, r)| target_id(&c, l, "rates", *r))
            .collect();
        let mut sks: Vec<String> = cases.iter().map(|(_, r)| data_sk("rates", *r)).collect();
        ids.sort();
        ids.dedup();
        sks.sort();
        sks.dedup();
        assert_eq!(ids.len(), cases.len(), "{ids:?}");
        assert_eq!(sks.len(), 6, "the location differs in the pk: {sks:?}");
        assert_ne!(sync_pk(&c, "1198#rates"), sync_pk(&c, "1198"));
        assert!(!part("a#b%c").contains('#'));
        assert_eq!(part("a#b%c"), "a%23b%25c");
        assert_eq!(part("-"), "%2D");
    }

    #[test]
    fn a_data_key_names_its_target_back() {
        let c = ConnectionId::parse("99").unwrap();
        for (location, resource) in [
            ("1198", None),
            ("1198", Some("-")),
            ("a#b%c", Some("r#%2D")),
            ("-", Some("7843")),
        ] {
            let got = data_key_target(&sync_pk(&c, location), &data_sk("rates", resource));
            assert_eq!(
                got,
                Some((
                    "99".into(),
                    location.into(),
                    "rates".into(),
                    resource.map(str::to_string)
                )),
                "{location} {resource:?}"
            );
        }
        assert_eq!(data_key_target("CONN#99", "DATA#rates#-"), None);
    }
}
