//! The `check_connection` Lambda: wiring only; the handler lives in syncaroo-shared.

syncaroo_shared::http_lambda_main!(
    syncaroo_shared::handlers::check_connection,
    announces_changes
);
