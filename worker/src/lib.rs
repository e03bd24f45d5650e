//! The crunch worker's analysis engine.
//!
//! [`analysis`] is the job payload clients send ([`analysis::AnalysisJob`])
//! and the summary a finished job reports ([`analysis::ResultSummary`]);
//! [`engine`] runs an analysis over Parquet inputs in an object store with
//! Apache DataFusion and writes the result as one Parquet file.
//!
//! The worker process (`main.rs`) looks the datasets up in the store,
//! turns them into [`engine::TableInput`]s and calls [`engine::Engine::run`]
//! from its job handler.

pub mod analysis;
pub mod config;
pub mod engine;
#[cfg(feature = "failpoints")]
pub mod failpoint;
pub mod protection;
pub mod runner;
pub mod settings;

pub use runner::ANALYSIS_KIND;
