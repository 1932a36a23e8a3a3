//! The `authorize` Lambda: wiring only; the handler lives in syncaroo-shared.

// One connection: the consent's one transaction is its only DynamoDB request.
syncaroo_shared::http_lambda_main!(syncaroo_shared::handlers::authorize, dynamo_connections = 1);
