//! Test support: real servers and a real gateway, no mocks.

#![allow(dead_code)]

pub mod binary;
pub mod gateway;
pub mod mariadb;
pub mod pg;
pub mod raw;
