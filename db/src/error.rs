//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while finding, starting or talking to
/// PostgreSQL. Messages carry what is needed to fix the problem without
/// re-running anything: the command's stderr, the server log's tail, the
/// directories searched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// No directory holding `initdb`, `pg_ctl` and `postgres` was found.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; searched {searched}. \
         Install PostgreSQL (e.g. `apt-get install postgresql`) or put its bin directory on PATH"
    )]
    BinariesNotFound {
        /// The directories that were looked at, for the message.
        searched: String,
    },

    /// A helper program (initdb, pg_ctl, runuser, ...) exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, for the message.
        command: String,
        /// How it exited.
        status: String,
        /// What it printed on stderr (and stdout, which pg_ctl uses for some errors).
        stderr: String,
    },

    /// The server did not come up; the log says why.
    #[error(
        "PostgreSQL in {data_dir} failed to start: {reason}\n--- server log (tail) ---\n{log_tail}"
    )]
    StartFailed {
        /// The cluster's data directory.
        data_dir: PathBuf,
        /// What pg_ctl reported.
        reason: String,
        /// The last lines of the server log.
        log_tail: String,
    },

    /// A server holds the data directory but never started answering.
    #[error(
        "a PostgreSQL server (pid {pid}) is running in {data_dir} but does not answer on port {port}"
    )]
    Unresponsive {
        /// The cluster's data directory.
        data_dir: PathBuf,
        /// The postmaster's pid, from postmaster.pid.
        pid: u32,
        /// The port it should listen on, from postmaster.pid.
        port: u16,
    },

    /// Running as root, PostgreSQL must run as the `postgres` system user, and
    /// that user cannot reach the data directory.
    #[error(
        "running as root, PostgreSQL runs as the `postgres` user, which cannot reach {data_dir}: \
         it may not pass through {blocked}. Let it through with `chmod o+x {blocked}` (others may \
         then enter, not list, that directory), or choose a data directory whose parents all allow \
         it, such as one under /var/lib (CRUNCH_DATA_DIR=/var/lib/crunch)"
    )]
    DataDirNotAccessible {
        /// The data directory.
        data_dir: PathBuf,
        /// The directory on the way that the postgres user may not pass
        /// through (or the data directory itself).
        blocked: PathBuf,
    },

    /// Running as root, PostgreSQL must run as the `postgres` system user, and
    /// there is none.
    #[error(
        "running as root, PostgreSQL must run as the `postgres` system user, which does not exist: {0}"
    )]
    NoPostgresUser(String),

    /// A file system or process operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done, for the message.
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Connecting to or querying the server failed.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),

    /// Applying the schema failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Attaches what was being done to an io::Error, since a bare "No such file
/// or directory" does not say which file.
pub(crate) trait IoContext<T> {
    /// Wraps the error in [`DbError::Io`] with `action` as context.
    fn context(self, action: impl FnOnce() -> String) -> Result<T, DbError>;
}

impl<T> IoContext<T> for Result<T, std::io::Error> {
    fn context(self, action: impl FnOnce() -> String) -> Result<T, DbError> {
        self.map_err(|source| DbError::Io {
            action: action(),
            source,
        })
    }
}
