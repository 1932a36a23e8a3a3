//! One contract, two stores: every case runs on the in-memory store and on
//! DynamoDB Local (skipped with a notice when it is not running, a failure
//! when SYNCAROO_REQUIRE_LOCAL_AWS=1).

use std::sync::Arc;
use syncaroo_shared::error::Error;
use syncaroo_shared::model::*;
use syncaroo_shared::store::*;
use syncaroo_tests::local_aws;

const NOW: i64 = 1_800_000_000;

fn code(hash: &str, conn: &str, user: &str, family: &str, expires_at: i64) -> AuthCodeRecord {
    AuthCodeRecord {
        hash: hash.into(),
        connection_id: ConnectionId::parse(conn).unwrap(),
        user_id: UserId::parse(user).unwrap(),
        client_id: "client".into(),
        redirect_uri: "https://app.syncaroo.com/connection".into(),
        family: family.into(),
        expires_at,
    }
}

fn token(hash: &str, kind: TokenKind, c: &AuthCodeRecord, expires_at: i64) -> TokenRecord {
    TokenRecord {
        hash: hash.into(),
        kind,
        connection_id: c.connection_id.clone(),
        user_id: c.user_id.clone(),
        client_id: c.client_id.clone(),
        family: c.family.clone(),
        expires_at,
        revoked: false,
        used_at: None,
    }
}

fn redemption(c: &AuthCodeRecord, access: &str, refresh: &str, now: i64) -> CodeRedemption {
    CodeRedemption {
        code_hash: c.hash.clone(),
        client_id: c.client_id.clone(),
        redirect_uri: None,
        connection_id: c.connection_id.clone(),
        user_id: c.user_id.clone(),
        family: c.family.clone(),
        now,
        access: token(access, TokenKind::Access, c, now + 3600),
        refresh: token(refresh, TokenKind::Refresh, c, now + 86_400),
    }
}

fn rotation(
    c: &AuthCodeRecord,
    old: &str,
    access: &str,
    refresh: &str,
    now: i64,
) -> RefreshRotation {
    RefreshRotation {
        old_hash: old.into(),
        client_id: c.client_id.clone(),
        family: c.family.clone(),
        now,
        grace_floor: now - 10,
        access: token(access, TokenKind::Access, c, now + 3600),
        refresh: token(refresh, TokenKind::Refresh, c, now + 86_400),
    }
}

async fn redeem_once_then_replay(s: Arc<dyn Store>) {
    let c = code("c1", "99", "1", "fam1", NOW + 300);
    s.begin_authorization(&c, NOW).await.unwrap();
    let conn = s.get_connection(&c.connection_id).await.unwrap().unwrap();
    assert_eq!(conn.status, ConnectionStatus::Pending);
    assert_eq!(conn.user_id.as_str(), "1");
    s.redeem_code(&redemption(&c, "a1", "r1", NOW + 1))
        .await
        .unwrap();
    let a = s.get_token("a1").await.unwrap().unwrap();
    assert_eq!(
        (a.kind, a.family.as_str(), a.revoked),
        (TokenKind::Access, "fam1", false)
    );
    assert_eq!(
        s.get_connection(&c.connection_id)
            .await
            .unwrap()
            .unwrap()
            .status,
        ConnectionStatus::Authorized
    );
    match s.redeem_code(&redemption(&c, "a2", "r2", NOW + 2)).await {
        Err(RedeemError::Replayed { family, tokens }) => {
            assert_eq!(family, "fam1");
            assert!(tokens.contains(&"a1".to_string()) && tokens.contains(&"r1".to_string()));
        }
        other => panic!("expected replay, got {other:?}"),
    }
    assert!(
        s.get_token("a2").await.unwrap().is_none(),
        "the replay wrote no token"
    );
}

