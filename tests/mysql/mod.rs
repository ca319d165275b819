//! The MySQL gateway, through mysql_async and the mariadb client.

mod relay;
mod session;
mod commands;
