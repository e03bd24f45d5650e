//! The schemas of datasets and their parts, and the column every schema
//! (a dataset's, a result's) is made of.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};
use uuid::Uuid;

/// A column of a dataset or a result.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its Arrow data type, e.g. `Int64`, `Utf8`, `Date32`.
    pub data_type: String,
    /// Whether it may hold nulls.
    pub nullable: bool,
}

/// A dataset: named, typed data made of atomically added parts.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct Dataset {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its columns.
    pub schema: Vec<Column>,
    /// Rows over all committed parts.
    pub rows: i64,
    /// Stored (Parquet) bytes over all committed parts.
    pub bytes: i64,
    /// Committed parts.
    pub parts: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When a part was last added.
    pub updated_at: DateTime<Utc>,
}

/// One atomically added batch of a dataset's rows.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct Part {
    /// Its id.
    pub id: Uuid,
    /// Its rows.
    pub rows: i64,
    /// Its stored bytes.
    pub bytes: i64,
    /// When it was committed.
    pub created_at: DateTime<Utc>,
}

/// A dataset with its parts.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct DatasetDetail {
    /// The dataset.
    pub dataset: Dataset,
    /// Its committed parts, oldest first.
    pub parts: Vec<Part>,
}

/// A created dataset and its first part.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct DatasetCreated {
    /// The dataset.
    pub dataset: Dataset,
    /// The part its upload became.
    pub part: Part,
}

/// A page of datasets, newest first.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct DatasetPage {
    /// The datasets.
    pub items: Vec<Dataset>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// How an upload's body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum UploadFormat {
    /// Comma- (or `delimiter`-) separated values.
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// An Apache Parquet file.
    Parquet,
}