async fn redeem_refuses_expired_mismatched_and_unknown(s: Arc<dyn Store>) {
    let c = code("c2", "100", "1", "fam2", NOW + 300);
    s.begin_authorization(&c, NOW).await.unwrap();
    assert!(matches!(
        s.redeem_code(&redemption(&c, "a", "r", NOW + 300)).await,
        Err(RedeemError::Expired)
    ));
    let mut wrong_client = redemption(&c, "a", "r", NOW);
    wrong_client.client_id = "other".into();
    assert!(matches!(
        s.redeem_code(&wrong_client).await,
        Err(RedeemError::Mismatch)
    ));
    let mut wrong_redirect = redemption(&c, "a", "r", NOW);
    wrong_redirect.redirect_uri = Some("https://evil.example/cb".into());
    assert!(matches!(
        s.redeem_code(&wrong_redirect).await,
        Err(RedeemError::Mismatch)
    ));
    let mut right_redirect = redemption(&c, "a", "r", NOW);
    right_redirect.redirect_uri = Some(c.redirect_uri.clone());
    let unknown = code("nope", "100", "1", "fam2", NOW + 300);
    assert!(matches!(
        s.redeem_code(&redemption(&unknown, "a", "r", NOW)).await,
        Err(RedeemError::NotFound)
    ));
    assert!(
        s.get_token("a").await.unwrap().is_none(),
        "failed redemptions write nothing"
    );
    s.redeem_code(&right_redirect).await.unwrap();
}

async fn connection_belongs_to_one_user(s: Arc<dyn Store>) {
    let c = code("c3", "101", "1", "fam3", NOW + 300);
    s.begin_authorization(&c, NOW).await.unwrap();
    let thief = code("c3b", "101", "2", "fam3b", NOW + 300);
    assert!(matches!(
        s.begin_authorization(&thief, NOW).await,
        Err(Error::Conflict(_))
    ));
    assert!(
        matches!(
            s.redeem_code(&redemption(&thief, "a", "r", NOW)).await,
            Err(RedeemError::NotFound)
        ),
        "the refused code was not stored"
    );
    // The same user may authorize again (a reconnect).
    s.begin_authorization(&code("c3c", "101", "1", "fam3c", NOW + 300), NOW)
        .await
        .unwrap();
    // From a consent form: once per form, in the same write.
    let first = code("c3d", "101", "1", "fam3d", NOW + 300);
    s.begin_authorization_from(&first, Some("form-1"), NOW)
        .await
        .unwrap();
    let again = code("c3e", "101", "1", "fam3e", NOW + 300);
    assert!(matches!(
        s.begin_authorization_from(&again, Some("form-1"), NOW)
            .await,
        Err(Error::InvalidRequest(_))
    ));
    assert!(
        matches!(
            s.redeem_code(&redemption(&again, "a2", "r2", NOW)).await,
            Err(RedeemError::NotFound)
        ),
        "the second use of the form stored no code"
    );
    s.begin_authorization_from(&again, Some("form-2"), NOW)
        .await
        .unwrap();
}

async fn refresh_rotation_grace_and_family_revocation(s: Arc<dyn Store>) {
    let c = code("c4", "102", "1", "fam4", NOW + 300);
    s.begin_authorization(&c, NOW).await.unwrap();
    s.redeem_code(&redemption(&c, "a0", "r0", NOW))
        .await
        .unwrap();
    s.rotate_refresh(&rotation(&c, "r0", "a1", "r1", NOW + 100))
        .await
        .unwrap();
    assert_eq!(
        s.get_token("r0").await.unwrap().unwrap().used_at,
        Some(NOW + 100)
    );
    // The same rotation again inside the grace window (its successors are
    // derived from the old token, so the same hashes): accepted, the
    // stored pair unchanged.
    s.rotate_refresh(&rotation(&c, "r0", "a1", "r1", NOW + 103))
        .await
        .unwrap();
    assert_eq!(
        s.get_token("a1").await.unwrap().unwrap().expires_at,
        NOW + 100 + 3600,
        "the first rotation's pair stays"
    );
    // A retry inside the grace window gets another pair.
    s.rotate_refresh(&rotation(&c, "r0", "a1b", "r1b", NOW + 105))
        .await
        .unwrap();
    assert_eq!(
        s.get_token("r0").await.unwrap().unwrap().used_at,
        Some(NOW + 100),
        "first use kept"
    );
    // Outside it, the reuse is reported for revocation.
    match s
        .rotate_refresh(&rotation(&c, "r0", "a2", "r2", NOW + 200))
        .await
    {
        Err(RotateError::Reused { family }) => assert_eq!(family, "fam4"),
        other => panic!("expected reuse, got {other:?}"),
    }
    assert!(s.get_token("a2").await.unwrap().is_none());
    s.revoke_family("fam4", &[], NOW + 200).await.unwrap();
    for h in ["a0", "r0", "a1", "r1", "a1b", "r1b"] {
        assert!(
            s.get_token(h).await.unwrap().unwrap().revoked,
            "{h} revoked"
        );
    }
    assert!(matches!(
        s.rotate_refresh(&rotation(&c, "r1", "a3", "r3", NOW + 201))
            .await,
        Err(RotateError::Revoked)
    ));
}

