//! The Syncaroo side of the protocol, for tests and for platform engineers
//! who have no Syncaroo sandbox: a fake Syncaroo API (OAuth endpoints with
//! 10-minute tokens and single-use refresh tokens, with failures on demand)
//! and a tiny HTTP server helper shared with the local runner.

#![forbid(unsafe_code)]

pub mod browser;
pub mod checks;
pub mod cli;
mod ctx;
pub mod fake;
mod others;
mod probes;
pub mod run;
pub mod sender;
pub mod server;
pub mod setup;
mod steps;

pub use fake::{DataFailure, Failure, FakeConfig, FakeSyncaroo};
