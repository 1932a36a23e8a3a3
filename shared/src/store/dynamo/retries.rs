//! What the SDK retries for us beyond its standard classifiers: DynamoDB's
//! transaction conflicts. No retry loop of our own wraps a DynamoDB call.

use aws_sdk_dynamodb::config::interceptors::InterceptorContext;
use aws_sdk_dynamodb::config::retry::{
    ClassifyRetry, RetryAction, RetryConfig, RetryPartition, TokenBucket,
};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use std::time::Duration;

/// Two kinds of conflict, both retried as transient errors within the
/// client's retry policy:
///
/// - a single-item read or write that meets a transaction in flight on the
///   same item is answered `TransactionConflictException`, which AWS
///   recommends retrying and the SDK's standard classifier does not (it is
///   in neither its throttling nor its transient list; the fault matrix
///   found one such conflict failing a whole request);
/// - a `TransactWriteItems` cancelled only because another transaction was
///   in flight on its items (every reason `TransactionConflict` or `None`).
///   A cancellation with any other reason (a failed condition, a validation
///   error) is an answer, never retried.
#[derive(Debug)]
pub struct RetryTransactionConflict;

/// The `__type` suffix DynamoDB sends (`...#TransactionConflictException`).
const CONFLICT: &str = "#TransactionConflictException\"";

impl ClassifyRetry for RetryTransactionConflict {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let single_item = ctx.response().is_some_and(|r| {
            r.status().as_u16() == 400
                && r.body()
                    .bytes()
                    .is_some_and(|b| b.windows(CONFLICT.len()).any(|w| w == CONFLICT.as_bytes()))
        });
        let cancelled_by_conflict = match ctx.output_or_error() {
            Some(Err(e)) => e
                .as_operation_error()
                .and_then(|e| e.downcast_ref::<TransactWriteItemsError>())
                .is_some_and(only_conflicts),
            _ => false,
        };
        if single_item || cancelled_by_conflict {
            RetryAction::transient_error()
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "RetryTransactionConflict"
    }
}

/// A cancellation whose reasons are conflicts only (`None` marks the steps
/// that were fine).
fn only_conflicts(e: &TransactWriteItemsError) -> bool {
    let TransactWriteItemsError::TransactionCanceledException(c) = e else {
        return false;
    };
    let codes: Vec<&str> = c
        .cancellation_reasons()
        .iter()
        .map(|r| r.code().unwrap_or("None"))
        .collect();
    codes.contains(&"TransactionConflict")
        && codes
            .iter()
            .all(|c| matches!(*c, "TransactionConflict" | "None"))
}

/// The retry policy of `TransactWriteItems`: conflicts clear within
/// milliseconds (the other transaction commits), so more attempts with
/// short pauses than the client's default, on a partition of their own
/// with no retry quota: a burst of racing callers is not a struggling
/// service, and must not spend the quota other calls' retries need.
pub fn for_transactions() -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::Config::builder()
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(6)
                .with_initial_backoff(Duration::from_millis(10))
                .with_max_backoff(Duration::from_millis(400)),
        )
        .retry_partition(
            RetryPartition::custom("syncaroo-dynamodb-transactions")
                .token_bucket(TokenBucket::unlimited())
                .build(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_sdk_dynamodb::types::CancellationReason;

    fn cancelled(codes: &[&str]) -> TransactWriteItemsError {
        let reasons = codes
            .iter()
            .map(|c| CancellationReason::builder().code(*c).build())
            .collect();
        TransactWriteItemsError::TransactionCanceledException(
            TransactionCanceledException::builder()
                .set_cancellation_reasons(Some(reasons))
                .build(),
        )
    }

    #[test]
    fn only_a_cancellation_by_conflicts_alone_is_retried() {
        assert!(only_conflicts(&cancelled(&["None", "TransactionConflict"])));
        assert!(only_conflicts(&cancelled(&["TransactionConflict"])));
        assert!(!only_conflicts(&cancelled(&[
            "ConditionalCheckFailed",
            "TransactionConflict"
        ])));
        assert!(!only_conflicts(&cancelled(&["ValidationError", "None"])));
        assert!(!only_conflicts(&cancelled(&["None", "None"])));
    }
}
