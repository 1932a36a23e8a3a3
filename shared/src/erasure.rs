//! Erasing a user: `DELETE /api/platform/users/{userId}` and
//! `syncaroo-admin users erase` both run [`erase_user`].
//!
//! A call records that the erasure is under way (a marker item, kept
//! until it ends, with every connection of the user it has seen), revokes
//! every live connection of the user (each announced as the revoke route
//! does; from then on every write the sync worker makes for them is
//! refused, see [`crate::store::sync::CONNECTION_ENDED`]), removes up to a
//! budget of their items ([`crate::store::erase`]), then deletes the dead
//! letters that name the user or any connection the marker keeps.
//!
//! A Lambda stops when it answers, so the rest is the next call's: the
//! answer says `"done": false` (HTTP 202) while a call still found
//! something. The index lags the table, so what was written just before
//! the revocation may be found only later: connection items (what their
//! token families are found from) go only once the erasure is
//! [`SETTLE_MS`] old, the marker's connection ids keep leading to what
//! their connections held, and `done` is the verdict of a call that found
//! nothing at all, no connection left, at least [`SETTLE_MS`] after the
//! erasure began. That call ends the erasure and puts `Syncaroo User
//! Erased`, once (a crash before the put leaves the marker, and the next
//! call puts it). A call for a user with nothing held begins and ends in
//! itself: `done`, nothing announced.

use crate::app::App;
use crate::changes;
use crate::error::Error;
use crate::model::{ConnectionStatus, UserId};
use crate::platform_ops as ops;
use crate::store::erase::{kind, Erased, Scope};
use serde_json::{json, Value};

/// How long after an erasure began a sweep that finds nothing counts as
/// proof: longer than the index's usual lag behind the table.
pub const SETTLE_MS: i64 = 2_000;

/// What one call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub erased: Erased,
    pub done: bool,
}

impl Report {
    /// The answer's body: `{"userId", "removed": {kind: count}, "done"}`.
    pub fn to_json(&self, user: &UserId) -> Value {
        json!({
            "userId": user.as_str(),
            "removed": self.erased.removed,
            "done": self.done,
        })
    }
}

/// One erasure call for `user`, removing at most `budget` items.
pub async fn erase_user(app: &App, user: &UserId, budget: usize) -> Result<Report, Error> {
    let store = app.store.as_ref();
    let now_ms = app.clock.now_ms();
    let connections = crate::platform_data::user_connections(store, user).await?;
    let ids: Vec<_> = connections.iter().map(|c| c.id.clone()).collect();
    let began = store.begin_erasure(user, now_ms, &ids).await?;
    let began_now = began.now;
    let mut erased = Erased::default();
    for c in connections
        .iter()
        .filter(|c| c.status != ConnectionStatus::Revoked)
    {
        ops::revoke_connection(app, &c.id).await?;
        erased.add(kind::REVOKED, 1);
    }
    let aged = now_ms - began.at_ms >= SETTLE_MS;
    // A connection revoked by this call keeps its item until a later one
    // (what was written just before the revocation is indexed by then).
    let scope = Scope {
        connections: &began.connections,
        connection_items: aged && erased.total() == 0,
    };
    let items = store.erase_items(user, &scope, budget).await?;
    for (k, n) in &items.removed {
        erased.add(k, *n);
    }
    // Every connection the erasure has seen: a letter may name one an
    // earlier call removed.
    let (letters, read_all) = app.dead_letters().purge(user, &began.connections).await?;
    erased.add(kind::DEAD_LETTERS, letters);
    erased.cut_short = items.cut_short || !read_all;
    // Nothing found, no connection item left (they go once the erasure is
    // aged), and either nothing was ever there or the index has caught up.
    let done =
        erased.total() == 0 && !erased.cut_short && connections.is_empty() && (began_now || aged);
    // Announced when an erasure that found something ends (one that began
    // in this call and found nothing had nothing to erase).
    if done && store.end_erasure(user).await? && !began_now {
        app.announce(changes::user_erased_entry(&app.config, user, now_ms))
            .await;
    }
    tracing::info!(user_id = %user, removed = erased.total(), done, "user erasure");
    Ok(Report { erased, done })
}
