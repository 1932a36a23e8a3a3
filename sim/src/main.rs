//! `syncaroo-sim`: the Syncaroo side of the integration guide, a
//! conformance kit for any platform's implementation of it. `syncaroo-sim
//! --help` (and `--help` of each command) lists every flag.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    ExitCode::from(syncaroo_sim::cli::main(std::env::args_os()).await)
}
