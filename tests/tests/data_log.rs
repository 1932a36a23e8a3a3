//! A user's data log on both stores: what was stored comes in the order it
//! was stored, strictly after the cursor; a target stored again comes
//! again with its new data; readers racing writers miss nothing and see
//! nothing twice.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use syncaroo_shared::error::Error;
use syncaroo_shared::model::{ConnectionId, UserId};
use syncaroo_shared::store::datalog::{
    DataFilter, DataPage, DataRead, LogCursor, ResourceFilter, PAGE_BUDGET_BYTES,
};
use syncaroo_shared::store::{Store, SyncTarget, SyncedData};

const NOW: i64 = 1_800_000_000;

fn user() -> UserId {
    UserId::parse("u1").unwrap()
}

fn target(conn: &str, location: &str, attr: &str, resource: Option<&str>) -> SyncTarget {
    SyncTarget {
        connection_id: ConnectionId::parse(conn).unwrap(),
        location_id: location.into(),
        attribute_type: attr.into(),
        resource_id: resource.map(str::to_string),
    }
}

/// Three targets: a location's rates, one of its resources, another
/// connection's location.
fn three() -> [SyncTarget; 3] {
    [
        target("99", "1198", "rates", None),
        target("99", "1198", "resources", Some("7843")),
        target("100", "2000", "rates", None),
    ]
}

/// Version `v` of `t`'s data, fetched later the larger `v` is.
fn version(t: &SyncTarget, v: u32) -> SyncedData {
    SyncedData {
        target: t.clone(),
        user: user(),
        data: format!(r#"[{{"target":"{}","v":{v}}}]"#, t.id()),
        pages: 1,
        fetched_at_ms: NOW * 1000 + i64::from(v) * 1000,
        stored_at_ms: NOW * 1000 + i64::from(v) * 1000 + 5,
        event_id: format!("e{v}"),
        deleted: false,
        connection_gen: None,
    }
}

/// Which version of which target `d` holds.
fn which(d: &SyncedData) -> (SyncTarget, u64) {
    let v: serde_json::Value = serde_json::from_str(&d.data).unwrap();
    (d.target.clone(), v[0]["v"].as_u64().unwrap())
}

async fn read(s: &dyn Store, after: &LogCursor, limit: usize, filter: DataFilter) -> DataPage {
    s.read_data(
        &user(),
        &DataRead {
            after: after.clone(),
            limit,
            filter,
        },
    )
    .await
    .unwrap()
}

/// Pages of `limit` from `after` until `has_more` is false: what they held,
/// and the cursor to resume from.
async fn drain(s: &dyn Store, after: &LogCursor, limit: usize) -> (Vec<SyncedData>, LogCursor) {
    let mut cursor = after.clone();
    let mut items = Vec::new();
    loop {
        let page = read(s, &cursor, limit, DataFilter::default()).await;
        assert!(page.items.len() <= limit);
        items.extend(page.items);
        cursor = page.cursor;
        if !page.has_more {
            return (items, cursor);
        }
    }
}

/// Three targets stored, read in pages of one with the cursor; then one of
/// them stored again, and the read from the saved cursor returns exactly
/// that target with its new data.
async fn pages_of_one_then_the_change_from_the_saved_cursor(s: Arc<dyn Store>) {
    let empty = read(s.as_ref(), &LogCursor::default(), 10, DataFilter::default()).await;
    assert!(empty.items.is_empty() && !empty.has_more);
    let [a, b, c] = three();
    for t in [&a, &b, &c] {
        assert!(s.put_synced(&version(t, 1)).await.unwrap());
    }
    let mut cursor = empty.cursor;
    let mut seen = Vec::new();
    for i in 0..3 {
        let page = read(s.as_ref(), &cursor, 1, DataFilter::default()).await;
        assert_eq!(page.items.len(), 1, "page {i}");
        assert_eq!(page.has_more, i < 2, "page {i}");
        seen.push(which(&page.items[0]));
        cursor = page.cursor;
    }
    assert_eq!(
        seen,
        [(a.clone(), 1), (b.clone(), 1), (c.clone(), 1)],
        "in the order stored"
    );
    // Nothing new: no items, the same place to resume from.
    let none = read(s.as_ref(), &cursor, 10, DataFilter::default()).await;
    assert!(none.items.is_empty() && !none.has_more);
    assert_eq!(none.cursor, cursor);

    assert!(s.put_synced(&version(&b, 2)).await.unwrap());
    let (after, _) = drain(s.as_ref(), &cursor, 10).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0], version(&b, 2), "exactly the change, whole");

    // From the beginning each target comes once, the changed one last.
    let (all, _) = drain(s.as_ref(), &LogCursor::default(), 2).await;
    let all: Vec<_> = all.iter().map(which).collect();
    assert_eq!(all, [(a, 1), (c, 1), (b, 2)]);
    // Another user's log is their own.
    let other = s
        .read_data(
            &UserId::parse("u2").unwrap(),
            &DataRead {
                after: LogCursor::default(),
                limit: 10,
                filter: DataFilter::default(),
            },
        )
        .await
        .unwrap();
    assert!(other.items.is_empty());
}

