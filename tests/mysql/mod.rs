//! The MySQL gateway, through mysql_async and the mariadb client.

mod commands;
mod masking;
mod policy;
mod relay;
mod session;
mod tools;
