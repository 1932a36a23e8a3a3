//! Codes, tokens, token families and connections.

use super::{CodeState, MemoryStore};
use crate::error::Error;
use crate::model::{
    AuthCodeRecord, Connection, ConnectionId, ConnectionStatus, TokenKind, TokenRecord, UserId,
};
use crate::store::grants::FORM_USED;
use crate::store::{
    CodeRedemption, ConnectionInfo, GrantStore, RedeemError, RefreshRotation, RotateError,
};
use async_trait::async_trait;

#[async_trait]
impl GrantStore for MemoryStore {
    async fn begin_authorization_from(
        &self,
        code: &AuthCodeRecord,
        form: Option<&str>,
        now: i64,
    ) -> Result<(), Error> {
        let mut g = self.lock();
        if form.is_some_and(|f| g.used_forms.contains_key(f)) {
            return Err(Error::InvalidRequest(FORM_USED.into()));
        }
        if let Some(c) = g.connections.get(&code.connection_id) {
            if c.user_id != code.user_id {
                return Err(Error::Conflict(
                    "this Syncaroo connection is linked to another account".into(),
                ));
            }
        }
        if g.codes.contains_key(&code.hash) {
            return Err(Error::store("code hash collision"));
        }
        if let Some(f) = form {
            g.used_forms
                .insert(f.to_string(), code.connection_id.clone());
        }
        g.codes.insert(
            code.hash.clone(),
            CodeState {
                record: code.clone(),
                consumed: false,
                tokens: vec![],
            },
        );
        let conn = g
            .connections
            .entry(code.connection_id.clone())
            .or_insert_with(|| Connection {
                id: code.connection_id.clone(),
                user_id: code.user_id.clone(),
                client_id: code.client_id.clone(),
                status: ConnectionStatus::Pending,
                created_at: now,
                confirmed_at: None,
                revoked_at: None,
                revoked_families: vec![],
                generation: crate::crypto::random_b64(12),
            });
        // A consent after a revocation starts the connection afresh; the
        // families the revocation ended stay ended.
        if conn.status == ConnectionStatus::Revoked {
            conn.status = ConnectionStatus::Pending;
            conn.confirmed_at = None;
            conn.revoked_at = None;
            conn.generation = crate::crypto::random_b64(12);
        }
        Ok(())
    }

    async fn redeem_code(&self, r: &CodeRedemption) -> Result<(), RedeemError> {
        let mut g = self.lock();
        let Some(state) = g.codes.get_mut(&r.code_hash) else {
            return Err(RedeemError::NotFound);
        };
        if state.consumed {
            return Err(RedeemError::Replayed {
                family: state.record.family.clone(),
                tokens: state.tokens.clone(),
            });
        }
        if state.record.expires_at <= r.now {
            return Err(RedeemError::Expired);
        }
        let rec = &state.record;
        if rec.client_id != r.client_id
            || rec.connection_id != r.connection_id
            || rec.user_id != r.user_id
            || rec.family != r.family
            || r.redirect_uri
                .as_ref()
                .is_some_and(|u| u != &rec.redirect_uri)
        {
            return Err(RedeemError::Mismatch);
        }
        match g.connections.get(&r.connection_id) {
            Some(c) if c.user_id == r.user_id && c.accepts(&r.family) => {}
            _ => return Err(RedeemError::Mismatch),
        }
        // A code issued before its connection was revoked is dead too.
        if g.revoked_families.contains(&r.family) {
            return Err(RedeemError::NotFound);
        }
        let state = g.codes.get_mut(&r.code_hash).expect("checked above");
        state.consumed = true;
        state.tokens = vec![r.access.hash.clone(), r.refresh.hash.clone()];
        g.tokens.insert(r.access.hash.clone(), r.access.clone());
        g.tokens.insert(r.refresh.hash.clone(), r.refresh.clone());
        let conn = g
            .connections
            .get_mut(&r.connection_id)
            .expect("checked above");
        conn.status = ConnectionStatus::Authorized;
        Ok(())
    }

