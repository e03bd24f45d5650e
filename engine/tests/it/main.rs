//! End-to-end tests of the analysis engine: tiny Parquet inputs written by
//! the tests, results read back and compared with hand-computed values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod avg;
mod cancel;
mod correlation;
mod freight_rates;
mod group_by;
mod histogram;
mod progress;
mod rejections;
mod spill;
mod sql;
mod submit_check;
mod summary;
mod time_series;
