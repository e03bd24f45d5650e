//! The crunch analysis engine: runs an analysis over Parquet inputs in an
//! object store with Apache DataFusion and writes the result as one Parquet
//! file. It knows nothing of the queue or the store: the worker's job
//! handler looks the datasets up and hands the engine [`TableInput`]s, and
//! the server calls [`check_sql`] at submit.
//!
//! [`analysis`] is the job payload clients send ([`analysis::AnalysisJob`])
//! and the summary a finished job reports ([`analysis::ResultSummary`]): one
//! set of types for the server, the queue's payload check and the worker.
//!
//! An [`Engine`] owns a multi-thread tokio runtime of its own for the CPU
//! work, so a heavy query never starves the caller's runtime (heartbeats,
//! HTTP), and a DataFusion `RuntimeEnv` whose memory pool and spill
//! directory all runs share. Each run gets a fresh session that sees its
//! inputs and nothing else (see `session`).

pub mod analysis;

mod analyses;
mod avg;
mod engine;
mod error;
mod execution;
mod memory;
mod output;
mod progress;
mod run;
mod session;
mod sql;
mod yielding;

pub use engine::{
    DEFAULT_BATCH_SIZE, DEFAULT_MAX_SQL_BYTES, Engine, EngineConfig, RunRequest, SpillTotals,
    TableInput, check_sql,
};
pub use error::EngineError;
