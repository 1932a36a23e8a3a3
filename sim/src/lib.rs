//! The Syncaroo side of the protocol, for tests and for platform engineers
//! who have no Syncaroo sandbox: a fake Syncaroo API (OAuth endpoints with
//! 10-minute tokens and single-use refresh tokens, with failures on demand)
//! and a tiny HTTP server helper shared with the local runner.

#![forbid(unsafe_code)]

pub mod browser;
mod ctx;
pub mod fake;
pub mod run;
pub mod sender;
pub mod server;
mod steps;

pub use fake::{DataFailure, Failure, FakeConfig, FakeSyncaroo};
