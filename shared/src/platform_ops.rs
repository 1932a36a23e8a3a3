//! What the platform does to the bundle, once: the platform API routes
//! (`handlers::platform`) and the `syncaroo-admin` CLI both call these, so
//! a listing pushed, a connection revoked or listed is the same whichever
//! door it came through.

use crate::app::App;
use crate::changes;
use crate::deadletter::DeadLetter;
use crate::error::Error;
use crate::model::{ConnectionId, ConnectionStatus, Location, UserId, UserListings};
use crate::store::{ConnectionInfo, Store};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The push body: `{"locations": {...}}` in check_connection's shape, each
/// location valid and keyed by its own ID; anything else is refused whole.
pub fn parse_push(body: &[u8]) -> Result<BTreeMap<String, Location>, Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Push {
        locations: BTreeMap<String, Location>,
    }
    let push: Push = serde_json::from_slice(body).map_err(|e| {
        Error::InvalidRequest(format!(
            "body must be {{\"locations\": {{...}}}} in check_connection's shape: {e}"
        ))
    })?;
    crate::model::validate_locations(&push.locations)?;
    Ok(push.locations)
}

/// Makes `user`'s listings exactly `locations` (empty: none), atomically.
pub async fn replace_listings(
    store: &dyn Store,
    user: &UserId,
    locations: &BTreeMap<String, Location>,
) -> Result<Value, Error> {
    store.replace_listings(user, locations).await?;
    tracing::info!(user_id = %user, locations = locations.len(), "listings replaced");
    Ok(json!({"userId": user.as_str(), "locations": locations.len()}))
}

/// Loads an import file (one user's listings or a list of them), all of it
/// validated before anything is written. `replace`: each user in the file
/// ends with exactly the file's locations (one atomic replacement per
/// user); otherwise they are added to what is stored. Returns how many
/// locations were written.
pub async fn import_listings(store: &dyn Store, json: &str, replace: bool) -> Result<usize, Error> {
    let all = UserListings::parse_file(json)?;
    let mut n = 0;
    for u in &all {
        if replace {
            store.replace_listings(&u.user_id, &u.locations).await?;
        } else {
            store.put_listings(u).await?;
        }
        n += u.locations.len();
    }
    Ok(n)
}

/// A page of connections (one user's, or all), oldest id first, and the
/// cursor of the next page.
pub async fn list_connections(
    store: &dyn Store,
    user: Option<&UserId>,
    after: Option<&ConnectionId>,
    limit: usize,
) -> Result<Value, Error> {
    let (page, next) = store.list_connections(user, after, limit).await?;
    let items: Vec<Value> = page.iter().map(connection_view).collect();
    Ok(json!({"connections": items, "next": next.as_ref().map(|n| n.as_str())}))
}

/// One connection as [`list_connections`] shows it, or `None`.
pub async fn show_connection(store: &dyn Store, id: &ConnectionId) -> Result<Option<Value>, Error> {
    let Some(conn) = store.get_connection(id).await? else {
        return Ok(None);
    };
    // Its entry in its user's list carries the last webhook time.
    let mut after = None;
    loop {
        let (page, next) = store
            .list_connections(Some(&conn.user_id), after.as_ref(), 100)
            .await?;
        if let Some(info) = page.iter().find(|i| &i.connection.id == id) {
            return Ok(Some(connection_view(info)));
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    Ok(Some(connection_view(&ConnectionInfo {
        connection: conn,
        last_webhook_at_ms: None,
    })))
}

/// Revokes a connection in one step (every token of it refused from now
/// on), then announces it. `None`: no such connection.
pub async fn revoke_connection(app: &App, id: &ConnectionId) -> Result<Option<Value>, Error> {
    let now = app.clock.now();
    let Some(conn) = app.store.revoke_connection(id, now).await? else {
        return Ok(None);
    };
    tracing::info!(connection_id = %id, "connection revoked");
    let entry = changes::revoked_entry(
        &app.config,
        &conn.id,
        &conn.user_id,
        conn.revoked_at.unwrap_or(now),
    );
    app.announce(entry).await;
    Ok(Some(connection_view(&ConnectionInfo {
        connection: conn,
        last_webhook_at_ms: None,
    })))
}

/// A connection as the platform sees it. `pending` covers a connection
/// whose code is issued or redeemed but which Syncaroo has not checked yet.
/// Times are Unix seconds.
pub fn connection_view(i: &ConnectionInfo) -> Value {
    use ConnectionStatus as S;
    let c = &i.connection;
    let status = match c.status {
        S::Pending | S::Authorized => "pending",
        S::Confirmed => "confirmed",
        S::Revoked => "revoked",
    };
    json!({
        "connectionId": c.id.as_str(),
        "userId": c.user_id.as_str(),
        "status": status,
        "createdAt": c.created_at,
        "confirmedAt": c.confirmed_at,
        "revokedAt": c.revoked_at,
        "lastWebhookAt": i.last_webhook_at_ms.map(|ms| ms / 1000),
    })
}

/// Our Syncaroo API credentials' state, without the tokens.
pub async fn credentials_status(store: &dyn Store) -> Result<Value, Error> {
    Ok(match store.get_credentials().await? {
        None => json!({"status": "not_connected"}),
        Some(c) => json!({
            "status": c.status.as_str(),
            "expiresAt": c.expires_at,
            "updatedAt": c.updated_at,
            "version": c.version,
            "reason": c.reason,
            "leaseUntilMs": c.lease_until_ms,
        }),
    })
}

/// What [`replay`] did to a dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// The webhook is recorded again: the worker takes it up as new.
    Recorded(String),
    /// A status webhook the location has had a later one of since: not
    /// recorded, or it would stand over the later status.
    Superseded(String),
    /// The change event is put.
    Put(String),
}

/// Re-drives one dead letter through the same code as the first time: a
/// webhook is recorded again (its target is notified anew; a status webhook
/// only while its location has had no later one, so a newer status stays
/// newer), a change event is put. `Other` is refused.
pub async fn replay(app: &App, letter: &DeadLetter) -> Result<Replayed, Error> {
    match letter {
        DeadLetter::Webhook {
            hook,
            received_at_ms,
            ..
        } => {
            let target = crate::notify::target_of(hook);
            if target.is_status() {
                let state = app.store.get_target(&target).await?;
                if state.is_some_and(|s| s.notified_at_ms > *received_at_ms) {
                    return Ok(Replayed::Superseded(target.id()));
                }
            }
            crate::notify::record(app.store.as_ref(), hook, app.clock.now_ms())
                .await
                .map(|v| Replayed::Recorded(v.to_string()))
        }
        DeadLetter::Change { entry, .. } => {
            changes::put(app.changes().as_ref(), entry).await?;
            Ok(Replayed::Put(entry.detail_type.clone()))
        }
        DeadLetter::Other { summary } => {
            Err(Error::InvalidRequest(format!("cannot replay: {summary}")))
        }
    }
}