async fn rotation_refuses_expired_wrong_kind_and_unknown(s: Arc<dyn Store>) {
    let c = code("c5", "103", "1", "fam5", NOW + 300);
    s.begin_authorization(&c, NOW).await.unwrap();
    s.redeem_code(&redemption(&c, "a5", "r5", NOW))
        .await
        .unwrap();
    assert!(matches!(
        s.rotate_refresh(&rotation(&c, "r5", "x", "y", NOW + 86_400))
            .await,
        Err(RotateError::Expired)
    ));
    assert!(matches!(
        s.rotate_refresh(&rotation(&c, "a5", "x", "y", NOW + 1))
            .await,
        Err(RotateError::Mismatch)
    ));
    assert!(matches!(
        s.rotate_refresh(&rotation(&c, "zz", "x", "y", NOW + 1))
            .await,
        Err(RotateError::NotFound)
    ));
    let mut other_client = rotation(&c, "r5", "x", "y", NOW + 1);
    other_client.client_id = "other".into();
    assert!(matches!(
        s.rotate_refresh(&other_client).await,
        Err(RotateError::Mismatch)
    ));
    assert!(s.get_token("x").await.unwrap().is_none());
    assert!(s.get_token("r5").await.unwrap().unwrap().used_at.is_none());
}

async fn confirm_is_idempotent_and_bound_to_user(s: Arc<dyn Store>) {
    let c = code("c6", "104", "1", "fam6", NOW + 300);
    s.begin_authorization(&c, NOW).await.unwrap();
    let first = s
        .confirm_connection(&c.connection_id, &c.user_id, &c.family, NOW + 10)
        .await
        .unwrap();
    let again = s
        .confirm_connection(&c.connection_id, &c.user_id, &c.family, NOW + 20)
        .await
        .unwrap();
    assert_eq!(
        (first, again),
        (true, false),
        "only the first confirmation says so (it is announced once)"
    );
    let conn = s.get_connection(&c.connection_id).await.unwrap().unwrap();
    assert_eq!(
        (conn.status, conn.confirmed_at),
        (ConnectionStatus::Confirmed, Some(NOW + 10))
    );
    let other = UserId::parse("2").unwrap();
    assert!(matches!(
        s.confirm_connection(&c.connection_id, &other, &c.family, NOW)
            .await,
        Err(Error::InvalidToken(_))
    ));
    let missing = ConnectionId::parse("999999").unwrap();
    assert!(s
        .confirm_connection(&missing, &c.user_id, &c.family, NOW)
        .await
        .is_err());
    assert!(s.get_connection(&missing).await.unwrap().is_none());
}

async fn listings_roundtrip(s: Arc<dyn Store>) {
    let all = UserListings::parse_file(syncaroo_local::DEMO_LISTINGS).unwrap();
    s.put_listings(&all[0]).await.unwrap();
    let user = UserId::parse("1").unwrap();
    let locs = s.list_locations(&user).await.unwrap();
    assert_eq!(
        locs.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        ["1198", "7120", "8102", "9587"]
    );
    assert_eq!(locs[0].resources.len(), 2);
    let mut update = all[0].clone();
    update.locations.retain(|k, _| k == "7120");
    update.locations.get_mut("7120").unwrap().status = ListingStatus::Active;
    s.put_listings(&update).await.unwrap();
    let locs = s.list_locations(&user).await.unwrap();
    assert_eq!(locs.len(), 4);
    assert_eq!(locs[1].status, ListingStatus::Active);
    assert!(s
        .list_locations(&UserId::parse("nobody").unwrap())
        .await
        .unwrap()
        .is_empty());
    assert!(s.get_token("never-issued").await.unwrap().is_none());
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        syncaroo_tests::store_conformance!(NOW; $($case),*);
    };
}

conformance!(
    redeem_once_then_replay,
    redeem_refuses_expired_mismatched_and_unknown,
    connection_belongs_to_one_user,
    refresh_rotation_grace_and_family_revocation,
    rotation_refuses_expired_wrong_kind_and_unknown,
    confirm_is_idempotent_and_bound_to_user,
    listings_roundtrip,
);

