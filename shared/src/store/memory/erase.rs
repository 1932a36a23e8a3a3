//! Erasing a user from the embedded store: the same kinds, in the same
//! order, as DynamoDB ([`crate::store::erase`]), under both locks (grants
//! first, then events, as everywhere).

use super::sync::{ev_lock, EventState};
use super::{Inner, MemoryStore};
use crate::error::Error;
use crate::model::{ConnectionId, UserId};
use crate::store::erase::{kind, Erased, ErasureStore};
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// A batch's allowance: what is left of its budget.
pub(super) struct Budget {
    left: usize,
    pub(super) out: Erased,
}

impl Budget {
    /// Removes from `map` up to the allowance of the keys `pick` selects,
    /// counted as `kind`.
    pub(super) fn take<K: Eq + Hash + Clone, V>(
        &mut self,
        kind: &'static str,
        map: &mut HashMap<K, V>,
        pick: impl Fn(&K, &V) -> bool,
    ) {
        let keys: Vec<K> = map
            .iter()
            .filter(|(k, v)| pick(k, v))
            .map(|(k, _)| k.clone())
            .collect();
        if keys.len() > self.left {
            self.out.cut_short = true;
        }
        let n = keys.len().min(self.left);
        for k in keys.into_iter().take(n) {
            map.remove(&k);
        }
        self.left -= n;
        self.out.add(kind, n as u64);
    }

    /// Counts `n` items removed as one unit (a partition), if it fits.
    pub(super) fn fits(&mut self, kind: &'static str, n: usize) -> bool {
        if n > self.left {
            self.out.cut_short = true;
            return false;
        }
        self.left -= n;
        self.out.add(kind, n as u64);
        true
    }
}

fn erase_grants(g: &mut Inner, conns: &HashSet<ConnectionId>, b: &mut Budget) {
    let mut families: HashSet<String> = g
        .codes
        .values()
        .filter(|c| conns.contains(&c.record.connection_id))
        .map(|c| c.record.family.clone())
        .collect();
    families.extend(
        g.tokens
            .values()
            .filter(|t| conns.contains(&t.connection_id))
            .map(|t| t.family.clone()),
    );
    b.take(kind::CODES, &mut g.codes, |_, c| {
        conns.contains(&c.record.connection_id)
    });
    b.take(kind::TOKENS, &mut g.tokens, |_, t| {
        conns.contains(&t.connection_id)
    });
    b.take(kind::CONSENT_FORMS, &mut g.used_forms, |_, c| {
        conns.contains(c)
    });
    let ended: Vec<String> = g
        .revoked_families
        .iter()
        .filter(|f| families.contains(*f))
        .cloned()
        .collect();
    let n = ended.len().min(b.left);
    if b.fits(kind::TOKEN_FAMILIES, n) {
        for f in ended.iter().take(n) {
            g.revoked_families.remove(f);
        }
    }
    b.out.cut_short |= n < ended.len();
}

#[async_trait]
impl ErasureStore for MemoryStore {
    async fn begin_erasure(&self, user: &UserId, now_ms: i64) -> Result<(i64, bool), Error> {
        let mut g = self.lock();
        let began = g.erasures.get(user).copied();
        let at = *g.erasures.entry(user.clone()).or_insert(now_ms);
        Ok((at, began.is_none()))
    }

    async fn erase_items(&self, user: &UserId, budget: usize) -> Result<Erased, Error> {
        let mut g = self.lock();
        let mut ev = ev_lock(&self.events);
        let conns: HashSet<ConnectionId> = g
            .connections
            .values()
            .filter(|c| &c.user_id == user)
            .map(|c| c.id.clone())
            .collect();
        let mut b = Budget {
            left: budget,
            out: Erased::default(),
        };
        erase_grants(&mut g, &conns, &mut b);
        EventState::erase(&mut ev, user, &conns, &mut b);
        let listed = g.listings.get(user).map_or(0, |l| l.len());
        if listed > 0 && b.fits(kind::LISTINGS, listed) {
            g.listings.remove(user);
        }
        if !b.out.cut_short {
            b.take(kind::CONNECTIONS, &mut g.connections, |_, c| {
                &c.user_id == user
            });
        }
        Ok(b.out)
    }

    async fn end_erasure(&self, user: &UserId) -> Result<bool, Error> {
        Ok(self.lock().erasures.remove(user).is_some())
    }
}
