//! The `check_connection` Lambda: wiring only; the handler lives in syncaroo-shared.

// Two connections: after the token's item, the confirmation and the listing
// go together.
syncaroo_shared::http_lambda_main!(
    syncaroo_shared::handlers::check_connection,
    dynamo_connections = 2,
    announces_changes
);
