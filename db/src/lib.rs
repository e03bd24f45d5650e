//! The one schema of crunch, and PostgreSQL run locally: a private cluster
//! from the machine's binaries, and a fresh database per test.
//!
//! - [`MIGRATOR`] is the schema; [`connect_and_migrate`] applies it.
//!   Processes name their sessions (`application_name`) with
//!   [`connect_and_migrate_as`] or [`connect_lazy_as`].
//! - [`LocalCluster`] runs PostgreSQL without any setup: persistent for the
//!   server running standalone, temporary for tests.
//! - `testing::test_db` gives each test its own migrated database. It is
//!   compiled only with the `testing` feature, which only dev-dependencies
//!   turn on: no binary carries it.

mod binaries;
mod cluster;
mod connect;
mod error;
mod pidfile;
mod reaper;
#[cfg(feature = "testing")]
pub mod testing;

pub use cluster::{ClusterOptions, LocalCluster};
pub use connect::{
    ACQUIRE_TIMEOUT, SERVER_APPLICATION_NAME, STARTUP_WAIT, connect_and_migrate,
    connect_and_migrate_as, connect_lazy_as, connect_options,
};
pub use error::DbError;

/// The schema, embedded at compile time from `migrations/` so that every
/// binary carries the exact schema it was built against.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");