mod sync_data {
    use super::*;

    fn data(fetched_at_ms: i64, marker: &str) -> SyncedData {
        SyncedData {
            target: syncaroo_shared::store::SyncTarget {
                connection_id: ConnectionId::parse("99").unwrap(),
                location_id: "1198".into(),
                attribute_type: "rates".into(),
                resource_id: Some("7843".into()),
            },
            user: UserId::parse("u1").unwrap(),
            data: format!("[\"{marker}\"]"),
            pages: 1,
            fetched_at_ms,
            stored_at_ms: fetched_at_ms + 1,
            event_id: marker.into(),
            deleted: marker == "latest",
            connection_gen: None,
        }
    }

    /// Two fetches of the same resource whose writes land in reverse order:
    /// the later fetch stays.
    async fn later_fetch_wins(s: Arc<dyn Store>) {
        assert!(s.put_synced(&data(2_000, "later")).await.unwrap());
        assert!(
            !s.put_synced(&data(1_000, "earlier")).await.unwrap(),
            "the earlier fetch loses"
        );
        let got = s
            .get_synced(
                &ConnectionId::parse("99").unwrap(),
                "1198",
                "rates",
                Some("7843"),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!((got.event_id.as_str(), got.deleted), ("later", false));
        // Two fetches started in the same millisecond: the one written
        // last stays (it did not start earlier).
        assert!(s.put_synced(&data(2_000, "same ms")).await.unwrap());
        assert!(s.put_synced(&data(3_000, "latest")).await.unwrap());
        let got = s
            .get_synced(
                &ConnectionId::parse("99").unwrap(),
                "1198",
                "rates",
                Some("7843"),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!((got.event_id.as_str(), got.deleted), ("latest", true));
        assert!(s
            .get_synced(&ConnectionId::parse("99").unwrap(), "1198", "rates", None)
            .await
            .unwrap()
            .is_none());
    }

    /// Three pages of about 350 KB each (1 MB in all, beyond one DynamoDB
    /// item, with multi-byte characters at the chunk cuts) are stored and
    /// read back whole; a smaller later fetch replaces them.
    async fn a_megabyte_is_stored_and_read_back_whole(s: Arc<dyn Store>) {
        let page = |tag: &str| -> Vec<serde_json::Value> {
            (0..350)
                .map(|i| serde_json::json!({"i": i, "tag": tag, "pad": "é€😀".repeat(110)}))
                .collect()
        };
        let all: Vec<serde_json::Value> = ["a", "b", "c"].iter().flat_map(|t| page(t)).collect();
        let mut big = data(5_000, "big");
        big.data = serde_json::Value::Array(all.clone()).to_string();
        big.pages = 3;
        assert!(big.data.len() > 1_000_000, "{}", big.data.len());
        assert!(s.put_synced(&big).await.unwrap());
        let got = s
            .get_synced(
                &ConnectionId::parse("99").unwrap(),
                "1198",
                "rates",
                Some("7843"),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.data.len(), big.data.len());
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&got.data).unwrap(),
            serde_json::Value::Array(all)
        );
        assert_eq!((got.pages, got.event_id.as_str()), (3, "big"));
        // An older fetch does not replace it; a newer, small one does.
        assert!(!s.put_synced(&data(4_000, "older")).await.unwrap());
        assert!(s.put_synced(&data(6_000, "small")).await.unwrap());
        let got = s
            .get_synced(
                &ConnectionId::parse("99").unwrap(),
                "1198",
                "rates",
                Some("7843"),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (got.data.as_str(), got.event_id.as_str()),
            ("[\"small\"]", "small")
        );
    }

    async fn events_record_once_and_attempt_counts(s: Arc<dyn Store>) {
        let e = EventRecord {
            id: "99:abc".into(),
            connection_id: ConnectionId::parse("99").unwrap(),
            webhook_type: syncaroo_shared::webhook::WebhookType::Status,
            location_id: "1198".into(),
            payload: "{}".into(),
            received_at_ms: 5,
            status: EventStatus::Pending,
            attempts: 0,
            error: None,
        };
        assert!(s.record_event(&e).await.unwrap());
        assert!(!s.record_event(&e).await.unwrap());
        assert_eq!(s.start_attempt("99:abc").await.unwrap(), Some(1));
        assert_eq!(s.start_attempt("99:abc").await.unwrap(), Some(2));
        s.finish_event("99:abc", EventStatus::Failed, Some("why"))
            .await
            .unwrap();
        assert_eq!(s.start_attempt("99:abc").await.unwrap(), None);
        let got = s.get_event("99:abc").await.unwrap().unwrap();
        assert_eq!(
            (got.status, got.attempts, got.error.as_deref()),
            (EventStatus::Failed, 2, Some("why"))
        );
    }

