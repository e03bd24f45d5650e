//! The store's one error type.

use datafusion::arrow::error::ArrowError;
use datafusion::parquet::errors::ParquetError;

/// Everything that can go wrong in the store.
///
/// The HTTP layer maps the client's errors ([`StoreError::is_client_error`])
/// to 4xx responses, `BadInput` with its line and column in the body; the
/// rest are for logs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The tenant has no such dataset.
    #[error("dataset not found")]
    NotFound,
    /// The body is malformed.
    #[error("{}", bad_input_text(.line, .column, .message))]
    BadInput {
        /// 1-based line of the body (for CSV counting the header line), when
        /// the problem is on one line.
        line: Option<u64>,
        /// The column's name, when the problem is in one column.
        column: Option<String>,
        /// What is wrong, for people.
        message: String,
    },
    /// The body is larger than the limit.
    #[error("body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The body's columns are not the dataset's (or the declared ones).
    #[error("schema mismatch: expected {expected}, found {found}")]
    SchemaMismatch {
        /// The columns required, as `name: type, ...`.
        expected: String,
        /// The columns found, in the same form.
        found: String,
    },
    /// The dataset name is not acceptable.
    #[error("invalid dataset name: {0}")]
    InvalidName(String),
    /// The object store failed.
    #[error("object store error: {0}")]
    Object(#[from] object_store::Error),
    /// Arrow failed on something that is not the body's fault.
    #[error("arrow error: {0}")]
    Arrow(ArrowError),
    /// Writing Parquet failed.
    #[error("parquet error: {0}")]
    Parquet(ParquetError),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A local file (the spooled body or the Parquet being written) failed.
    #[error("i/o error: {0}")]
    Io(std::io::Error),
    /// The queue could not be asked about jobs (the sweep's lookups).
    #[error("queue error: {0}")]
    Queue(#[from] crunch_queue::QueueError),
    /// The store URL cannot be used.
    #[error("store configuration: {0}")]
    Config(String),
    /// Something the store's invariants rule out (a stored schema that does
    /// not parse, a blocking task that panicked).
    #[error("store invariant broken: {0}")]
    Invariant(String),
}

impl StoreError {
    /// Whether the request was at fault (4xx) rather than the service (5xx).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            StoreError::BadInput { .. }
                | StoreError::TooLarge { .. }
                | StoreError::SchemaMismatch { .. }
                | StoreError::InvalidName(_)
                | StoreError::NotFound
        )
    }

    /// A `BadInput` on no particular line or column.
    pub(crate) fn bad(message: impl Into<String>) -> Self {
        StoreError::BadInput {
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// A `BadInput` on one line.
    pub(crate) fn bad_line(line: u64, message: impl Into<String>) -> Self {
        StoreError::BadInput {
            line: Some(line),
            column: None,
            message: message.into(),
        }
    }
}

fn bad_input_text(line: &Option<u64>, column: &Option<String>, message: &str) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("line {line}, column {column:?}: {message}"),
        (Some(line), None) => format!("line {line}: {message}"),
        (None, Some(column)) => format!("column {column:?}: {message}"),
        (None, None) => message.to_string(),
    }
}

impl From<std::io::Error> for StoreError {
    fn from(error: std::io::Error) -> Self {
        StoreError::Io(error)
    }
}

impl From<ArrowError> for StoreError {
    fn from(error: ArrowError) -> Self {
        match error {
            // The readers wrap I/O failures of the spooled file; those are ours.
            ArrowError::IoError(_, source) => StoreError::Io(source),
            other => StoreError::Arrow(other),
        }
    }
}

impl From<ParquetError> for StoreError {
    fn from(error: ParquetError) -> Self {
        StoreError::Parquet(error)
    }
}
