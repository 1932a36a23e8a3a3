//! Erasing a user from the embedded store: the same kinds, in the same
//! order, as DynamoDB ([`crate::store::erase`]), under both locks (grants
//! first, then events, as everywhere).

use super::sync::{ev_lock, EventState};
use super::{Inner, MemoryStore};
use crate::error::Error;
use crate::model::{ConnectionId, UserId};
use crate::store::erase::{kind, Began, Erased, ErasureStore, Scope};
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

    /// Removes up to the allowance of `map`'s entries (the first, in
    /// order), counted as `kind`.
    pub(super) fn take_ordered<K: Ord + Clone, V>(
        &mut self,
        kind: &'static str,
        map: &mut std::collections::BTreeMap<K, V>,
    ) {
        if map.len() > self.left {
            self.out.cut_short = true;
        }
        let keys: Vec<K> = map.keys().take(self.left).cloned().collect();
        for k in &keys {
            map.remove(k);
        }
        self.left -= keys.len();
        self.out.add(kind, keys.len() as u64);
    }

    /// Counts one item removed, if the allowance holds it.
    pub(super) fn one(&mut self, kind: &'static str) -> bool {
        if self.left == 0 {
            self.out.cut_short = true;
            return false;
        }
        self.left -= 1;
        self.out.add(kind, 1);
        true
    }
}

fn erase_grants(g: &mut Inner, conns: &HashSet<ConnectionId>, b: &mut Budget) {
    // The families a revocation ended (the erasure revokes first) and any
    // a code or token still names.
    let mut families: HashSet<String> = g
        .connections
        .values()
        .filter(|c| conns.contains(&c.id))
        .flat_map(|c| c.revoked_families.iter().cloned())
        .collect();
    families.extend(
        g.codes
            .values()
            .filter(|c| conns.contains(&c.record.connection_id))
            .map(|c| c.record.family.clone()),
    );
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
    for f in ended {
        if b.one(kind::TOKEN_FAMILIES) {
            g.revoked_families.remove(&f);
        }
    }
}

#[async_trait]
impl ErasureStore for MemoryStore {
    async fn begin_erasure(
        &self,
        user: &UserId,
        now_ms: i64,
        connections: &[ConnectionId],
    ) -> Result<Began, Error> {
        let mut g = self.lock();
        let now = !g.erasures.contains_key(user);
        let (at_ms, seen) = g
            .erasures
            .entry(user.clone())
            .or_insert_with(|| (now_ms, Default::default()));
        seen.extend(connections.iter().cloned());
        Ok(Began {
            at_ms: *at_ms,
            now,
            connections: seen.iter().cloned().collect(),
        })
    }

    async fn erase_items(
        &self,
        user: &UserId,
        scope: &Scope<'_>,
        budget: usize,
    ) -> Result<Erased, Error> {
        let mut g = self.lock();
        let mut ev = ev_lock(&self.events);
        let mut conns: HashSet<ConnectionId> = g
            .connections
            .values()
            .filter(|c| &c.user_id == user)
            .map(|c| c.id.clone())
            .collect();
        conns.extend(scope.connections.iter().cloned());
        let mut b = Budget {
            left: budget,
            out: Erased::default(),
        };
        erase_grants(&mut g, &conns, &mut b);
        EventState::erase(&mut ev, user, &conns, &mut b);
        if let Some(listed) = g.listings.get_mut(user) {
            b.take_ordered(kind::LISTINGS, listed);
            if listed.is_empty() {
                g.listings.remove(user);
            }
        }
        if !b.out.cut_short && scope.connection_items {
            b.take(kind::CONNECTIONS, &mut g.connections, |_, c| {
                &c.user_id == user && scope.connections.contains(&c.id)
            });
        }
        Ok(b.out)
    }

    async fn end_erasure(&self, user: &UserId) -> Result<bool, Error> {
        Ok(self.lock().erasures.remove(user).is_some())
    }
}
