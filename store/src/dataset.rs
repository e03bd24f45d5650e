//! What the store returns about datasets and their parts.

use chrono::{DateTime, Utc};
use crunch_queue::TenantId;
use datafusion::arrow::datatypes::SchemaRef;
use object_store::path::Path;

use crate::{
    error::StoreError,
    ids::{DatasetId, PartId},
};

/// The longest dataset name, in characters (the table checks it too).
pub const MAX_NAME_CHARS: usize = 200;

/// A dataset: its schema and totals over its committed parts.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Its id.
    pub id: DatasetId,
    /// Its owner.
    pub tenant_id: TenantId,
    /// A label for people; not unique.
    pub name: String,
    /// The schema every part conforms to (normalized: all columns nullable).
    pub schema: SchemaRef,
    /// Rows over all parts.
    pub rows: i64,
    /// Parquet bytes over all parts.
    pub bytes: i64,
    /// Number of parts.
    pub parts: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was created or last appended to.
    pub updated_at: DateTime<Utc>,
}

/// One committed part of a dataset: one upload, one Parquet file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Its id; parts sort by it in the order they were added.
    pub id: PartId,
    /// The dataset it belongs to.
    pub dataset_id: DatasetId,
    /// Its rows.
    pub rows: i64,
    /// Size of its Parquet file.
    pub bytes: i64,
    /// When it was committed.
    pub created_at: DateTime<Utc>,
}

/// Where a worker finds one committed part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartLocation {
    /// Its path in [`crate::Store::objects`].
    pub path: Path,
    /// Its rows.
    pub rows: i64,
    /// Its size in bytes.
    pub bytes: i64,
}

/// Checks a dataset name: 1 to 200 characters, not blank, no control
/// characters.
pub(crate) fn validate_name(name: &str) -> Result<(), StoreError> {
    if name.trim().is_empty() {
        return Err(StoreError::InvalidName("the name is empty".into()));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(StoreError::InvalidName(format!(
            "the name is longer than {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(StoreError::InvalidName(
            "the name contains control characters".into(),
        ));
    }
    Ok(())
}
