//! Grants: codes, tokens, token families and connections.

use crate::error::Error;
use crate::model::{AuthCodeRecord, Connection, ConnectionId, TokenRecord, UserId};
use async_trait::async_trait;

/// Redeem a code and issue its first tokens, in one atomic step.
#[derive(Debug, Clone)]
pub struct CodeRedemption {
    pub code_hash: String,
    pub client_id: String,
    /// Present when the token request carried one: must then match.
    pub redirect_uri: Option<String>,
    pub connection_id: ConnectionId,
    pub user_id: UserId,
    pub family: String,
    pub now: i64,
    pub access: TokenRecord,
    pub refresh: TokenRecord,
}

#[derive(Debug)]
pub enum RedeemError {
    NotFound,
    Expired,
    /// Issued to another client, redirect URI or connection.
    Mismatch,
    /// Already redeemed: the caller revokes `family` and `tokens`.
    Replayed {
        family: String,
        tokens: Vec<String>,
    },
    Store(Error),
}

/// Exchange a refresh token for a new pair, in one atomic step.
#[derive(Debug, Clone)]
pub struct RefreshRotation {
    pub old_hash: String,
    pub client_id: String,
    pub family: String,
    pub now: i64,
    /// A refresh token first used after this instant may be used again
    /// (a client's network retry); one used earlier is a replay.
    pub grace_floor: i64,
    pub access: TokenRecord,
    pub refresh: TokenRecord,
}

#[derive(Debug)]
pub enum RotateError {
    NotFound,
    Expired,
    Revoked,
    Mismatch,
    /// Used before, outside the grace window: the caller revokes `family`.
    Reused {
        family: String,
    },
    Store(Error),
}

/// Why a consent form is refused the second time.
pub const FORM_USED: &str = "this consent form was already used: start again from Syncaroo";

/// Codes, tokens and connections: every step of the connect flow.
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Stores a new code and binds the connection to the user (as pending)
    /// atomically. A connection already bound to another user is a
    /// [`Error::Conflict`] and nothing is written. A revoked connection
    /// starts afresh: pending, its revocation and confirmation times
    /// cleared, its ended families still refused.
    async fn begin_authorization(&self, code: &AuthCodeRecord, now: i64) -> Result<(), Error> {
        self.begin_authorization_from(code, None, now).await
    }

    /// [`Self::begin_authorization`] from a consent form (`form`: the keyed
    /// hash of its CSRF token), in the same single write: a form already
    /// used is an [`Error::InvalidRequest`] and nothing is written.
    async fn begin_authorization_from(
        &self,
        code: &AuthCodeRecord,
        form: Option<&str>,
        now: i64,
    ) -> Result<(), Error>;

    /// Consumes the code, stores both tokens and marks the connection
    /// authorized: all or nothing, and only once per code.
    async fn redeem_code(&self, r: &CodeRedemption) -> Result<(), RedeemError>;

    /// Marks the old refresh token used and stores the new pair: all or
    /// nothing; refused for a revoked family. A repeat inside the grace
    /// window with the same successors (they are derived from the old
    /// token) succeeds and leaves the stored pair as it is.
    async fn rotate_refresh(&self, r: &RefreshRotation) -> Result<(), RotateError>;

    /// Revokes every token of a family (plus `known` hashes, which may not
    /// be indexed yet) and refuses the family's refresh tokens from now on.
    async fn revoke_family(&self, family: &str, known: &[String], now: i64) -> Result<(), Error>;

    /// A token by its keyed hash, read strongly consistent.
    async fn get_token(&self, hash: &str) -> Result<Option<TokenRecord>, Error>;

    /// A token and the connection it is presented for, read together and
    /// strongly consistent (one request on DynamoDB): what every bearer
    /// check needs to refuse a revoked connection's tokens at once.
    async fn get_token_and_connection(
        &self,
        hash: &str,
        connection: &ConnectionId,
    ) -> Result<(Option<TokenRecord>, Option<Connection>), Error> {
        let (t, c) = tokio::join!(self.get_token(hash), self.get_connection(connection));
        Ok((t?, c?))
    }

    async fn get_connection(&self, id: &ConnectionId) -> Result<Option<Connection>, Error>;

    /// Marks the connection confirmed (idempotent: the first time is kept);
    /// `true` when this call confirmed it first. A revoked connection, or a
    /// token `family` a revocation ended, is an [`Error::InvalidToken`].
    async fn confirm_connection(
        &self,
        id: &ConnectionId,
        user: &UserId,
        family: &str,
        now: i64,
    ) -> Result<bool, Error>;

    /// Connections, oldest id first: one user's, or all (a page of at most
    /// `limit` after `after`, the last id of the previous page).
    async fn list_connections(
        &self,
        user: Option<&UserId>,
        after: Option<&ConnectionId>,
        limit: usize,
    ) -> Result<(Vec<ConnectionInfo>, Option<ConnectionId>), Error>;

    /// Marks the connection revoked and every token family it had as ended
    /// (in the connection's own item, in that one write), so each of its
    /// tokens is refused from now on by every check that reads the
    /// connection, and a code issued before cannot be redeemed. A later
    /// consent starts it afresh with a new family. `None`: no such
    /// connection.
    async fn revoke_connection(
        &self,
        id: &ConnectionId,
        now: i64,
    ) -> Result<Option<Connection>, Error>;
}

/// A connection as the platform API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub connection: Connection,
    /// When its latest webhook (data or status) arrived, in milliseconds.
    pub last_webhook_at_ms: Option<i64>,
}
