//! Identifiers of datasets and their parts.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A dataset's id: a UUIDv7, so ids sort by creation time (newest first
/// listing and cursors rely on it).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct DatasetId(pub Uuid);

impl DatasetId {
    /// A new, time-ordered id.
    pub fn new() -> Self {
        DatasetId(Uuid::now_v7())
    }
}

impl Default for DatasetId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for DatasetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A part's id: a UUIDv7, so a dataset's parts sort in the order they were
/// added.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct PartId(pub Uuid);

impl PartId {
    /// A new, time-ordered id.
    pub fn new() -> Self {
        PartId(Uuid::now_v7())
    }
}

impl Default for PartId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for PartId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
