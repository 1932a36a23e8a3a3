//! The sync worker: takes what webhooks recorded (from the table's stream
//! in AWS, from the local runner in-process) and does what they announce.
//! Data: a notified target is fetched while a notification is newer than
//! the start of its last successful fetch: `apiUrl` and every page after
//! it with the Syncaroo token, stored per connection, location, attribute
//! type and resource with the fetch's start time. Duplicates that arrive
//! before a fetch starts coalesce into it; one that arrives after it
//! started causes one more. Status: each change is applied in arrival order.

use crate::app::App;
use crate::changes;
use crate::deadletter::{DeadLetters, GivenUp};
use crate::metrics;
use crate::model::{Connection, ConnectionId, ConnectionStatus, UserId};
use crate::store::{
    EventRecord, EventStatus, GiveUp, LocationStatus, SyncTarget, SyncedData, TargetState,
};
use crate::syncaroo::data::{fetch_all, FetchError, FetchPolicy, Fetched};
use crate::webhook::{DataChange, Webhook, WebhookKind};
use serde_json::Value;
use std::time::Duration;

pub const METRIC_EVENT_FAILED: &str = metrics::DEAD_LETTERED;
pub use crate::store::sync::MAX_STORED_BYTES;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Already done or failed: a redelivery, nothing applied again.
    Skipped,
    /// Failed this time; try again later (the event stays pending).
    Retry(String),
    /// Dead-lettered and marked failed.
    Failed(String),
    /// About a location that is not one of the connection's user's: not
    /// fetched, stored or announced; counted and logged, and not tried
    /// again until a newer notification.
    Quarantined(String),
    /// The target was fetched less than `SYNC_MIN_FETCH_INTERVAL_MS` ago:
    /// due again at `until_ms` (its notifications wait for that fetch).
    Deferred {
        until_ms: i64,
    },
}

/// Webhooks about a location outside the connection's listings.
pub const METRIC_QUARANTINED: &str = metrics::QUARANTINED;

/// `connection` (read by the caller) when `location` is one of its user's;
/// `Ok(Err(reason))` when the webhook must be quarantined: a connection
/// speaks only for its own user's locations.
async fn owner(
    app: &App,
    connection: Option<Connection>,
    location: &str,
) -> Result<Result<Connection, String>, crate::error::Error> {
    let Some(c) = connection else {
        return Ok(Err("the connection is not stored".into()));
    };
    Ok(if app.store.has_location(&c.user_id, location).await? {
        Ok(c)
    } else {
        Err(format!(
            "location {location:?} is not one of the user's locations"
        ))
    })
}

fn quarantined(connection: &ConnectionId, location: &str, reason: String) -> Outcome {
    tracing::warn!(connection_id = %connection, location_id = %location, reason = %reason, "webhook quarantined");
    metrics::count(METRIC_QUARANTINED, 1);
    Outcome::Quarantined(reason)
}

enum SyncError {
    Permanent(String),
    Transient(String),
    /// The connection was revoked, erased or started afresh meanwhile: a
    /// write for it was refused ([`crate::store::sync::CONNECTION_ENDED`]).
    Ended,
}

impl From<FetchError> for SyncError {
    fn from(e: FetchError) -> Self {
        if e.is_permanent() {
            SyncError::Permanent(e.to_string())
        } else {
            SyncError::Transient(e.to_string())
        }
    }
}

impl From<crate::error::Error> for SyncError {
    fn from(e: crate::error::Error) -> Self {
        if crate::store::sync::is_connection_ended(&e) {
            return SyncError::Ended;
        }
        SyncError::Transient(e.to_string())
    }
}

pub fn fetch_policy(app: &App) -> FetchPolicy {
    let c = &app.config;
    FetchPolicy {
        max_pages: c.sync_max_pages,
        max_response_bytes: c.sync_max_response_bytes as usize,
        max_stored_bytes: MAX_STORED_BYTES,
        page_attempts: c.sync_page_attempts,
        deadline: c.sync_deadline,
        backoff_ms: 200,
    }
}

/// What the stream (or the local runner) hands the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    /// A target was notified: fetch (data) or apply (status) if it is due.
    Target(SyncTarget),
    /// A webhook recorded as an event by a version before targets: handed
    /// to its target.
    Event(EventRecord),
}

