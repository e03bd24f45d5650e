//! Datasets: ingestion of CSV, NDJSON and Parquet bodies into Parquet parts
//! in an object store, their metadata in Postgres, and the object paths of
//! job results.
//!
//! This crate is the only code that reads or writes the `datasets` and
//! `dataset_parts` tables. A dataset is a schema and a list of parts; each
//! part is one upload converted to one Parquet file at
//! `<prefix>/tenants/<tenant>/datasets/<dataset>/parts/<part>.parquet`.
//! A part's row is inserted only after its object is fully uploaded, so
//! readers ([`Store::committed_parts`]) only ever see complete parts, and an
//! upload is all of its rows or none.
//!
//! Every operation names the tenant and sees only the tenant's datasets.
//! A tenant's parts may be held to a storage quota (its own
//! `tenants.storage_quota_bytes`, else [`Store::with_default_storage_quota`]):
//! the transaction that would insert a part past it refuses it
//! ([`StoreError::QuotaExceeded`]) and the part's object is deleted.
//!
//! ```no_run
//! use crunch_queue::TenantId;
//! use crunch_store::{Format, IngestOptions, Store};
//!
//! # async fn run(pool: sqlx::PgPool) -> Result<(), crunch_store::StoreError> {
//! let store = Store::open(pool, "file:///var/lib/crunch/objects")?;
//! let body = futures_util::stream::iter([Ok(bytes::Bytes::from("a,b\n1,x\n2,y\n"))]);
//! let (dataset, _part) = store
//!     .create_dataset(TenantId::DEFAULT, "example", &IngestOptions::new(Format::Csv), body)
//!     .await?;
//! let (_schema, parts) = store
//!     .committed_parts(TenantId::DEFAULT, dataset.id)
//!     .await?
//!     .ok_or(crunch_store::StoreError::NotFound)?;
//! assert_eq!(parts.len(), 1);
//! # Ok(())
//! # }
//! ```

mod catalog;
mod dataset;
mod error;
mod ids;
mod ingest;
mod objects;
mod options;
pub mod schema;
mod store;
pub mod sweep;

pub use dataset::{Dataset, MAX_NAME_CHARS, Part, PartLocation};
pub use error::{DeclaredSchemaError, StoreError};
pub use ids::{DatasetId, PartId};
pub use options::{CsvOptions, DEFAULT_INFER_RECORDS, DEFAULT_MAX_COLUMNS, Format, IngestOptions};
pub use store::{MAX_PAGE, Store};
pub use sweep::{Sweep, SweepReport};
