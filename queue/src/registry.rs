//! The kinds a queue accepts, and how each checks its payload.

use std::{collections::HashMap, fmt};

use serde::Deserialize;

use crate::{error::QueueError, job::JobKind};

/// What the queue knows about one registered kind.
pub(crate) struct KindEntry {
    /// Rejects a payload that the kind's payload type cannot read.
    check: fn(&serde_json::Value) -> Result<(), serde_json::Error>,
    /// Default starts allowed.
    pub(crate) max_attempts: i32,
    /// Default time limit per attempt, in milliseconds.
    pub(crate) timeout_ms: i64,
}

impl KindEntry {
    fn checker<K: JobKind>(value: &serde_json::Value) -> Result<(), serde_json::Error> {
        // Deserializing from a borrowed Value checks the payload without
        // cloning it.
        K::Payload::deserialize(value).map(drop)
    }

    /// Fails with `InvalidPayload` unless `payload` reads as this kind's type.
    pub(crate) fn check_payload(
        &self,
        kind: &str,
        payload: &serde_json::Value,
    ) -> Result<(), QueueError> {
        (self.check)(payload).map_err(|e| QueueError::InvalidPayload {
            kind: kind.to_owned(),
            reason: e.to_string(),
        })
    }
}

/// The set of job kinds a [`Queue`](crate::Queue) accepts.
///
/// Enqueueing a kind that is not registered, or a payload that does not
/// deserialize into the kind's payload type, fails with a typed error
/// before anything is stored.
#[derive(Default)]
pub struct Registry {
    kinds: HashMap<String, KindEntry>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds kind `K`.
    pub fn register<K: JobKind>(mut self) -> Self {
        let timeout_ms = i64::try_from(K::timeout().as_millis()).unwrap_or(i64::MAX);
        self.kinds.insert(
            K::KIND.to_owned(),
            KindEntry {
                check: KindEntry::checker::<K>,
                max_attempts: K::max_attempts(),
                timeout_ms,
            },
        );
        self
    }

    /// The registered kinds' names.
    pub fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.kinds.keys().cloned().collect();
        kinds.sort();
        kinds
    }

    /// The entry for `kind`, or `UnknownKind`.
    pub(crate) fn get(&self, kind: &str) -> Result<&KindEntry, QueueError> {
        self.kinds.get(kind).ok_or_else(|| QueueError::UnknownKind {
            kind: kind.to_owned(),
        })
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.kinds())
            .finish()
    }
}
