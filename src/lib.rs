//! The `eddy` package: the binary's command line, its configuration, and node composition
//! (which roles run in this process and how they reach each other).

pub mod clicks;
pub mod config;
pub mod ingest_cli;
pub mod node;
pub mod status;
pub mod stream_cli;
