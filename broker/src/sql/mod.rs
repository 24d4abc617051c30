//! Druid SQL in the broker: DataFusion plans each statement over the `druid` catalog, a
//! pushdown step turns what native queries can express into native queries that run next to
//! the data, and DataFusion runs only the rest.

mod aggregators;
mod catalog;
mod expression;
mod filter;
mod flight;
mod functions;
mod http;
mod limit;
mod native;
mod planner;
mod preaggregate;
mod pushdown;
mod render;
mod rewrite;
mod system;
mod table;

pub use flight::service as flight_service;
pub use http::routes;
pub use planner::{SqlEngine, SqlOptions, SqlOutput};
