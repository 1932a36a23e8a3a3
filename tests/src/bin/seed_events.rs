//! `seed-events TABLE`: seeds DynamoDB (from the AWS environment) with what
//! the `events/` files refer to (including the status target that
//! `sync-stream.json` delivers) and prints the secret document they were
//! made with. Used by tests/e2e/lambda_emulator.sh.

#[tokio::main]
async fn main() {
    let table = std::env::args().nth(1).expect("usage: seed-events TABLE");
    println!("{}", syncaroo_tests::seed::seed_events(&table).await);
}
