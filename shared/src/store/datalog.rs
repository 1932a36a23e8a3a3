//! A user's data log: the order in which a user's sync targets were
//! stored, so the platform reads its users' synced data with an exact
//! cursor (`GET /api/platform/users/{userId}/data`).
//!
//! The rule that keeps the order exact: every store of a target's data
//! takes the next number of its user's log in the same transaction that
//! writes the data, on condition that the log's counter is still the number
//! read before (`seq = n`, set to `n + 1`). Two stores of one user's data
//! therefore commit one after the other, each with a number larger than
//! every number committed before it, and a number is visible exactly when
//! its data is. A reader reads the log after its cursor with a consistent
//! read: whatever it does not see yet commits later, with a larger number,
//! so it comes after the cursor the reader hands back. No index is
//! involved, so there is no index lag to wait out, no clock to trust and
//! no settle window.
//!
//! The log holds one entry per target: a store deletes the target's
//! previous entry in the same transaction, so a target stored again moves
//! to the end, and a reader finds it again after its cursor, with the new
//! data. An entry whose target has moved on between the reader's two reads
//! (the log, then the data) is passed over: it is found again at its new
//! place, so nothing is repeated or skipped.
//!
//! The counter carries a random epoch, made when the log is first written;
//! the cursor names it. An erased user's log is deleted with the counter,
//! so a later log has another epoch, and a cursor from before the erasure
//! reads the new log from its beginning instead of skipping its first
//! entries.

use crate::error::Error;
use crate::http_util::Params;
use crate::model::{ConnectionId, UserId};
use crate::store::{SyncTarget, SyncedData};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Where a read of a user's log starts: after entry `seq` of the log whose
/// epoch is `epoch` (`seq` 0: from the beginning).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogCursor {
    pub epoch: String,
    pub seq: u64,
}

impl LogCursor {
    /// The cursor as the platform holds it: opaque (base64url of
    /// `1.<epoch>.<seq>`).
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("1.{}.{}", self.epoch, self.seq))
    }

    /// A cursor this bundle handed out; anything else is a 400.
    pub fn decode(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidRequest("cursor is not one this API handed out".into());
        let raw = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let mut parts = raw.splitn(3, '.');
        let (Some("1"), Some(epoch), Some(seq)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let seq = seq.parse::<u64>().map_err(|_| bad())?;
        if !epoch
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad());
        }
        Ok(Self {
            epoch: epoch.to_string(),
            seq,
        })
    }

    /// The last entry already read in the log whose epoch is `epoch`: the
    /// cursor's, when it was handed out by that log; else none (0).
    pub fn position_in(&self, epoch: &str) -> u64 {
        if self.epoch == epoch {
            self.seq
        } else {
            0
        }
    }
}

/// Which targets a read returns, by resource.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ResourceFilter {
    #[default]
    Any,
    /// Only targets of a whole location (no resource id): asked for with
    /// its own parameter, so no resource id can mean it.
    LocationLevel,
    Resource(String),
}

/// Which targets a read returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataFilter {
    pub connection: Option<ConnectionId>,
    pub location: Option<String>,
    pub attribute_type: Option<String>,
    pub resource: ResourceFilter,
}

impl DataFilter {
    pub fn matches(&self, t: &SyncTarget) -> bool {
        self.connection
            .as_ref()
            .is_none_or(|c| c == &t.connection_id)
            && self.location.as_ref().is_none_or(|l| l == &t.location_id)
            && self
                .attribute_type
                .as_ref()
                .is_none_or(|a| a == &t.attribute_type)
            && match &self.resource {
                ResourceFilter::Any => true,
                ResourceFilter::LocationLevel => t.resource_id.is_none(),
                ResourceFilter::Resource(r) => t.resource_id.as_deref() == Some(r.as_str()),
            }
    }
}

/// The data route's filter parameters.
pub const FILTER_PARAMS: [&str; 5] = [
    "connectionId",
    "locationId",
    "attributeType",
    "resourceId",
    "locationLevel",
];