/// A fetch that loses to a later one takes no place in the log.
async fn a_write_that_loses_takes_no_place(s: Arc<dyn Store>) {
    let [a, ..] = three();
    assert!(s.put_synced(&version(&a, 2)).await.unwrap());
    assert!(!s.put_synced(&version(&a, 1)).await.unwrap());
    let (all, _) = drain(s.as_ref(), &LogCursor::default(), 10).await;
    assert_eq!(all.iter().map(which).collect::<Vec<_>>(), [(a, 2)]);
}

/// Filters narrow a read to targets; the location-level target is asked
/// for apart from any resource; the cursor passes what they leave out.
async fn filters_narrow_and_the_cursor_passes_the_rest(s: Arc<dyn Store>) {
    let [a, b, c] = three();
    for t in [&a, &b, &c] {
        assert!(s.put_synced(&version(t, 1)).await.unwrap());
    }
    let only = |f: DataFilter| {
        let s = s.clone();
        async move {
            let page = read(s.as_ref(), &LogCursor::default(), 10, f).await;
            assert!(!page.has_more);
            page.items.iter().map(|d| d.target.id()).collect::<Vec<_>>()
        }
    };
    assert_eq!(only(DataFilter::target(&a)).await, [a.id()]);
    assert_eq!(only(DataFilter::target(&b)).await, [b.id()]);
    let location_level = DataFilter {
        connection: Some(a.connection_id.clone()),
        location: Some("1198".into()),
        resource: ResourceFilter::LocationLevel,
        ..DataFilter::default()
    };
    assert_eq!(only(location_level).await, [a.id()]);
    let by_connection = DataFilter {
        connection: Some(c.connection_id.clone()),
        ..DataFilter::default()
    };
    assert_eq!(only(by_connection.clone()).await, [c.id()]);
    // Nothing matches: no items, and the cursor is past all three, so the
    // next read with the filter returns only what is stored after.
    let nothing = DataFilter {
        resource: ResourceFilter::Resource("nope".into()),
        ..DataFilter::default()
    };
    let page = read(s.as_ref(), &LogCursor::default(), 10, nothing).await;
    assert!(page.items.is_empty() && !page.has_more);
    let all = read(s.as_ref(), &LogCursor::default(), 10, DataFilter::default()).await;
    assert_eq!(page.cursor, all.cursor);
    assert!(s.put_synced(&version(&c, 2)).await.unwrap());
    let next = read(s.as_ref(), &page.cursor, 10, by_connection).await;
    assert_eq!(next.items.iter().map(which).collect::<Vec<_>>(), [(c, 2)]);
}

/// A page stays within its byte budget (Lambda's 6 MB response), always
/// takes its first item, and the item it leaves comes first next time.
async fn pages_stay_under_the_response_limit(s: Arc<dyn Store>) {
    let big = |t: &SyncTarget, mb: usize| {
        let mut d = version(t, 1);
        d.data = serde_json::to_string(&vec!["x".repeat(1000); mb * 1000]).unwrap();
        d
    };
    let [a, b, c] = three();
    for (t, mb) in [(&a, 2), (&b, 2), (&c, 2)] {
        assert!(s.put_synced(&big(t, mb)).await.unwrap());
    }
    let first = read(
        s.as_ref(),
        &LogCursor::default(),
        100,
        DataFilter::default(),
    )
    .await;
    let weight: usize = first.items.iter().map(|d| d.data.len()).sum();
    assert_eq!(first.items.len(), 2, "two of about 2 MB fit, not three");
    assert!(weight < PAGE_BUDGET_BYTES && first.has_more);
    let second = read(s.as_ref(), &first.cursor, 100, DataFilter::default()).await;
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.items[0], big(&c, 2), "read back whole");
    assert!(!second.has_more);
}