pub use crate::notify::target_of;

pub async fn process(
    app: &App,
    dlq: &dyn DeadLetters,
    delivered: &Delivered,
    policy: &FetchPolicy,
) -> Outcome {
    match delivered {
        Delivered::Target(t) => process_target(app, dlq, t, policy).await,
        Delivered::Event(e) => process_event(app, dlq, e).await,
    }
}

/// Fetches a target if a notification is newer than its last successful
/// fetch's start; `Skipped` when the last fetch covers every notification.
pub async fn process_target(
    app: &App,
    dlq: &dyn DeadLetters,
    target: &SyncTarget,
    policy: &FetchPolicy,
) -> Outcome {
    let store = app.store.as_ref();
    let (state, connection) = tokio::join!(
        store.get_target(target),
        store.get_connection(&target.connection_id)
    );
    let state = match state {
        Ok(Some(s)) if s.due() => s,
        // A fetch state a fetch running through an erasure wrote back.
        Ok(None) if matches!(connection, Ok(None)) => {
            return forget(app, target, "the connection is erased").await
        }
        Ok(_) => return Outcome::Skipped,
        Err(e) => return Outcome::Retry(e.to_string()),
    };
    // One token holder must not spend the platform's Syncaroo rate limit:
    // at most one fetch per interval; what is notified inside it waits. A
    // status target calls nobody: applied at once.
    if let Some(last) = state.fetch_started_ms.filter(|_| !target.is_status()) {
        let until_ms = last + crate::clock::millis(app.config.sync_min_fetch_interval);
        if app.clock.now_ms() < until_ms {
            return Outcome::Deferred { until_ms };
        }
    }
    let connection = match connection {
        // An erased connection's target is forgotten, a revoked one's left
        // as it is: neither is fetched.
        Ok(None) => return forget(app, target, "the connection is erased").await,
        Ok(Some(c)) if c.status == ConnectionStatus::Revoked => return Outcome::Skipped,
        Ok(c) => c,
        Err(e) => return Outcome::Retry(e.to_string()),
    };
    // The owner check and the attempt count in one round trip: a
    // quarantined target's give-up resets the count again.
    let (user, attempt) = tokio::join!(
        owner(app, connection, &target.location_id),
        store.start_fetch(target)
    );
    let conn = match user {
        Ok(Ok(c)) => c,
        Ok(Err(reason)) => {
            let up = GiveUp {
                through: state.notifications,
                reason: &reason,
                attempts: 0,
                at_ms: app.clock.now_ms(),
            };
            if let Err(e) = store.give_up(target, &up).await {
                return Outcome::Retry(e.to_string());
            }
            return quarantined(&target.connection_id, &target.location_id, reason);
        }
        Err(e) => return Outcome::Retry(e.to_string()),
    };
    let attempt = match attempt {
        Ok(n) => n,
        Err(e) => return Outcome::Retry(e.to_string()),
    };
    // The fetch starts now: every notification read above was recorded
    // before it, so what it reads covers them (one recorded since gets a
    // fetch of its own).
    let started_ms = app.clock.now_ms();
    let result = fetch_target(app, &state, &conn, started_ms, policy).await;
    // Decided again from the connection then: gone, revoked or started afresh.
    if let Err(SyncError::Ended) = result {
        return Outcome::Retry("the connection ended during the fetch".into());
    }
    // A failure is dead-lettered and announced only for a connection that
    // is still the one the fetch began under: one erased meanwhile leaves
    // nothing naming it behind.
    if result.is_err() && !live(app, &conn).await {
        return Outcome::Retry("the connection ended during the fetch".into());
    }
    settle_target(app, dlq, &state, &conn.user_id, attempt, started_ms, result).await
}

/// Whether `conn` is still the stored, live generation (read again).
async fn live(app: &App, conn: &Connection) -> bool {
    match app.store.get_connection(&conn.id).await {
        Ok(c) => crate::store::sync::generation_live(c.as_ref(), &conn.generation),
        // Unknown: the failure is settled as it would have been.
        Err(_) => true,
    }
}

