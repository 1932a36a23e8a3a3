//! Transactions whose steps have names. DynamoDB answers a cancelled
//! `TransactWriteItems` with one reason per step, in the order the steps
//! were sent; reading them by position (`reasons.get(3)`) would silently
//! read another step's reason once a step is added or moved. Each step here
//! carries a role (an enum per transaction), and a cancellation is read by
//! role.

use super::item::{failed_condition, unexpected_cancellation};
use super::DynamoStore;
use crate::error::Error;
use aws_sdk_dynamodb::types::{CancellationReason, TransactWriteItem};

/// The steps of one transaction, each under its role `R`.
pub(super) struct Tx<R> {
    steps: Vec<(R, TransactWriteItem)>,
}

impl<R: Copy + PartialEq + std::fmt::Debug> Tx<R> {
    pub(super) fn new() -> Self {
        Self { steps: Vec::new() }
    }

    pub(super) fn step(mut self, role: R, item: TransactWriteItem) -> Self {
        self.steps.push((role, item));
        self
    }

    /// A step only some runs have (e.g. a form's single use).
    pub(super) fn maybe(self, role: R, item: Option<TransactWriteItem>) -> Self {
        match item {
            Some(i) => self.step(role, i),
            None => self,
        }
    }
}

/// Why DynamoDB cancelled a transaction: each step's reason, by role.
#[derive(Debug)]
pub(super) struct Cancelled<R> {
    reasons: Vec<(R, CancellationReason)>,
}

impl<R: Copy + PartialEq + std::fmt::Debug> Cancelled<R> {
    /// The reason of step `role` when its condition failed (with the old
    /// item, when the step asked for it); `None` when it did not fail (or
    /// the transaction had no such step).
    pub(super) fn failed(&self, role: R) -> Option<&CancellationReason> {
        self.reasons
            .iter()
            .find(|(r, reason)| *r == role && failed_condition(reason))
            .map(|(_, reason)| reason)
    }

    /// Whether the condition of any of `roles` failed.
    pub(super) fn any_failed(&self, roles: &[R]) -> bool {
        roles.iter().any(|r| self.failed(*r).is_some())
    }

    /// A cancellation the caller does not expect, as a store error:
    /// transient when every reason passes by itself, permanent otherwise.
    pub(super) fn unexpected(&self, what: &str) -> Error {
        let reasons: Vec<CancellationReason> =
            self.reasons.iter().map(|(_, r)| r.clone()).collect();
        unexpected_cancellation(what, &reasons)
    }
}

impl DynamoStore {
    /// Runs `tx`: `Ok(Ok(()))` when it committed, `Ok(Err(cancelled))` when
    /// DynamoDB cancelled it (its reasons by role), `Err` for any other
    /// failure (after the SDK's retries, conflicts included).
    pub(super) async fn run<R: Copy + PartialEq + std::fmt::Debug>(
        &self,
        tx: Tx<R>,
    ) -> Result<Result<(), Cancelled<R>>, Error> {
        let (roles, items): (Vec<R>, Vec<TransactWriteItem>) = tx.steps.into_iter().unzip();
        Ok(self.transact(items).await?.map_err(|reasons| Cancelled {
            reasons: roles.into_iter().zip(reasons).collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Role {
        First,
        Second,
        Third,
    }

    fn reason(code: &str) -> CancellationReason {
        CancellationReason::builder().code(code).build()
    }

    #[test]
    fn a_cancellation_is_read_by_role_not_position() {
        let c = Cancelled {
            reasons: vec![
                (Role::First, reason("None")),
                (Role::Third, reason("ConditionalCheckFailed")),
            ],
        };
        assert!(c.failed(Role::First).is_none());
        assert!(c.failed(Role::Second).is_none(), "no such step");
        assert!(c.failed(Role::Third).is_some());
        assert!(c.any_failed(&[Role::Second, Role::Third]));
        assert!(!c.any_failed(&[Role::First, Role::Second]));
    }

    #[test]
    fn unexpected_reasons_are_transient_only_when_they_pass_by_themselves() {
        let conflict = Cancelled {
            reasons: vec![
                (Role::First, reason("TransactionConflict")),
                (Role::Second, reason("None")),
            ],
        };
        assert_eq!(conflict.unexpected("x").status(), 503);
        let invalid = Cancelled {
            reasons: vec![(Role::First, reason("ValidationError"))],
        };
        assert_eq!(invalid.unexpected("x").status(), 500);
    }
}