impl DataFilter {
    /// The filter that reads exactly `t`.
    pub fn target(t: &SyncTarget) -> Self {
        Self {
            connection: Some(t.connection_id.clone()),
            location: Some(t.location_id.clone()),
            attribute_type: Some(t.attribute_type.clone()),
            resource: match &t.resource_id {
                Some(r) => ResourceFilter::Resource(r.clone()),
                None => ResourceFilter::LocationLevel,
            },
        }
    }

    /// The filter a query asks for ([`FILTER_PARAMS`]); `resourceId` and
    /// `locationLevel=true` together, or another `locationLevel`, are a
    /// 400.
    pub fn from_query(q: &Params) -> Result<Self, Error> {
        let text = |name: &str| -> Result<Option<String>, Error> {
            match q.one_of(&[name])? {
                Some("") => Err(Error::InvalidRequest(format!("{name} is empty"))),
                v => Ok(v.map(str::to_string)),
            }
        };
        let resource = match (text("resourceId")?, q.one_of(&["locationLevel"])?) {
            (None, None) => ResourceFilter::Any,
            (Some(r), None) => ResourceFilter::Resource(r),
            (None, Some("true")) => ResourceFilter::LocationLevel,
            (None, Some(_)) => {
                return Err(Error::InvalidRequest(
                    "locationLevel takes only true".into(),
                ))
            }
            (Some(_), Some(_)) => {
                return Err(Error::InvalidRequest(
                    "resourceId and locationLevel ask for different targets: send one".into(),
                ))
            }
        };
        Ok(Self {
            connection: q
                .one_of(&["connectionId"])?
                .map(ConnectionId::parse)
                .transpose()?,
            location: text("locationId")?,
            attribute_type: text("attributeType")?,
            resource,
        })
    }

    /// As the data route's query ([`Self::from_query`] reads it back).
    pub fn to_query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(c) = &self.connection {
            q.append_pair("connectionId", c.as_str());
        }
        if let Some(l) = &self.location {
            q.append_pair("locationId", l);
        }
        if let Some(a) = &self.attribute_type {
            q.append_pair("attributeType", a);
        }
        match &self.resource {
            ResourceFilter::Any => {}
            ResourceFilter::LocationLevel => {
                q.append_pair("locationLevel", "true");
            }
            ResourceFilter::Resource(r) => {
                q.append_pair("resourceId", r);
            }
        }
        q.finish()
    }
}

/// A path segment's reserved characters, percent-encoded (RFC 3986's
/// unreserved characters stay).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The platform API's data route narrowed to one target (relative to the
/// API's base URL): where the platform reads the records of a `Data
/// Synced` entry too large to carry them.
pub fn data_path(user: &UserId, t: &SyncTarget) -> String {
    let route = crate::routes::path(crate::routes::Endpoint::PlatformUserData);
    let user = percent_encoding::utf8_percent_encode(user.as_str(), SEGMENT).to_string();
    format!(
        "{}?{}",
        route.replace("{userId}", &user),
        DataFilter::target(t).to_query()
    )
}

/// One read of a user's log.
#[derive(Debug, Clone)]
pub struct DataRead {
    pub after: LogCursor,
    /// At most this many items.
    pub limit: usize,
    pub filter: DataFilter,
}

/// What a page's items may weigh together, as the response carries them
/// (JSON-escaped inside Lambda's response): under Lambda's 6 MB response
/// limit with room for the envelope. A page's first item is always taken
/// (a target holds at most 3 MB), so every read makes progress.
pub const PAGE_BUDGET_BYTES: usize = 5 * 1024 * 1024;

/// Log entries one read examines at most: filtered-out entries cost a read
/// each too, so a narrow filter over a long log answers in time, with
/// `has_more` and a cursor past what it examined.
pub const MAX_EXAMINED: usize = 5_000;

