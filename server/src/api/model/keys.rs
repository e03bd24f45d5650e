//! The schemas of API keys: a key as listed (never its secret), a new key
//! to create, and a created key with its secret, shown once.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};

use super::Text;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum KeyScope {
    /// Every GET: datasets, jobs, results, the tenant's queue numbers.
    Read,
    /// Uploads, appends, submits, cancels and deletes.
    Write,
    /// The tenant's keys, and the fleet-wide queue numbers.
    Admin,
}

/// An API key of the caller's tenant. The secret is not stored, so it is
/// not here.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct ApiKey {
    /// The display prefix (`crk_` and 8 characters) that names the key in
    /// listings, logs and revocations.
    pub prefix: String,
    /// Its label.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<KeyScope>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working; absent if never.
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked; absent if it was not.
    #[oai(skip_serializing_if_is_none)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it was last used, to within a minute; absent if never.
    #[oai(skip_serializing_if_is_none)]
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A key to create for the caller's tenant.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(deny_unknown_fields)]
pub struct NewApiKey {
    /// A label, 1 to 200 characters ("ci", "nightly export").
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: Text,
    /// What it may do: at least one scope.
    #[oai(validator(min_items = 1, max_items = 3))]
    pub scopes: Vec<KeyScope>,
    /// When it stops working (in the future); never if absent.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A created key: the secret, shown this once, and the key as listed.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct CreatedApiKey {
    /// The key, to send as `Authorization: Bearer <secret>`. It is not
    /// stored and cannot be shown again.
    pub secret: String,
    /// The key as listings show it.
    pub key: ApiKey,
}

/// The keys of the caller's tenant, newest first, revoked and expired ones
/// included.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct ApiKeyList {
    /// The keys.
    pub items: Vec<ApiKey>,
}
