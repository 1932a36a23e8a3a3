//! Attribute helpers every item group shares.

use crate::error::Error;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
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

pub fn store_err<E: std::error::Error + 'static>(op: &str, e: E) -> Error {
    Error::Store(format!("{op}: {}", DisplayErrorContext(e)))
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
    Error::Store(format!("request build: {e}"))
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
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match res {
        Ok(_) => Ok(true),
        Err(e) if is_ccf(&e) => Ok(false),
        Err(e) => Err(store_err(op, e)),
    }
}