/// Drops a target of a connection that ended (its notes and fetch state).
async fn forget(app: &App, target: &SyncTarget, why: &str) -> Outcome {
    tracing::info!(target_id = %target.id(), why, "target forgotten");
    match app.store.forget_target(target).await {
        Ok(()) => Outcome::Skipped,
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

/// Settles a target's try ([`settle`]); a target given up on is announced
/// (`Syncaroo Sync Failed`) after its dead letter is sent.
#[allow(clippy::too_many_arguments)]
async fn settle_target(
    app: &App,
    dlq: &dyn DeadLetters,
    state: &TargetState,
    user: &UserId,
    attempt: u32,
    started_ms: i64,
    result: Result<(), SyncError>,
) -> Outcome {
    let store = app.store.as_ref();
    let target = &state.target;
    let outcome = settle(
        app,
        dlq,
        &target.id(),
        attempt,
        result,
        async || {
            store
                .fetch_done(target, started_ms, state.notifications)
                .await
        },
        || GivenUp::target(state, attempt),
        async |reason| {
            let up = GiveUp {
                through: state.notifications,
                reason,
                attempts: attempt,
                at_ms: app.clock.now_ms(),
            };
            store.give_up(target, &up).await
        },
    )
    .await;
    if outcome == Outcome::Done {
        let lag = app.clock.now_ms() - state.notified_at_ms;
        metrics::emit(
            metrics::SYNC_LAG,
            metrics::Unit::Milliseconds,
            lag.max(0) as u64,
        );
    }
    if let Outcome::Failed(reason) = &outcome {
        let entry = changes::sync_failed_entry(
            &app.config,
            target,
            user,
            reason,
            attempt,
            app.clock.now_ms(),
        );
        app.announce(entry).await;
    }
    outcome
}

/// After a try: a success is recorded (`done`); a transient failure within
/// `SYNC_MAX_ATTEMPTS` is retried; anything else goes to the dead-letter
/// queue as `dead`, then is recorded as given up. A dead letter that cannot
/// be sent leaves the work to be delivered again.
#[allow(clippy::too_many_arguments)]
async fn settle(
    app: &App,
    dlq: &dyn DeadLetters,
    id: &str,
    attempt: u32,
    result: Result<(), SyncError>,
    done: impl AsyncFnOnce() -> Result<(), crate::error::Error>,
    dead: impl FnOnce() -> GivenUp,
    give_up: impl AsyncFnOnce(&str) -> Result<(), crate::error::Error>,
) -> Outcome {
    let (reason, permanent) = match result {
        Ok(()) => {
            return match done().await {
                Ok(()) => Outcome::Done,
                Err(e) => Outcome::Retry(e.to_string()),
            };
        }
        Err(SyncError::Permanent(r)) => (r, true),
        Err(SyncError::Transient(r)) => (r, false),
        Err(SyncError::Ended) => return Outcome::Skipped, // never here: see process_target
    };
    metrics::count(metrics::FETCH_FAILED, 1);
    if !permanent && (attempt as u64) < app.config.sync_max_attempts {
        tracing::warn!(id, attempt, reason = %reason, "sync failed; will retry");
        return Outcome::Retry(reason);
    }
    tracing::error!(id, attempt, reason = %reason, "sync failed; dead-lettering it");
    if let Err(e) = dlq.send(&dead(), &reason).await {
        tracing::error!(id, error = %e, "dead-letter send failed");
        return Outcome::Retry(reason);
    }
    metrics::count(METRIC_EVENT_FAILED, 1);
    if let Err(e) = give_up(&reason).await {
        tracing::error!(id, error = %e, "could not record the failure");
    }
    Outcome::Failed(reason)
}

async fn fetch_target(
    app: &App,
    state: &TargetState,
    conn: &Connection,
    started_ms: i64,
    policy: &FetchPolicy,
) -> Result<(), SyncError> {
    let hook = Webhook::parse(state.payload.as_bytes())
        .map_err(|e| SyncError::Permanent(e.to_string()))?;
    match &hook.kind {
        WebhookKind::Status { meta } => apply_status(app, state, &hook, meta, conn).await,
        WebhookKind::Data(change) => {
            let origin = format!("{}@{}", state.target.id(), state.notified_at_ms);
            store_fetched(app, &hook, change, conn, origin, started_ms, policy).await
        }
    }
}

/// Processes one recorded event: at most once to completion, however often
/// it is delivered.
pub async fn process_event(app: &App, dlq: &dyn DeadLetters, event: &EventRecord) -> Outcome {
    let store = app.store.as_ref();
    let (attempt, connection) = tokio::join!(
        store.start_attempt(&event.id),
        store.get_connection(&event.connection_id)
    );
    let attempt = match attempt {
        Ok(Some(n)) => n,
        Ok(None) => return Outcome::Skipped,
        Err(e) => return Outcome::Retry(e.to_string()),
    };
    let connection = match connection {
        Ok(c) => c,
        Err(e) => return Outcome::Retry(e.to_string()),
    };
    match owner(app, connection, &event.location_id).await {
        Ok(Ok(_)) => {}
        Ok(Err(reason)) => {
            let stored = store
                .finish_event(&event.id, EventStatus::Failed, Some(&reason))
                .await;
            if let Err(e) = stored {
                return Outcome::Retry(e.to_string());
            }
            return quarantined(&event.connection_id, &event.location_id, reason);
        }
        Err(e) => return Outcome::Retry(e.to_string()),
    };
    // Webhooks are recorded as their target's notification, never as an
    // event; one recorded as an event (by a version before targets) is
    // handed to its target here, which fetches or applies it.
    let result = renotify(app, event).await;
    settle(
        app,
        dlq,
        &event.id,
        attempt,
        result,
        async || store.finish_event(&event.id, EventStatus::Done, None).await,
        || GivenUp::event(event, attempt),
        async |reason| {
            store
                .finish_event(&event.id, EventStatus::Failed, Some(reason))
                .await
        },
    )
    .await
}

async fn renotify(app: &App, event: &EventRecord) -> Result<(), SyncError> {
    let hook = Webhook::parse(event.payload.as_bytes())
        .map_err(|e| SyncError::Permanent(e.to_string()))?;
    crate::notify::record(app.store.as_ref(), &hook, app.clock.now_ms()).await?;
    Ok(())
}

/// Fetches what a data webhook's `apiUrl` points at, every page, and
/// stores it as fetched at `fetched_at_ms` (unless a later fetch is
/// stored already).
#[allow(clippy::too_many_arguments)]
async fn store_fetched(
    app: &App,
    hook: &Webhook,
    change: &DataChange,
    conn: &Connection,
    origin: String,
    fetched_at_ms: i64,
    policy: &FetchPolicy,
) -> Result<(), SyncError> {
    let (fetched, deleted) = match fetch_all(
        app.provider(),
        &app.config.syncaroo_data_bases,
        &change.api_url,
        policy,
    )
    .await
    {
        Ok(f) => (f, false),
        // 404/410: deleted at Syncaroo. Recorded as such, not dead-lettered.
        Err(FetchError::Gone(_)) => (
            Fetched {
                data: "[]".into(),
                records: 0,
                pages: 0,
            },
            true,
        ),
        Err(e) => return Err(e.into()),
    };
    let records = fetched.records;
    let data = fetched.data;
    metrics::count(metrics::PAGES_FETCHED, u64::from(fetched.pages));
    metrics::emit(
        metrics::BYTES_FETCHED,
        metrics::Unit::Bytes,
        data.len() as u64,
    );
    let synced = SyncedData {
        target: crate::notify::target_of(hook),
        user: conn.user_id.clone(),
        data,
        pages: fetched.pages,
        fetched_at_ms,
        stored_at_ms: app.clock.now_ms(),
        event_id: origin,
        deleted,
        connection_gen: Some(conn.generation.clone()),
    };
    let applied = app.store.put_synced(&synced).await?;
    if applied {
        // Before the fetch is recorded done: a failed put is retried with
        // the fetch, then dead-lettered like one.
        let entry = changes::data_entry(&app.config, &synced, records);
        changes::put(app.changes().as_ref(), &entry).await?;
    }
    tracing::info!(
        origin = %synced.event_id,
        location_id = %synced.target.location_id,
        attribute_type = %synced.target.attribute_type,
        pages = synced.pages,
        deleted,
        applied,
        "data synced"
    );
    Ok(())
}

/// A status target's latest webhook, applied unless a later one is applied
/// already (ordered by the notification count, which the ack's one write
/// increments), then announced.
async fn apply_status(
    app: &App,
    state: &TargetState,
    hook: &Webhook,
    meta: &serde_json::Map<String, Value>,
    conn: &Connection,
) -> Result<(), SyncError> {
    let status = LocationStatus {
        connection_id: hook.connection_id.clone(),
        location_id: hook.location_id.clone(),
        meta: serde_json::to_string(meta).expect("a JSON object serialises"),
        received_at_ms: state.notified_at_ms,
        event_id: format!("{}@{}", state.target.id(), state.notifications),
        seq: state.notifications,
        connection_gen: Some(conn.generation.clone()),
    };
    let applied = app.store.put_location_status(&status).await?;
    if applied {
        let entry = changes::status_entry(&app.config, &status, Some(&conn.user_id));
        changes::put(app.changes().as_ref(), &entry).await?;
    }
    tracing::info!(target_id = %state.target.id(), seq = status.seq, applied, "status synced");
    Ok(())
}

/// A batch of delivered events (the sync function's stream batch, each
/// under the key the caller names it by): processes them and returns the
/// keys of those to deliver again. Lambda checkpoints at the lowest of them
/// and delivers that record and every one after it again, done or not:
/// that is safe only because processing is idempotent (a covered target is
/// skipped, a done event is not applied or announced again). Records for
/// different targets run concurrently (a fetch mostly waits on Syncaroo);
/// records for the same target run in batch order.
///
/// With a `deadline` (the invocation's), a record is started only while the
/// time left covers one fetch's budget (`SYNC_DEADLINE_MS`); the records
/// not started are handed back with the failed ones, so a batch too long
/// for one invocation is finished by the next instead of timing out whole.
pub async fn process_batch<K>(
    app: &App,
    dlq: &dyn DeadLetters,
    delivered: Vec<(K, Delivered)>,
    deadline: Option<std::time::Instant>,
) -> Vec<K> {
    let policy = fetch_policy(app);
    let mut groups: Vec<(String, Vec<(K, Delivered)>)> = Vec::new();
    for (key, d) in delivered {
        let id = match &d {
            Delivered::Target(t) => t.id(),
            Delivered::Event(e) => e.id.clone(),
        };
        match groups.iter_mut().find(|(g, _)| *g == id) {
            Some((_, records)) => records.push((key, d)),
            None => groups.push((id, vec![(key, d)])),
        }
    }
    let policy = &policy;
    // Whether, after `wait`, the time left still covers the record's work:
    // a fetch's budget for a data target; a status (or a legacy event) is
    // a few writes, always started.
    let covers = move |d: &Delivered, wait: Duration| match d {
        Delivered::Event(_) => true,
        Delivered::Target(t) if t.is_status() => true,
        Delivered::Target(_) => deadline.is_none_or(|end| {
            end.saturating_duration_since(std::time::Instant::now()) >= policy.deadline + wait
        }),
    };
    let runs = groups.into_iter().map(|(_, records)| async move {
        let mut failed = Vec::new();
        for (key, d) in records {
            if !covers(&d, Duration::ZERO) {
                tracing::warn!("too little time left for a fetch: handing the record back");
                failed.push(key);
                continue;
            }
            let mut outcome = process(app, dlq, &d, policy).await;
            if let Outcome::Deferred { until_ms } = outcome {
                // Wait out the target's fetch interval (seconds, inside the
                // function's minutes) and fetch then: a record handed back
                // would be retried at once, and dropped when the stream's
                // retries run out.
                let wait = Duration::from_millis((until_ms - app.clock.now_ms()).max(0) as u64);
                if covers(&d, wait) {
                    tokio::time::sleep(wait).await;
                    outcome = process(app, dlq, &d, policy).await;
                }
            }
            if let Outcome::Retry(_) | Outcome::Deferred { .. } = outcome {
                failed.push(key);
            }
        }
        failed
    });
    futures_util::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect()
}
