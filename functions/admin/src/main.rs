//! The `admin` Lambda: the platform administrator's one-time handshake with
//! the Syncaroo API (connect, confirm) and its status page, behind the admin
//! key. Wiring only; the routes and handlers live in syncaroo-shared.

// Two connections: listing connections reads a page's items and their
// last-webhook times concurrently (the pool opens more as a page needs).
syncaroo_shared::http_lambda_main!(
    syncaroo_shared::routes::admin,
    dynamo_connections = 2,
    announces_changes
);