    fn target() -> SyncTarget {
        SyncTarget {
            connection_id: ConnectionId::parse("99").unwrap(),
            location_id: "1198".into(),
            attribute_type: "resources".into(),
            resource_id: Some("7843".into()),
        }
    }

    fn note(at: i64, marker: &str) -> TargetNote {
        TargetNote {
            target: target(),
            payload: format!("{{\"m\":\"{marker}\"}}"),
            notified_at_ms: at,
        }
    }

    /// The sync item: every notification counts, the latest payload is
    /// kept, a fetch covers the notifications read before it started, and
    /// a fetch covering fewer never overwrites one covering more.
    async fn targets_coalesce_and_count(s: Arc<dyn Store>) {
        assert!(s.get_target(&target()).await.unwrap().is_none());
        s.notify_target(&note(1_000, "a")).await.unwrap();
        s.notify_target(&note(1_000, "b")).await.unwrap();
        let st = s.get_target(&target()).await.unwrap().unwrap();
        assert_eq!(
            (
                st.notifications,
                st.notified_at_ms,
                st.payload.as_str(),
                st.due()
            ),
            (2, 1_000, "{\"m\":\"b\"}", true)
        );
        assert_eq!(st.target, target());
        assert_eq!(s.start_fetch(&target()).await.unwrap(), 1);
        assert_eq!(s.start_fetch(&target()).await.unwrap(), 2);
        s.fetch_done(&target(), 1_500, 2).await.unwrap();
        let st = s.get_target(&target()).await.unwrap().unwrap();
        assert_eq!(
            (
                st.fetch_started_ms,
                st.fetched_through,
                st.attempts,
                st.due()
            ),
            (Some(1_500), Some(2), 0, false)
        );
        // A slower fetch that read only the first notification lands late.
        s.fetch_done(&target(), 1_200, 1).await.unwrap();
        let st = s.get_target(&target()).await.unwrap().unwrap();
        assert_eq!(
            (st.fetch_started_ms, st.fetched_through),
            (Some(1_500), Some(2))
        );
        // Another notification in the same millisecond as the fetch start
        // is still newer: its sequence number says so.
        s.notify_target(&note(1_500, "c")).await.unwrap();
        let st = s.get_target(&target()).await.unwrap().unwrap();
        assert!(st.due());
        let up = GiveUp {
            through: 3,
            reason: "gone",
            attempts: 4,
            at_ms: 1_700,
        };
        s.give_up(&target(), &up).await.unwrap();
        let st = s.get_target(&target()).await.unwrap().unwrap();
        assert_eq!(
            (st.given_up_through, st.error.as_deref(), st.due()),
            (Some(3), Some("gone"), false)
        );
        assert_eq!(
            (st.failed_at_ms, st.failed_attempts),
            (Some(1_700), Some(4))
        );
        assert!(st.failing());
        // The connection's targets: this one, with its state.
        let all = s.connection_targets(&target().connection_id).await.unwrap();
        assert_eq!(all, [st]);
        let other = ConnectionId::parse("424242").unwrap();
        assert!(s.connection_targets(&other).await.unwrap().is_empty());
        s.notify_target(&note(2_000, "d")).await.unwrap();
        assert!(s.get_target(&target()).await.unwrap().unwrap().due());
    }