    async fn rotate_refresh(&self, r: &RefreshRotation) -> Result<(), RotateError> {
        let mut g = self.lock();
        if g.revoked_families.contains(&r.family) {
            return Err(RotateError::Revoked);
        }
        let Some(old) = g.tokens.get(&r.old_hash) else {
            return Err(RotateError::NotFound);
        };
        if old.kind != TokenKind::Refresh || old.client_id != r.client_id || old.family != r.family
        {
            return Err(RotateError::Mismatch);
        }
        if !g
            .connections
            .get(&old.connection_id)
            .is_some_and(|c| c.accepts(&r.family))
        {
            return Err(RotateError::Revoked);
        }
        if old.revoked {
            return Err(RotateError::Revoked);
        }
        if old.expires_at <= r.now {
            return Err(RotateError::Expired);
        }
        if let Some(used) = old.used_at {
            if used <= r.grace_floor {
                return Err(RotateError::Reused {
                    family: old.family.clone(),
                });
            }
        }
        let old = g.tokens.get_mut(&r.old_hash).expect("checked above");
        old.used_at.get_or_insert(r.now);
        // Never over an existing token: an identical rotation inside the
        // grace window made these very successors already.
        g.tokens
            .entry(r.access.hash.clone())
            .or_insert_with(|| r.access.clone());
        g.tokens
            .entry(r.refresh.hash.clone())
            .or_insert_with(|| r.refresh.clone());
        Ok(())
    }

    async fn revoke_family(&self, family: &str, known: &[String], _now: i64) -> Result<(), Error> {
        let mut g = self.lock();
        g.revoked_families.insert(family.to_string());
        for t in g.tokens.values_mut() {
            if t.family == family || known.contains(&t.hash) {
                t.revoked = true;
            }
        }
        Ok(())
    }

    async fn get_token(&self, hash: &str) -> Result<Option<TokenRecord>, Error> {
        Ok(self.lock().tokens.get(hash).cloned())
    }

    async fn get_connection(&self, id: &ConnectionId) -> Result<Option<Connection>, Error> {
        Ok(self.lock().connections.get(id).cloned())
    }

    async fn confirm_connection(
        &self,
        id: &ConnectionId,
        user: &UserId,
        family: &str,
        now: i64,
    ) -> Result<bool, Error> {
        let mut g = self.lock();
        match g.connections.get_mut(id) {
            Some(c) if &c.user_id == user && c.accepts(family) => {
                c.status = ConnectionStatus::Confirmed;
                let first = c.confirmed_at.is_none();
                c.confirmed_at.get_or_insert(now);
                Ok(first)
            }
            _ => Err(Error::InvalidToken(
                "the connection is not linked to this token".into(),
            )),
        }
    }

    async fn list_connections(
        &self,
        user: Option<&UserId>,
        after: Option<&ConnectionId>,
        limit: usize,
    ) -> Result<(Vec<ConnectionInfo>, Option<ConnectionId>), Error> {
        let mut all: Vec<Connection> = self
            .lock()
            .connections
            .values()
            .filter(|c| user.is_none_or(|u| &c.user_id == u))
            .filter(|c| after.is_none_or(|a| c.id.as_str() > a.as_str()))
            .cloned()
            .collect();
        all.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        let more = all.len() > limit;
        let page: Vec<ConnectionInfo> = all
            .into_iter()
            .take(limit)
            .map(|c| ConnectionInfo {
                last_webhook_at_ms: self.last_webhook_ms(&c.id),
                connection: c,
            })
            .collect();
        let next = more
            .then(|| page.last().map(|c| c.connection.id.clone()))
            .flatten();
        Ok((page, next))
    }

    async fn revoke_connection(
        &self,
        id: &ConnectionId,
        now: i64,
    ) -> Result<Option<Connection>, Error> {
        let mut g = self.lock();
        let mut families: Vec<String> = g
            .codes
            .values()
            .filter(|c| &c.record.connection_id == id)
            .map(|c| c.record.family.clone())
            .collect();
        families.sort();
        families.dedup();
        let Some(c) = g.connections.get_mut(id) else {
            return Ok(None);
        };
        c.status = ConnectionStatus::Revoked;
        c.revoked_at.get_or_insert(now);
        c.revoked_families = families.clone();
        let out = c.clone();
        for f in families {
            g.revoked_families.insert(f);
        }
        for t in g.tokens.values_mut() {
            if &t.connection_id == id {
                t.revoked = true;
            }
        }
        Ok(Some(out))
    }
}
