//! Attribute helpers every item group shares.

use crate::error::{Error, Fault};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason};
use std::collections::HashMap;

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
pub fn get_s<'a>(item: &'a Item, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}
pub fn get_n(item: &Item, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}
pub fn get_bool(item: &Item, k: &str) -> bool {
    item.get(k)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
}
pub fn key(pk: impl Into<String>, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// The error codes with which DynamoDB refuses a request it will refuse
/// again: the request, the table or the caller's rights are wrong.
const PERMANENT_CODES: &[&str] = &[
    "ValidationException",
    "ResourceNotFoundException",
    "AccessDeniedException",
    "ItemCollectionSizeLimitExceededException",
    "UnrecognizedClientException",
];

/// A failed DynamoDB call as a store fault, its cause kept as the source:
/// permanent for the codes above, transient otherwise (throttled, 5xx,
/// timed out, the connection lost: the SDK's retries were not enough).
pub fn store_err<E>(op: &str, e: E) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = format!("{op}: {}", DisplayErrorContext(&e));
    let fault = match e.code() {
        Some(c) if PERMANENT_CODES.contains(&c) => Fault::permanent(message),
        _ => Fault::transient(message),
    };
    Error::Store(fault.with_source(e))
}

/// A transaction DynamoDB cancelled for reasons the caller did not expect:
/// transient when every reason passes by itself (a conflict, throttling),
/// permanent otherwise (a validation error, an item too large).
pub(super) fn unexpected_cancellation(what: &str, reasons: &[CancellationReason]) -> Error {
    let codes: Vec<&str> = reasons.iter().map(|r| r.code().unwrap_or("None")).collect();
    let message = format!("{what}: transaction cancelled ({codes:?})");
    let passes = |c: &&str| {
        matches!(
            *c,
            "None" | "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
        )
    };
    if codes.iter().all(passes) {
        Error::store(message)
    } else {
        Error::Store(Fault::permanent(message))
    }
}

/// `#name -> name` for every attribute an expression names: DynamoDB
/// reserves hundreds of words (`user`, `status`, `consumed`...), so every
/// expression refers to attributes through placeholders.
pub fn names(attrs: &[&str]) -> Option<HashMap<String, String>> {
    Some(
        attrs
            .iter()
            .map(|a| (format!("#{a}"), a.to_string()))
            .collect(),
    )
}

pub(super) fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> Error {
    Error::Store(Fault::permanent(format!("request build: {e}")).with_source(e))
}

pub(super) fn cancellation(
    e: SdkError<TransactWriteItemsError>,
) -> Result<Vec<CancellationReason>, Error> {
    match e {
        SdkError::ServiceError(se) => match se.into_err() {
            TransactWriteItemsError::TransactionCanceledException(c) => {
                Ok(c.cancellation_reasons().to_vec())
            }
            other => Err(store_err("TransactWriteItems", other)),
        },
        other => Err(store_err("TransactWriteItems", other)),
    }
}

pub(super) fn failed_condition(r: &CancellationReason) -> bool {
    r.code() == Some("ConditionalCheckFailed")
}

pub(super) fn is_ccf<E>(e: &SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|se| se.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// A conditional write's outcome: `Ok(true)` written, `Ok(false)` when its
/// condition did not hold, any other failure a store error.
pub(super) fn conditional<T, E>(res: Result<T, SdkError<E>>, op: &str) -> Result<bool, Error>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match res {
        Ok(_) => Ok(true),
        Err(e) if is_ccf(&e) => Ok(false),
        Err(e) => Err(store_err(op, e)),
    }
}
