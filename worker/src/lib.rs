//! The crunch worker: the job handler that runs analysis jobs from the
//! queue on the engine ([`crunch_engine`]), ECS scale-in protection while a
//! job runs, the fault suite's failpoints, and the settings the worker
//! binary (`main.rs`) and the server's in-process workers share.
//!
//! [`handler`] declares the analysis job kind ([`handler::AnalysisKind`]),
//! resolves a job's datasets to their committed parts in the store and
//! hands them to [`crunch_engine::Engine::run`]; [`handler::run_worker`] is
//! the worker loop with graceful drain.

#[cfg(feature = "failpoints")]
pub mod failpoint;
#[cfg(feature = "fake-agent")]
pub mod fake_agent;
pub mod handler;
pub mod protection;
pub mod settings;

pub use handler::{ANALYSIS_KIND, AnalysisKind, registry};
