//! The dataset store against a real PostgreSQL and a local object store:
//! ingestion, the datasets' lifecycle, storage quotas and the sweep. Each
//! test gets a fresh database on the one throwaway cluster the binary
//! shares (`crunch_db::testing`) and a store in a temporary directory.

mod common;

mod ingest;
mod lifecycle;
mod quota;
mod sweep;
