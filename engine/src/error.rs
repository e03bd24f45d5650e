//! Why an analysis failed, and whether trying again could help.

use std::{error::Error as StdError, sync::Arc};

use datafusion::{
    arrow::error::ArrowError,
    common::{DataFusionError, SchemaError},
    parquet::errors::ParquetError,
};

/// An analysis that did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request is malformed or the query is not allowed (not a single
    /// read-only query, too long, too deep, fails to plan, ...).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The query or analysis names a table that is not among its inputs.
    #[error("unknown table: {0}")]
    UnknownTable(String),
    /// The query or analysis names a column its table does not have.
    #[error("unknown column: {0}")]
    UnknownColumn(String),
    /// The analysis needs more memory (or spill space) than the engine has.
    #[error("resources exhausted: {0}")]
    ResourcesExhausted(String),
    /// The run was cancelled before it finished.
    #[error("cancelled")]
    Cancelled,
    /// Evaluating the query over the data failed in a way that will fail
    /// again: division by zero, a failed cast, an overflow.
    #[error("evaluation failed: {0}")]
    Evaluation(String),
    /// Execution failed for another reason (possibly transient).
    #[error("execution failed: {0}")]
    Execution(String),
    /// Reading inputs from or writing the result to the object store failed.
    #[error("object store: {0}")]
    Object(#[from] object_store::Error),
    /// Local I/O failed (spill files, the engine's threads).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl EngineError {
    /// True when retrying cannot help (bad query, unknown column, data that
    /// breaks the query, a missing input file, a cancel): the job should
    /// fail without retry.
    ///
    /// Running out of memory is not permanent: the memory pool is shared by
    /// the jobs running on a worker, so the same job may fit on a retry.
    pub fn is_permanent(&self) -> bool {
        match self {
            EngineError::InvalidQuery(_)
            | EngineError::UnknownTable(_)
            | EngineError::UnknownColumn(_)
            | EngineError::Evaluation(_)
            | EngineError::Cancelled => true,
            EngineError::Object(object_store::Error::NotFound { .. }) => true,
            EngineError::ResourcesExhausted(_)
            | EngineError::Execution(_)
            | EngineError::Object(_)
            | EngineError::Io(_) => false,
        }
    }
}

impl From<DataFusionError> for EngineError {
    fn from(error: DataFusionError) -> Self {
        classify(error)
    }
}

impl From<ArrowError> for EngineError {
    fn from(error: ArrowError) -> Self {
        classify_arrow(error)
    }
}

impl From<ParquetError> for EngineError {
    fn from(error: ParquetError) -> Self {
        classify_parquet(error)
    }
}

/// Finds the cause that decides the class: DataFusion wraps the error that
/// matters (out of memory, a schema error, an object store failure) in
/// context, diagnostics, Arrow and Parquet errors as it travels up.
fn classify(error: DataFusionError) -> EngineError {
    match error {
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            classify(*inner)
        }
        DataFusionError::Shared(shared) => match Arc::try_unwrap(shared) {
            Ok(inner) => classify(inner),
            Err(shared) => classify_shared(&shared),
        },
        DataFusionError::Collection(errors) => match errors.into_iter().next() {
            Some(first) => classify(first),
            None => EngineError::Execution("unknown error".into()),
        },
        DataFusionError::ResourcesExhausted(message) => EngineError::ResourcesExhausted(message),
        DataFusionError::SchemaError(schema, _) => match *schema {
            SchemaError::FieldNotFound { field, .. } => {
                EngineError::UnknownColumn(field.flat_name())
            }
            other => EngineError::InvalidQuery(other.to_string()),
        },
        error @ (DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::NotImplemented(_)
        | DataFusionError::Configuration(_)) => EngineError::InvalidQuery(error.strip_backtrace()),
        DataFusionError::ObjectStore(error) => EngineError::Object(*error),
        DataFusionError::IoError(error) => EngineError::Io(error),
        DataFusionError::ArrowError(error, _) => classify_arrow(*error),
        DataFusionError::ParquetError(error) => classify_parquet(*error),
        DataFusionError::External(error) => classify_external(error),
        other => EngineError::Execution(other.strip_backtrace()),
    }
}

/// Classifies an error shared with other holders, which cannot be taken
/// apart: the class from its root, the message as text.
fn classify_shared(error: &DataFusionError) -> EngineError {
    let message = error.strip_backtrace();
    match error.find_root() {
        DataFusionError::ResourcesExhausted(_) => EngineError::ResourcesExhausted(message),
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::NotImplemented(_)
        | DataFusionError::Configuration(_)
        | DataFusionError::SchemaError(..) => EngineError::InvalidQuery(message),
        _ => EngineError::Execution(message),
    }
}

fn classify_arrow(error: ArrowError) -> EngineError {
    match error {
        ArrowError::ExternalError(error) => classify_external(error),
        ArrowError::IoError(_, error) => EngineError::Io(error),
        ArrowError::MemoryError(message) => EngineError::ResourcesExhausted(message),
        error @ (ArrowError::DivideByZero
        | ArrowError::CastError(_)
        | ArrowError::ComputeError(_)
        | ArrowError::ArithmeticOverflow(_)
        | ArrowError::ParseError(_)
        | ArrowError::InvalidArgumentError(_)) => EngineError::Evaluation(error.to_string()),
        other => EngineError::Execution(other.to_string()),
    }
}

fn classify_parquet(error: ParquetError) -> EngineError {
    match error {
        ParquetError::External(error) => classify_external(error),
        other => EngineError::Execution(other.to_string()),
    }
}

fn classify_external(error: Box<dyn StdError + Send + Sync>) -> EngineError {
    let error = match error.downcast::<DataFusionError>() {
        Ok(error) => return classify(*error),
        Err(error) => error,
    };
    let error = match error.downcast::<ArrowError>() {
        Ok(error) => return classify_arrow(*error),
        Err(error) => error,
    };
    let error = match error.downcast::<object_store::Error>() {
        Ok(error) => return EngineError::Object(*error),
        Err(error) => error,
    };
    match error.downcast::<std::io::Error>() {
        Ok(error) => EngineError::Io(*error),
        Err(error) => EngineError::Execution(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_memory_inside_arrow_and_context_stays_resources_exhausted() {
        let error = DataFusionError::ArrowError(
            Box::new(ArrowError::ExternalError(Box::new(
                DataFusionError::ResourcesExhausted("pool full".into()).context("sorting"),
            ))),
            None,
        );
        let error = EngineError::from(error);
        assert!(matches!(error, EngineError::ResourcesExhausted(ref m) if m == "pool full"));
        assert!(!error.is_permanent());
    }

    #[test]
    fn planning_errors_are_permanent() {
        let error = EngineError::from(DataFusionError::Plan("no such function".into()));
        assert!(matches!(error, EngineError::InvalidQuery(_)));
        assert!(error.is_permanent());
    }

    #[test]
    fn division_by_zero_is_permanent() {
        let error = EngineError::from(DataFusionError::ArrowError(
            Box::new(ArrowError::DivideByZero),
            None,
        ));
        assert!(matches!(error, EngineError::Evaluation(_)));
        assert!(error.is_permanent());
    }

    #[test]
    fn object_store_failures_other_than_not_found_are_retried() {
        let error = EngineError::from(DataFusionError::ObjectStore(Box::new(
            object_store::Error::Generic {
                store: "S3",
                source: "connection reset".into(),
            },
        )));
        assert!(matches!(error, EngineError::Object(_)));
        assert!(!error.is_permanent());
    }
}
