//! The endpoints, as plain async functions over [`crate::App`] and the
//! `http` request. Each turns every failure into its protocol's error
//! response, so the binaries only convert types.

pub mod admin;
pub mod authorize;
pub mod check_connection;
pub mod platform;
pub mod refresh;
pub mod sync;
pub mod token;
pub mod webhook;

pub use authorize::authorize;
pub use check_connection::check_connection;
pub use token::token;
pub use webhook::webhook;