    /// Twenty webhooks for one target acked at once, on real tasks: every
    /// notification counts (none lost to a read-modify-write race).
    async fn concurrent_notifications_all_count(s: Arc<dyn Store>) {
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move { s.notify_target(&note(1_000 + i, "x")).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let st = s.get_target(&target()).await.unwrap().unwrap();
        assert_eq!((st.notifications, st.due()), (20, true));
    }

    /// Synced data of `bytes` bytes (about), fetched at `at`.
    fn sized(at: i64, bytes: usize) -> SyncedData {
        let mut d = data(at, "x");
        d.data = serde_json::Value::Array(
            (0..bytes / 1000)
                .map(|i| serde_json::json!({"i": i, "at": at, "pad": "x".repeat(970)}))
                .collect(),
        )
        .to_string();
        d
    }

    /// The chunk items of the test target: (generation, index, has a ttl).
    async fn chunk_items(s: &syncaroo_shared::store::DynamoStore) -> Vec<(String, String, bool)> {
        let mut out: Vec<_> = s
            .raw_items("SYNC#99#1198", "CHUNK#rates#7843#")
            .await
            .unwrap()
            .iter()
            .map(|item| {
                let sk = item["sk"].as_s().unwrap();
                let rest = sk.strip_prefix("CHUNK#rates#7843#").unwrap();
                let (gen, i) = rest.rsplit_once('#').unwrap_or(("", rest));
                (gen.to_string(), i.to_string(), item.contains_key("ttl"))
            })
            .collect();
        out.sort();
        out
    }

    async fn read_back(s: &syncaroo_shared::store::DynamoStore) -> SyncedData {
        s.get_synced(
            &ConnectionId::parse("99").unwrap(),
            "1198",
            "rates",
            Some("7843"),
        )
        .await
        .unwrap()
        .unwrap()
    }

    /// Chunk items of an earlier, larger fetch do not stay behind
    /// (correctness issue, item 4): 1 MB in four chunks, then 600 KB in
    /// two, then a small value in the head alone; after each, exactly the
    /// chunks the head names exist, committed (no `ttl`), of one write.
    #[tokio::test]
    async fn dynamodb_a_smaller_fetch_leaves_no_chunks_behind() {
        let Some(s) = local_aws::dynamo_store("chunks", NOW).await else {
            return;
        };
        for (at, bytes, count) in [
            (1_000, 1_100_000, 4),
            (2_000, 600_000, 2),
            (3_000, 10_000, 0),
        ] {
            assert!(s.put_synced(&sized(at, bytes)).await.unwrap());
            let chunks = chunk_items(&s).await;
            assert_eq!(chunks.len(), count, "{bytes} bytes: {chunks:?}");
            assert!(
                chunks.iter().all(|(g, _, ttl)| g == &chunks[0].0 && !ttl),
                "{chunks:?}"
            );
            assert_eq!(read_back(&s).await.data, sized(at, bytes).data);
        }
    }

    /// Items written before chunks had generations (a head without `gen`,
    /// chunks under `CHUNK#rates#7843#<nnn>`) read back whole, and the next
    /// write replaces them, leaving none of the old chunks.
    #[tokio::test]
    async fn dynamodb_chunks_written_before_generations_read_and_are_replaced() {
        use aws_sdk_dynamodb::types::AttributeValue::{N, S};
        let Some(s) = local_aws::dynamo_store("legacy", NOW).await else {
            return;
        };
        // Connection 99, user u1's: a head written before the data log
        // names no user, and is read as its connection's.
        s.begin_authorization(&code("h-legacy", "99", "u1", "fam-legacy", NOW + 600), NOW)
            .await
            .unwrap();
        let old = sized(1_000, 700_000);
        let pieces: Vec<&str> = {
            let (a, rest) = old.data.split_at(300 * 1024);
            let (b, c) = rest.split_at(300 * 1024);
            vec![a, b, c]
        };
        let put = |sk: String, attrs: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>| {
            let mut req = s
                .client()
                .put_item()
                .table_name(s.table())
                .item("pk", S("SYNC#99#1198".into()))
                .item("sk", S(sk));
            for (k, v) in attrs {
                req = req.item(k, v);
            }
            req.send()
        };
        put(
            "DATA#rates#7843".into(),
            vec![
                ("chunks", N("3".into())),
                ("pages", N("1".into())),
                ("fetched_at_ms", N("1000".into())),
                ("event_id", S("x".into())),
            ],
        )
        .await
        .unwrap();
        for (i, p) in pieces.iter().enumerate() {
            put(
                format!("CHUNK#rates#7843#{i:03}"),
                vec![
                    ("data", S(p.to_string())),
                    ("fetched_at_ms", N("1000".into())),
                ],
            )
            .await
            .unwrap();
        }
        assert_eq!(
            read_back(&s).await.data,
            old.data,
            "the old form reads back whole"
        );
        assert!(
            !s.put_synced(&sized(900, 700_000)).await.unwrap(),
            "older than the legacy head"
        );
        assert!(s.put_synced(&sized(2_000, 400_000)).await.unwrap());
        let chunks = chunk_items(&s).await;
        assert_eq!(chunks.len(), 2, "{chunks:?}");
        assert!(
            chunks.iter().all(|(g, _, _)| !g.is_empty()),
            "no legacy chunk left: {chunks:?}"
        );
        assert_eq!(read_back(&s).await.data, sized(2_000, 400_000).data);
    }

    /// Writes of one target racing on real tasks, each larger than an item:
    /// the latest fetch is what stays, whole, with only its own chunks.
    #[tokio::test]
    async fn dynamodb_racing_chunked_writes_leave_the_latest_whole() {
        let Some(s) = local_aws::dynamo_store("race-chunks", NOW).await else {
            return;
        };
        let s = Arc::new(s);
        let tasks: Vec<_> = (1..=6)
            .map(|k| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.put_synced(&sized(k * 1_000, 400_000 + k as usize * 100_000))
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let got = read_back(&s).await;
        assert_eq!(got.data, sized(6_000, 1_000_000).data);
        let chunks = chunk_items(&s).await;
        let committed: Vec<_> = chunks.iter().filter(|(_, _, ttl)| !ttl).collect();
        assert_eq!(committed.len(), 4, "{chunks:?}");
    }

    /// What DynamoDB writes for a notification is what the stream hands
    /// the worker: the NOTE item read back decodes as its target.
    #[tokio::test]
    async fn dynamodb_note_item_is_a_stream_target() {
        let Some(s) = local_aws::dynamo_store("note", NOW).await else {
            return;
        };
        s.notify_target(&note(1_000, "a")).await.unwrap();
        let item = s
            .raw_item("TARGET#99#1198#resources#7843", "NOTE")
            .await
            .unwrap();
        assert_eq!(
            syncaroo_shared::store::dynamo::target_from(&item),
            Some(target())
        );
    }

    fn status(seq: u64, word: &str) -> LocationStatus {
        LocationStatus {
            connection_id: ConnectionId::parse("99").unwrap(),
            location_id: "1198".into(),
            meta: format!("{{\"status\":\"{word}\"}}"),
            // One millisecond for all: only the sequence orders them.
            received_at_ms: 5_000,
            event_id: format!("e{seq}"),
            seq,
            connection_gen: None,
        }
    }

    /// Statuses are ordered by their sequence, not their receipt time: a
    /// smaller one is refused, the same one applies again (a retry), a
    /// larger one replaces.
    async fn statuses_order_by_sequence(s: Arc<dyn Store>) {
        let c = ConnectionId::parse("99").unwrap();
        assert!(s.put_location_status(&status(2, "closed")).await.unwrap());
        assert!(!s.put_location_status(&status(1, "open")).await.unwrap());
        assert!(
            s.put_location_status(&status(2, "closed")).await.unwrap(),
            "a retry"
        );
        assert!(s.put_location_status(&status(3, "open")).await.unwrap());
        let got = s.get_location_status(&c, "1198").await.unwrap().unwrap();
        assert_eq!(got, status(3, "open"));
    }

    /// A status stored before statuses had a sequence (no `seq`) is older
    /// than any that has one.
    #[tokio::test]
    async fn dynamodb_a_status_without_a_sequence_is_replaced() {
        use aws_sdk_dynamodb::types::AttributeValue::{N, S};
        let Some(s) = local_aws::dynamo_store("status", NOW).await else {
            return;
        };
        s.client()
            .put_item()
            .table_name(s.table())
            .item("pk", S("SYNC#99#1198".into()))
            .item("sk", S("STATUS".into()))
            .item("meta", S("{\"status\":\"closed\"}".into()))
            .item("received_at_ms", N("9000".into()))
            .item("event_id", S("old".into()))
            .send()
            .await
            .unwrap();
        let c = ConnectionId::parse("99").unwrap();
        assert_eq!(
            s.get_location_status(&c, "1198")
                .await
                .unwrap()
                .unwrap()
                .seq,
            0
        );
        assert!(s.put_location_status(&status(1, "open")).await.unwrap());
        assert_eq!(
            s.get_location_status(&c, "1198").await.unwrap().unwrap(),
            status(1, "open")
        );
    }

    conformance!(
        statuses_order_by_sequence,
        later_fetch_wins,
        a_megabyte_is_stored_and_read_back_whole,
        events_record_once_and_attempt_counts,
        targets_coalesce_and_count,
        concurrent_notifications_all_count,
    );
}
