//! The `webhook` Lambda: wiring only; the handler lives in syncaroo-shared.

// One connection: the token's item, then the event's write, one after the
// other.
syncaroo_shared::http_lambda_main!(syncaroo_shared::handlers::webhook, dynamo_connections = 1);
