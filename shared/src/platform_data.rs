//! What the platform reads of its users' synced data, through the
//! platform API and `syncaroo-admin`: pages of a user's data in the order
//! it was stored ([`crate::store::datalog`]), each location's latest
//! status, and a connection's sync health. None exposes our table's
//! layout.

use crate::clock::rfc3339_ms;
use crate::error::Error;
use crate::model::{ConnectionId, UserId};
use crate::store::credentials::CredentialStatus;
use crate::store::datalog::{DataPage, DataRead};
use crate::store::{LocationStatus, Store, TargetState};
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// `limit` when the platform sends none, and the most it may ask for.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// One stored target, as the data route answers it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemView<'a> {
    connection_id: &'a str,
    location_id: &'a str,
    attribute_type: &'a str,
    resource_id: Option<&'a str>,
    fetched_at: String,
    stored_at: String,
    deleted: bool,
    pages: u32,
    /// The stored JSON array, spliced in as stored (up to 3 MB: never
    /// parsed into values again).
    data: &'a RawValue,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageView<'a> {
    items: Vec<ItemView<'a>>,
    cursor: String,
    has_more: bool,
}

/// A page of `user`'s synced data as the data route's JSON body.
pub async fn data_page(
    store: &dyn Store,
    user: &UserId,
    read: &DataRead,
) -> Result<Vec<u8>, Error> {
    let page = store.read_data(user, read).await?;
    render(&page)
}

/// `page` as the data route's JSON body.
pub fn render(page: &DataPage) -> Result<Vec<u8>, Error> {
    let items = page
        .items
        .iter()
        .map(|d| {
            let data: &RawValue = serde_json::from_str(&d.data)
                .map_err(|_| Error::corrupt("stored synced data is not JSON"))?;
            Ok(ItemView {
                connection_id: d.target.connection_id.as_str(),
                location_id: &d.target.location_id,
                attribute_type: &d.target.attribute_type,
                resource_id: d.target.resource_id.as_deref(),
                fetched_at: rfc3339_ms(d.fetched_at_ms),
                stored_at: rfc3339_ms(d.stored_at_ms),
                deleted: d.deleted,
                pages: d.pages,
                data,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let view = PageView {
        items,
        cursor: page.cursor.encode(),
        has_more: page.has_more,
    };
    serde_json::to_vec(&view).map_err(|e| Error::corrupt(format!("data page: {e}")))
}

/// Status reads in flight at once.
const STATUS_READS: usize = 16;

/// Each of `user`'s listed locations' latest status webhook, from any of
/// the user's connections (the latest received when several have one):
/// `{"locations": {"1198": {"connectionId", "metaData", "receivedAt"}}}`.
pub async fn user_statuses(store: &dyn Store, user: &UserId) -> Result<Value, Error> {
    let connections = user_connections(store, user).await?;
    let locations = store.list_locations(user).await?;
    // Owned pairs: a stream closure over borrowed ones is not `Send` for
    // every lifetime, as the handler's boxed future needs.
    let pairs: Vec<(ConnectionId, String)> = connections
        .iter()
        .flat_map(|c| locations.iter().map(move |l| (c.id.clone(), l.id.clone())))
        .collect();
    let found: Vec<Option<LocationStatus>> = futures_util::stream::iter(pairs)
        .map(|(c, l)| async move { store.get_location_status(&c, &l).await })
        .buffer_unordered(STATUS_READS)
        .try_collect()
        .await?;
    let mut latest: BTreeMap<String, LocationStatus> = BTreeMap::new();
    for s in found.into_iter().flatten() {
        match latest.get(&s.location_id) {
            Some(l) if l.received_at_ms >= s.received_at_ms => {}
            _ => {
                latest.insert(s.location_id.clone(), s);
            }
        }
    }
    let mut out = Map::new();
    for (location, s) in latest {
        let meta: Value = serde_json::from_str(&s.meta)
            .map_err(|_| Error::corrupt("a stored status's metaData is not JSON"))?;
        out.insert(
            location,
            json!({
                "connectionId": s.connection_id.as_str(),
                "metaData": meta,
                "receivedAt": rfc3339_ms(s.received_at_ms),
            }),
        );
    }
    Ok(json!({ "locations": out }))
}

/// Every connection of `user`, whatever its status.
pub async fn user_connections(
    store: &dyn Store,
    user: &UserId,
) -> Result<Vec<crate::model::Connection>, Error> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = store
            .list_connections(Some(user), after.as_ref(), 100)
            .await?;
        all.extend(page.into_iter().map(|i| i.connection));
        match next {
            Some(n) => after = Some(n),
            None => return Ok(all),
        }
    }
}

/// A connection as the platform API lists it, plus its sync health and
/// `syncarooCredentials`: the platform-wide state of our Syncaroo API
/// credentials (one pair serves every connection), shown per connection
/// for convenience. `None`: no such connection.
pub async fn connection_health(
    store: &dyn Store,
    id: &ConnectionId,
) -> Result<Option<Value>, Error> {
    let Some(mut view) = crate::platform_ops::show_connection(store, id).await? else {
        return Ok(None);
    };
    let (targets, credentials) =
        tokio::try_join!(store.connection_targets(id), store.get_credentials())?;
    view["sync"] = sync_health(&targets);
    view["syncarooCredentials"] = json!(match credentials {
        None => "missing",
        Some(c) if c.status == CredentialStatus::NeedsReauth => "needs_reauth",
        Some(_) => "ok",
    });
    Ok(Some(view))
}

/// `targets` (data and status), when the latest notification arrived and
/// the latest successful fetch started, how many have notifications no
/// fetch covers yet (`pending`), and those given up on that no fetch has
/// covered since (`failing`).
pub fn sync_health(targets: &[TargetState]) -> Value {
    let latest = |times: Vec<i64>| times.into_iter().max().map(rfc3339_ms);
    let failing: Vec<Value> = targets
        .iter()
        .filter(|t| t.failing())
        .map(|t| {
            json!({
                "locationId": t.target.location_id,
                "attributeType": t.target.attribute_type,
                "resourceId": t.target.resource_id,
                "reason": t.error,
                "attempts": t.failed_attempts,
                "failedAt": t.failed_at_ms.map(rfc3339_ms),
            })
        })
        .collect();
    json!({
        "targets": targets.len(),
        "lastNotificationAt": latest(targets.iter().map(|t| t.notified_at_ms).filter(|&m| m > 0).collect()),
        "lastFetchAt": latest(targets.iter().filter_map(|t| t.fetch_started_ms).collect()),
        "pending": targets.iter().filter(|t| t.due()).count(),
        "failing": failing,
    })
}
