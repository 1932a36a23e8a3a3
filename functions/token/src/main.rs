//! The `token` Lambda: wiring only; the handler lives in syncaroo-shared.

// One connection: each grant is one transaction.
syncaroo_shared::http_lambda_main!(syncaroo_shared::handlers::token, dynamo_connections = 1);