/// A page of a user's synced data.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPage {
    pub items: Vec<SyncedData>,
    /// Where the next read starts: past every entry this read examined.
    pub cursor: LogCursor,
    /// Entries after the cursor may exist: read again. `false`: everything
    /// stored up to this read was returned.
    pub has_more: bool,
}

/// The bytes `data` takes inside a Lambda response: a JSON body travels as
/// a JSON string, so each `"` and `\` gains a backslash, and a control
/// byte becomes a two-character escape (`\n`, `\t`, ...) or `\u00XX`.
pub fn escaped_len(data: &str) -> usize {
    data.bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

/// A page being filled, entry by entry, in log order: both stores build
/// their pages through it, so the cursor rule is written once.
#[derive(Debug)]
pub struct PageBuilder {
    limit: usize,
    epoch: String,
    seq: u64,
    items: Vec<SyncedData>,
    bytes: usize,
    examined: usize,
    full: bool,
    /// An item was offered and not taken: it comes next.
    refused: bool,
}

impl PageBuilder {
    /// A page of `read` in the log whose epoch is `epoch`.
    pub fn new(read: &DataRead, epoch: &str) -> Self {
        Self {
            limit: read.limit.max(1),
            epoch: epoch.to_string(),
            seq: read.after.position_in(epoch),
            items: Vec::new(),
            bytes: 0,
            examined: 0,
            full: false,
            refused: false,
        }
    }

    /// The last entry read: the log is read after it.
    pub fn after(&self) -> u64 {
        self.seq
    }

    /// No more entries are taken: the limit, the byte budget or the
    /// examined-entries bound is reached.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Entry `seq` yields no item (filtered out, its target moved on or
    /// gone): the cursor passes it.
    pub fn pass(&mut self, seq: u64) {
        debug_assert!(seq > self.seq);
        self.seq = seq;
        self.examined += 1;
        self.full |= self.examined >= MAX_EXAMINED;
    }

    /// Offers entry `seq`'s item. Not taken (and the page full) when it
    /// would carry the page past its byte budget; the cursor then stays
    /// before it, so the next read starts with it.
    pub fn offer(&mut self, seq: u64, item: SyncedData) {
        let size = escaped_len(&item.data) + 512;
        if !self.items.is_empty() && self.bytes + size > PAGE_BUDGET_BYTES {
            self.full = true;
            self.refused = true;
            return;
        }
        self.bytes += size;
        self.items.push(item);
        self.pass(seq);
        self.full |= self.items.len() >= self.limit;
    }

    /// How many more items the page takes at most.
    pub fn room(&self) -> usize {
        self.limit - self.items.len()
    }

    /// The page; `unread` says whether entries after the last one offered
    /// are known to exist (or may: the store's page ended with more).
    pub fn finish(self, unread: bool) -> DataPage {
        let has_more = unread || self.refused;
        DataPage {
            items: self.items,
            cursor: LogCursor {
                epoch: self.epoch,
                seq: self.seq,
            },
            has_more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(len: usize) -> SyncedData {
        SyncedData {
            target: SyncTarget {
                connection_id: ConnectionId::parse("99").unwrap(),
                location_id: "1198".into(),
                attribute_type: "rates".into(),
                resource_id: None,
            },
            user: crate::model::UserId::parse("u1").unwrap(),
            data: format!("[\"{}\"]", "x".repeat(len)),
            pages: 1,
            fetched_at_ms: 1,
            stored_at_ms: 2,
            event_id: "e".into(),
            deleted: false,
            connection_gen: None,
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = LogCursor {
            epoch: "AbC-_9".into(),
            seq: 42,
        };
        assert_eq!(LogCursor::decode(&c.encode()).unwrap(), c);
        let start = LogCursor::default();
        assert_eq!(LogCursor::decode(&start.encode()).unwrap(), start);
        for bad in [
            "",
            "!!",
            &URL_SAFE_NO_PAD.encode("2.e.1"),
            &URL_SAFE_NO_PAD.encode("1.e.-1"),
            &URL_SAFE_NO_PAD.encode("1.e"),
            &URL_SAFE_NO_PAD.encode("1.e#.1"),
        ] {
            assert!(
                matches!(LogCursor::decode(bad), Err(Error::InvalidRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_cursor_of_another_epoch_reads_from_the_beginning() {
        let c = LogCursor {
            epoch: "old".into(),
            seq: 9,
        };
        assert_eq!(c.position_in("old"), 9);
        assert_eq!(c.position_in("new"), 0);
    }

    #[test]
    fn the_escaped_length_is_what_serde_json_writes() {
        for s in [
            "[]",
            r#"[{"a":"b\"c"}]"#,
            "[\"\\\\\"]",
            "[1,\n2]",
            "[1,\u{1}\t2]",
        ] {
            let as_string = serde_json::to_string(s).unwrap();
            assert_eq!(escaped_len(s) + 2, as_string.len(), "{s}");
        }
    }

    #[test]
    fn a_page_stops_at_its_limit_and_its_budget_but_always_takes_one() {
        let read = DataRead {
            after: LogCursor::default(),
            limit: 2,
            filter: DataFilter::default(),
        };
        let mut p = PageBuilder::new(&read, "e");
        p.pass(1);
        p.offer(2, item(10));
        assert!(!p.is_full());
        p.offer(3, item(10));
        assert!(p.is_full());
        let page = p.finish(true);
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.cursor.seq, 3);

        let read = DataRead { limit: 100, ..read };
        let mut p = PageBuilder::new(&read, "e");
        p.offer(1, item(3 * 1024 * 1024));
        assert!(!p.is_full(), "the first item is taken whatever it weighs");
        p.offer(2, item(3 * 1024 * 1024));
        assert!(p.is_full());
        let page = p.finish(true);
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.cursor.seq, 1, "the item not taken comes next");
    }

    #[test]
    fn a_data_path_reads_back_as_its_target_only() {
        let mut t = item(1).target;
        t.location_id = "a b&c=d#".into();
        t.resource_id = Some("r/1?x".into());
        let user = UserId::parse("u 1/é").unwrap();
        let path = data_path(&user, &t);
        let url = url::Url::parse(&format!("https://api.example{path}")).unwrap();
        assert_eq!(
            url.path(),
            "/api/platform/users/u%201%2F%C3%A9/data",
            "the user id is one segment"
        );
        let req = http::Request::get(path).body(bytes::Bytes::new()).unwrap();
        let q = Params::from_query(&req).unwrap();
        let f = DataFilter::from_query(&q).unwrap();
        assert_eq!(f, DataFilter::target(&t));
        assert!(f.matches(&t));
        let location_level = SyncTarget {
            resource_id: None,
            ..t.clone()
        };
        assert!(!f.matches(&location_level));
        assert!(data_path(&user, &location_level).ends_with("&locationLevel=true"));
    }

    #[test]
    fn a_filter_refuses_what_it_cannot_mean() {
        for query in [
            "resourceId=r&locationLevel=true",
            "locationLevel=yes",
            "locationId=",
            "connectionId=a%20b",
        ] {
            let req = http::Request::get(format!("/x?{query}"))
                .body(bytes::Bytes::new())
                .unwrap();
            let q = Params::from_query(&req).unwrap();
            assert!(
                matches!(DataFilter::from_query(&q), Err(Error::InvalidRequest(_))),
                "{query}"
            );
        }
    }

    #[test]
    fn filters_tell_location_level_targets_from_resources() {
        let mut t = item(1).target;
        let f = |resource| DataFilter {
            resource,
            ..DataFilter::default()
        };
        assert!(f(ResourceFilter::LocationLevel).matches(&t));
        assert!(!f(ResourceFilter::Resource("-".into())).matches(&t));
        t.resource_id = Some("-".into());
        assert!(!f(ResourceFilter::LocationLevel).matches(&t));
        assert!(f(ResourceFilter::Resource("-".into())).matches(&t));
        assert!(f(ResourceFilter::Any).matches(&t));
    }
}
