//! The store tests, in one binary so the fixtures are shared and built once:
//! the durable store on SQLite and PostgreSQL, the hot store on Redis, and
//! takeovers across both, and the write-behind `Persister` over them.

#![allow(clippy::unwrap_used)]

mod bench;
mod database;
mod hot;
mod persister;
mod support;
