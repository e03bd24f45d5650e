//! What can go wrong in the store: [`StoreError`], and whose fault it was
//! ([`StoreError::is_caller_fault`]); [`DeclaredSchemaError`], why the
//! text of a declared schema does not parse.

use datafusion::arrow::error::ArrowError;
use datafusion::parquet::errors::ParquetError;

/// Everything that can go wrong in the store.
///
/// Variants that blame the input ([`StoreError::is_caller_fault`]) say
/// where, for the caller to fix (`BadInput` names its line and column);
/// the others are the store's or its dependencies' failures, for logs.
/// Callers map them at their own edge.
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
    /// Storing the upload would take the tenant's stored bytes past its
    /// storage quota; nothing was stored. Sizes are of the Parquet parts
    /// the store keeps, not of the bodies sent.
    #[error(
        "storage quota exceeded: {upload} more bytes would take the {used} bytes stored past the quota of {limit} bytes"
    )]
    QuotaExceeded {
        /// The tenant's quota in bytes.
        limit: u64,
        /// The bytes the tenant's datasets held when the upload was checked.
        used: u64,
        /// The size of the refused part.
        upload: u64,
    },
    /// The dataset name is not acceptable.
    #[error("invalid dataset name: {0}")]
    InvalidName(String),
    /// The text of a declared schema does not parse
    /// ([`schema::parse_declared`](crate::schema::parse_declared)).
    #[error("invalid declared schema: {0}")]
    DeclaredSchema(#[from] DeclaredSchemaError),
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

/// Why the text of a declared schema (`name:type,...`) does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeclaredSchemaError {
    /// An entry has no `:` between a name and a type.
    #[error("schema entry {entry:?} is not name:type")]
    NotNameType {
        /// The entry, as written.
        entry: String,
    },
    /// An entry names a type that is not offered.
    #[error(
        "schema type {type_name:?} of {column:?} is not one of string, int64, float64, bool, date, timestamp"
    )]
    UnknownType {
        /// The column, as written before the `:`.
        column: String,
        /// The type, trimmed and lowercased.
        type_name: String,
    },
    /// The text has no entries.
    #[error("the declared schema has no columns")]
    NoColumns,
}

impl StoreError {
    /// Whether the input was at fault (the same input fails the same way
    /// again: a malformed or oversized body, a schema that does not match
    /// or parse, a bad name, a dataset that does not exist, an upload past
    /// the tenant's quota until it deletes data) rather than the store or
    /// what it depends on.
    pub fn is_caller_fault(&self) -> bool {
        matches!(
            self,
            StoreError::BadInput { .. }
                | StoreError::TooLarge { .. }
                | StoreError::QuotaExceeded { .. }
                | StoreError::SchemaMismatch { .. }
                | StoreError::InvalidName(_)
                | StoreError::DeclaredSchema(_)
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
