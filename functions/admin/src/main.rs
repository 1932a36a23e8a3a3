//! The `admin` Lambda: the platform administrator's one-time handshake with
//! the Syncaroo API (connect, confirm) and its status page, behind the admin
//! key. Wiring only; the routes and handlers live in syncaroo-shared.

syncaroo_shared::http_lambda_main!(syncaroo_shared::routes::admin, announces_changes);
