//! The named steps of the grant transactions (consent, code redemption,
//! refresh rotation), and what a cancelled redemption means.

use super::item::{get_bool, get_n, get_s};
use super::tx::Cancelled;
use crate::store::RedeemError;

/// The steps of a consent's transaction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Authz {
    /// The code's item.
    Code,
    /// The connection bound to the user (or started afresh).
    Connection,
    /// The consent form's single use.
    Form,
}

/// The steps of a code's redemption.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Redeem {
    /// The code consumed (its old item returned on failure).
    Consume,
    Access,
    Refresh,
    /// The connection still the code's user's and not revoked.
    Connection,
    /// The token family not revoked.
    Family,
}

/// The steps of a refresh token's rotation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Rotate {
    /// The token family not revoked.
    Family,
    /// The old refresh token marked used (its old item returned on failure).
    UseOld,
    Access,
    Refresh,
    /// The connection not revoked.
    Connection,
}

/// Why a redemption was refused, read from the steps that failed.
pub(super) fn redeem_refusal(cancelled: &Cancelled<Redeem>, now: i64) -> RedeemError {
    if let Some(code_reason) = cancelled.failed(Redeem::Consume) {
        let Some(old) = code_reason.item() else {
            return RedeemError::NotFound;
        };
        if get_bool(old, "consumed") {
            let tokens = old
                .get("tokens")
                .and_then(|v| v.as_l().ok())
                .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
                .unwrap_or_default();
            return RedeemError::Replayed {
                family: get_s(old, "family").unwrap_or_default().to_string(),
                tokens,
            };
        }
        if get_n(old, "expires_at").unwrap_or(0) <= now {
            return RedeemError::Expired;
        }
        return RedeemError::Mismatch;
    }
    if cancelled.failed(Redeem::Connection).is_some() {
        return RedeemError::Mismatch;
    }
    if cancelled.failed(Redeem::Family).is_some() {
        return RedeemError::NotFound;
    }
    RedeemError::Store(cancelled.unexpected("code redemption"))
}