/// Stores one version after another of `t` (1..=versions), each retried
/// while the store reports contention (as the worker retries a record).
async fn store_versions(s: Arc<dyn Store>, t: SyncTarget, versions: u32) -> u32 {
    let mut retries = 0;
    for v in 1..=versions {
        loop {
            match s.put_synced(&version(&t, v)).await {
                Ok(stored) => {
                    assert!(stored, "{} v{v}", t.id());
                    break;
                }
                Err(Error::Unavailable(_)) => retries += 1,
                Err(e) => panic!("{} v{v}: {e}", t.id()),
            }
        }
    }
    retries
}

/// Eight writers store three versions each of their own targets of one
/// user at once while a reader follows the log in pages of two: every
/// target's last version is read, no version is read twice, and each
/// target's versions come in order.
async fn readers_racing_writers_miss_nothing_and_repeat_nothing(s: Arc<dyn Store>) {
    let targets: Vec<SyncTarget> = (0..8)
        .map(|i| target("99", "1198", "resources", Some(&format!("r{i}"))))
        .collect();
    let writing = Arc::new(AtomicBool::new(true));
    let reader = {
        let (s, writing) = (s.clone(), writing.clone());
        tokio::spawn(async move {
            let mut cursor = LogCursor::default();
            let mut seen = Vec::new();
            loop {
                let done = !writing.load(Ordering::SeqCst);
                let (items, next) = drain(s.as_ref(), &cursor, 2).await;
                seen.extend(items.iter().map(which));
                cursor = next;
                if done {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let writers: Vec<_> = targets
        .iter()
        .map(|t| tokio::spawn(store_versions(s.clone(), t.clone(), 3)))
        .collect();
    let mut retries = 0;
    for w in writers {
        retries += w.await.unwrap();
    }
    writing.store(false, Ordering::SeqCst);
    let seen = reader.await.unwrap();
    println!(
        "{} items read, {retries} stores retried under contention",
        seen.len()
    );
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "nothing read twice: {seen:?}");
    let mut last: HashMap<SyncTarget, u64> = HashMap::new();
    for (t, v) in &seen {
        let before = last.insert(t.clone(), *v).unwrap_or(0);
        assert!(*v > before, "{} v{v} after v{before}", t.id());
    }
    for t in &targets {
        assert_eq!(last.get(t), Some(&3), "{}'s last version read", t.id());
    }
    // The log holds one entry per target.
    let (all, _) = drain(s.as_ref(), &LogCursor::default(), 100).await;
    assert_eq!(all.len(), targets.len());
}

/// Six writers store versions of one target at once, three rounds: each
/// write stands or loses to a later fetch, none fails (a head read after a
/// commit the counter read missed is read again, not sent as a transaction
/// that names one log entry twice), and the log holds the target once, at
/// its latest version.
async fn writers_of_one_target_leave_one_entry(s: Arc<dyn Store>) {
    let [a, ..] = three();
    for round in 0..3u32 {
        let tasks: Vec<_> = (1..=6u32)
            .map(|k| {
                let (s, a) = (s.clone(), a.clone());
                tokio::spawn(async move {
                    loop {
                        match s.put_synced(&version(&a, round * 10 + k)).await {
                            Ok(_) => return,
                            Err(Error::Unavailable(_)) => continue,
                            Err(e) => panic!("v{k}: {e}"),
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let (all, _) = drain(s.as_ref(), &LogCursor::default(), 10).await;
        assert_eq!(
            all.iter().map(which).collect::<Vec<_>>(),
            [(a.clone(), u64::from(round * 10 + 6))]
        );
    }
}

syncaroo_tests::store_conformance!(NOW;
    writers_of_one_target_leave_one_entry,
    pages_of_one_then_the_change_from_the_saved_cursor,
    a_write_that_loses_takes_no_place,
    filters_narrow_and_the_cursor_passes_the_rest,
    pages_stay_under_the_response_limit,
    readers_racing_writers_miss_nothing_and_repeat_nothing,
);
