//! Everything the syncaroo-bridge Lambdas share: the protocol model, one
//! error type with its HTTP mapping, configuration, the store and secrets
//! traits with their AWS and in-memory implementations, and the handlers as
//! plain async functions over injected dependencies.
//!
//! The binaries under `functions/` only wire real clients once per cold start
//! and hand requests to [`handlers`]; the local runner wires the same
//! handlers to the in-memory store.

#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod aws_http;
pub mod changes;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod deadletter;
pub mod edge;
pub mod erasure;
pub mod error;
pub mod handlers;
pub mod http_response;
pub mod http_util;
pub mod jcs;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod platform_data;
pub mod platform_jwt;
pub mod platform_ops;
pub mod public_url;
pub mod router;
pub mod routes;
pub mod secrets;
pub mod store;
pub mod syncaroo;
pub mod telemetry;
pub mod tls;
pub mod url_rules;
pub mod webhook;

pub use app::{App, Warming};
pub use config::Config;
pub use error::Error;
