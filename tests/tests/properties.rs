//! Property tests of the parsers: form bodies and query strings in both
//! dialects with duplicates, connectionId forms, the webhook schema,
//! canonical JSON, the guide's datetime (against chrono).

use proptest::prelude::*;
use serde_json::{json, Value};
use syncaroo_shared::clock::guide_datetime;
use syncaroo_shared::http_util::Params;
use syncaroo_shared::jcs::canonicalize;
use syncaroo_shared::model::ConnectionId;
use syncaroo_shared::webhook::Webhook;

fn encode(pairs: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Arbitrary JSON (bounded), for the canonicaliser.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// A parameter given once under either spelling is found with its
    /// value, whatever else is in the string and in which order.
    #[test]
    fn either_dialect_once_is_found(
        value in ".{0,40}",
        snake in any::<bool>(),
        others in prop::collection::vec(("[a-z]{1,8}", ".{0,16}"), 0..6),
        at in 0usize..7,
    ) {
        let name = if snake { "client_id" } else { "clientId" };
        let mut pairs: Vec<(String, String)> = others
            .into_iter()
            .filter(|(k, _)| k != "clientid")
            .collect();
        let at = at.min(pairs.len());
        pairs.insert(at, (name.to_string(), value.clone()));
        let p = Params::parse(encode(&pairs).as_bytes()).unwrap();
        prop_assert_eq!(p.one_of(&["clientId", "client_id"]).unwrap(), Some(value.as_str()));
        prop_assert_eq!(p.one_of_named(&["clientId", "client_id"]).unwrap().unwrap().0, name);
    }

    /// Twice, under the same or the other spelling, is always refused.
    #[test]
    fn a_duplicate_under_any_spelling_is_refused(
        a in ".{0,20}", b in ".{0,20}", first_snake in any::<bool>(), second_snake in any::<bool>(),
    ) {
        let n = |s: bool| if s { "grant_type" } else { "grantType" };
        let raw = encode(&[(n(first_snake).into(), a), ("x".into(), "y".into()), (n(second_snake).into(), b)]);
        let p = Params::parse(raw.as_bytes()).unwrap();
        prop_assert!(p.one_of(&["grantType", "grant_type"]).is_err());
        prop_assert!(p.required(&["grantType", "grant_type"]).is_err());
    }

    /// Every string survives form encoding and the strict decoder (a real
    /// U+FFFD, '&', '=', '+' included); bytes that are not UTF-8 do not.
    #[test]
    fn form_decoding_round_trips_every_string(v in ".{0,40}", bad in 0x80u8..=0xff) {
        let enc: String = form_urlencoded::byte_serialize(v.as_bytes()).collect();
        prop_assert_eq!(syncaroo_shared::http_util::form_decode(&enc).unwrap(), v);
        let lone = format!("%{:02X}", bad);
        prop_assert!(syncaroo_shared::http_util::form_decode(&lone).is_err());
    }

    /// Any bytes: parsed or refused with a clear error, never a panic.
    #[test]
    fn arbitrary_parameter_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Params::parse(&raw);
    }

    /// A numeric connectionId is one connection in every form: with leading
    /// zeros, from a JSON number or a JSON string, in a query string.
    #[test]
    fn numeric_connection_ids_have_one_canonical_form(n in any::<u64>(), zeros in 0usize..5) {
        let plain = ConnectionId::parse(&n.to_string()).unwrap();
        let padded = ConnectionId::parse(&format!("{}{n}", "0".repeat(zeros))).unwrap();
        prop_assert_eq!(&plain, &padded);
        let from_number: ConnectionId = serde_json::from_value(json!(n)).unwrap();
        let from_string: ConnectionId = serde_json::from_value(json!(n.to_string())).unwrap();
        prop_assert_eq!(&plain, &from_number);
        prop_assert_eq!(&plain, &from_string);
        prop_assert_eq!(serde_json::to_value(&plain).unwrap(), json!(n));
    }

    #[test]
    fn connection_ids_outside_the_alphabet_are_refused(s in ".{0,140}") {
        let ok = !s.trim().is_empty()
            && s.trim().len() <= 128
            && s.trim().bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        prop_assert_eq!(ConnectionId::parse(&s).is_ok(), ok, "{:?}", s);
    }

    /// The webhook schema: well-formed bodies parse with their fields;
    /// anything else is refused, never a panic.
    #[test]
    fn webhooks_of_the_guides_shape_parse(
        conn in 1u64..1_000_000,
        loc in "[A-Za-z0-9-]{1,20}",
        attr in prop_oneof![Just("locations"), Just("resources"), Just("rates")],
        resource in proptest::option::of("[0-9]{1,8}"),
        extra in ".{0,20}",
    ) {
        let mut meta = json!({"attributeType": attr, "apiUrl": "https://api.syncaroo.com/v1/x", "extra": extra});
        if let Some(r) = &resource {
            meta["resourceId"] = json!(r);
        }
        let body = json!({"connectionId": conn, "webhookType": "data", "locationId": loc, "metaData": meta});
        let hook = Webhook::parse(body.to_string().as_bytes()).unwrap();
        prop_assert_eq!(hook.connection_id.as_str(), conn.to_string());
        prop_assert_eq!(hook.location_id.as_str(), loc.as_str());
        let syncaroo_shared::webhook::WebhookKind::Data(change) = hook.kind else {
            panic!("a data webhook");
        };
        prop_assert_eq!(change.attribute.as_str(), attr);
        prop_assert_eq!(change.resource_id, resource);
    }

    #[test]
    fn arbitrary_webhook_bodies_never_panic(v in json_value(), raw in prop::collection::vec(any::<u8>(), 0..120)) {
        let _ = Webhook::parse(v.to_string().as_bytes());
        let _ = Webhook::parse(&raw);
    }

    /// Canonical JSON is a fixed point, ignores member order and
    /// whitespace, and parses back to the same value (numbers as doubles).
    #[test]
    fn canonical_json_is_stable(v in json_value()) {
        let c = canonicalize(&v);
        let back: Value = serde_json::from_str(&c).unwrap();
        prop_assert_eq!(&canonicalize(&back), &c);
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        let reparsed: Value = serde_json::from_str(&pretty).unwrap();
        prop_assert_eq!(canonicalize(&reparsed), c);
    }

    /// The guide's `YYYY-MM-DDTHH:MM:SS`, against chrono, years 0001-9999.
    #[test]
    fn guide_datetime_matches_chrono(secs in -62_135_596_800i64..253_402_300_799i64) {
        let theirs = chrono::DateTime::from_timestamp(secs, 0).unwrap().format("%Y-%m-%dT%H:%M:%S").to_string();
        prop_assert_eq!(guide_datetime(secs), theirs);
    }
}
