//! Test support: the shared helpers of `paystream_store::testing`, and
//! the command API on port 0 (`app`).
#![allow(dead_code, unused_imports)]

pub mod app;

pub use paystream_kit::testing::*;
