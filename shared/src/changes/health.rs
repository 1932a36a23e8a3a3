//! The change events that report the sync's health rather than a change of
//! data: a sync given up, our Syncaroo API credentials needing an admin,
//! and restored; and a user's erasure done.

use super::{Change, Entry};
use crate::clock::rfc3339_ms;
use crate::config::Config;
use crate::model::UserId;
use serde::Serialize;

/// `Sync Failed`'s detail.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SyncFailed<'a> {
    connection_id: &'a str,
    user_id: &'a str,
    location_id: &'a str,
    attribute_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_id: Option<&'a str>,
    reason: &'a str,
    attempts: u32,
    failed_at: String,
}

/// `Sync Failed`: a target's fetch, or a status change, given up on
/// (dead-lettered) after `attempts` tries, and why. The reason names what
/// failed (an HTTP status, a refusal), never a token.
pub fn sync_failed_entry(
    config: &Config,
    target: &crate::store::SyncTarget,
    user: &UserId,
    reason: &str,
    attempts: u32,
    at_ms: i64,
) -> Entry {
    let detail = SyncFailed {
        connection_id: target.connection_id.as_str(),
        user_id: user.as_str(),
        location_id: &target.location_id,
        attribute_type: &target.attribute_type,
        resource_id: target.resource_id.as_deref(),
        reason,
        attempts,
        failed_at: rfc3339_ms(at_ms),
    };
    Entry::new(config, Change::SyncFailed, &detail)
}

/// `Credentials Need Reauth`: Syncaroo refused our refresh token, so
/// nothing syncs until an admin reconnects (`reason` says what Syncaroo
/// answered, never a token); when, in seconds.
pub fn needs_reauth_entry(config: &Config, reason: &str, at_secs: i64) -> Entry {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Detail<'a> {
        status: &'a str,
        reason: &'a str,
        marked_at: String,
    }
    let detail = Detail {
        status: "needs_reauth",
        reason,
        marked_at: rfc3339_ms(at_secs * 1000),
    };
    Entry::new(config, Change::CredentialsNeedReauth, &detail)
}

/// `Credentials Restored`: the admin handshake stored working credentials
/// (`version`) after they needed reauth; when, in seconds.
pub fn restored_entry(config: &Config, version: u64, at_secs: i64) -> Entry {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Detail {
        status: &'static str,
        version: u64,
        restored_at: String,
    }
    let detail = Detail {
        status: "active",
        version,
        restored_at: rfc3339_ms(at_secs * 1000),
    };
    Entry::new(config, Change::CredentialsRestored, &detail)
}

/// `User Erased`: nothing of the user is left (their connections were
/// revoked, each announced, then removed with everything they held); when,
/// in milliseconds.
pub fn user_erased_entry(config: &Config, user: &UserId, at_ms: i64) -> Entry {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Detail<'a> {
        user_id: &'a str,
        erased_at: String,
    }
    let detail = Detail {
        user_id: user.as_str(),
        erased_at: rfc3339_ms(at_ms),
    };
    Entry::new(config, Change::UserErased, &detail)
}
