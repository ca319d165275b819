//! Integration tests: real PostgreSQL servers (started by the test support
//! in temp dirs), the real gateway, real drivers and tools.

mod mysql;
mod pg;
mod support;
