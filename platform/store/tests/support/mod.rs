//! Test support: the shared helpers of `paystream_store::testing`.
#![allow(dead_code, unused_imports)]

pub use paystream_store::testing::*;
