//! Who is calling: tenants, API keys, and checking the key of every `/v1`
//! request.
//!
//! - [`tenants`] and [`keys`] are the SQL over the `tenants` and `api_keys`
//!   tables (migration 0005), shared by the API and the `crunch-server
//!   tenants|keys` commands.
//! - [`Verifier`] checks a presented key against a cache of verified keys,
//!   so that a request with a known key costs no database round trip, and
//!   records `last_used_at` off the request path, at most once a minute per
//!   key.
//! - [`Authorized`] is the operations' security scheme (HTTP bearer): it
//!   authenticates the request before any other parameter is read and
//!   checks the scope the operation needs.
//!
//! A key is `crk_` followed by 32 random characters from `[0-9A-Za-z]`
//! (about 190 bits), drawn from the operating system's CSPRNG. Only its
//! SHA-256 is stored, with its display prefix (`crk_` and the next 8
//! characters), which is all that logs, listings and revocations ever show.
//!
//! # Revocation
//!
//! A revoked key stops working on every replica within 10 seconds, in two
//! ways: every change to a key that can stop it working notifies the
//! `crunch_keys` channel (a trigger, delivered at commit), on which every
//! replica's [`Verifier`] listens and evicts the key at once; and a cached
//! key is re-read from the database once it is older than a short TTL (5 s
//! by default), which bounds the delay when a notification is lost (the
//! listener reconnecting) or the listener cannot connect at all.

pub mod keys;
pub mod tenants;
mod verifier;

mod extract;

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use crunch_queue::TenantId;

pub use extract::{
    Admin, Authenticated, Authorized, Need, Read, Write, authenticate_v1, bearer_token,
};
pub use verifier::{Verified, Verifier, VerifierConfig};

/// The name of the security scheme in the spec.
pub const SECURITY_SCHEME: &str = "bearerAuth";

/// The channel on which a change to a key is announced; the payload is the
/// key's display prefix.
pub const KEYS_CHANNEL: &str = "crunch_keys";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Every `GET` of the tenant's datasets, jobs, results and queue
    /// numbers.
    Read,
    /// Uploads, appends, submits, cancels and deletes.
    Write,
    /// Managing the tenant's keys, and the fleet-wide queue numbers.
    Admin,
}

impl Scope {
    /// Every scope, in order.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    /// The scope's name, as stored and as the API and CLI spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Scope::Read => 1,
            Scope::Write => 2,
            Scope::Admin => 4,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            other => Err(AuthError::Invalid(format!(
                "unknown scope {other:?}: the scopes are read, write and admin"
            ))),
        }
    }
}

/// A set of scopes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// No scope: what no key may have.
    pub const NONE: Scopes = Scopes(0);

    /// Every scope: what the first key of a standalone install gets.
    pub fn all() -> Scopes {
        Scope::ALL.into_iter().collect()
    }

    /// Whether `scope` is in the set.
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes in the set, in order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// A comma-separated list (`read,write`), as the CLI takes it. Empty
    /// items are ignored; an unknown scope or an empty list is an error.
    pub fn parse_list(list: &str) -> Result<Scopes, AuthError> {
        let scopes = list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Scope::from_str)
            .collect::<Result<Scopes, _>>()?;
        if scopes.is_empty() {
            return Err(AuthError::Invalid(
                "a key needs at least one scope (read, write, admin)".to_owned(),
            ));
        }
        Ok(scopes)
    }

    /// The scopes as stored (`text[]`).
    pub(crate) fn to_db(self) -> Vec<String> {
        self.iter().map(|s| s.as_str().to_owned()).collect()
    }

    /// From the stored array; the table's CHECK allows only known names.
    pub(crate) fn from_db(names: &[String]) -> Result<Scopes, AuthError> {
        names.iter().map(|n| n.parse::<Scope>()).collect()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(","))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({self})")
    }
}

/// A key as listings show it: everything but the secret, which is not
/// stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The display prefix, `crk_` and 8 characters: names the key.
    pub prefix: String,
    /// The tenant the key acts for.
    pub tenant: TenantId,
    /// What it may do.
    pub scopes: Scopes,
    /// Its label.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it was last used, to the minute (written at most once a
    /// minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A key just created: the secret, shown this once, and what is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct CreatedKey {
    /// The whole key, to hand to its user; it cannot be shown again.
    pub secret: String,
    /// The stored key.
    pub info: KeyInfo,
}

impl fmt::Debug for CreatedKey {
    /// Never the secret: a debug print may end up in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedKey")
            .field("secret", &"<redacted>")
            .field("info", &self.info)
            .finish()
    }
}

/// A tenant: the owner of datasets, jobs and keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Its id, which every owned row names.
    pub id: TenantId,
    /// Its unique name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Every `/v1` request must carry a valid key (the default).
    #[default]
    Keys,
    /// No key is asked for: every request acts for `tenant` with every
    /// scope. Only for a server listening on a loopback address, which the
    /// binary checks before it allows this (and logs loudly).
    Open {
        /// The tenant every request acts for.
        tenant: TenantId,
    },
}

/// How requests are authenticated, and the verifier of keys: what every
/// operation's [`Authorized`] parameter uses (the application puts it in
/// every request's data).
#[derive(Debug, Clone)]
pub struct Auth {
    /// Whether keys are asked for.
    pub mode: AuthMode,
    /// The cache of verified keys.
    pub verifier: Verifier,
}

impl Auth {
    /// Who sends a request with this `Authorization` header (`None`: no
    /// header): the key's tenant and scopes, or in [`AuthMode::Open`] the
    /// open tenant with every scope whatever the header says.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, AuthError> {
        match self.mode {
            AuthMode::Open { tenant } => Ok(Caller {
                tenant,
                key: None,
                scopes: Scopes::all(),
            }),
            AuthMode::Keys => {
                let secret = bearer_token(authorization)?;
                let key = self.verifier.verify(secret).await?;
                Ok(Caller {
                    tenant: key.tenant,
                    key: Some(key.prefix),
                    scopes: key.scopes,
                })
            }
        }
    }
}

/// Who a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The tenant whose resources the request may see and change: every
    /// query the request makes filters by it.
    pub tenant: TenantId,
    /// The display prefix of the key that authenticated the request
    /// (`None` in [`AuthMode::Open`]).
    pub key: Option<String>,
    /// What the request may do.
    pub scopes: Scopes,
}

impl Caller {
    /// Refuses the request unless its key has `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(AuthError::MissingScope {
                prefix: self.key.clone().unwrap_or_default(),
                needed: scope,
            })
        }
    }
}

/// Everything that can go wrong in the auth layer: a request's key that
/// does not authenticate or authorize it, and refused tenant and key
/// management.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The request has no `Authorization` header.
    #[error("no API key: send `Authorization: Bearer <key>`")]
    MissingKey,
    /// The header is not `Bearer <key>`, or the key is not of crunch's form.
    #[error("the Authorization header is not `Bearer crk_…` with a crunch API key")]
    MalformedKey,
    /// No key has this secret.
    #[error("unknown API key")]
    UnknownKey,
    /// The key has expired.
    #[error("API key {prefix} expired at {expired_at}")]
    ExpiredKey {
        /// The key's display prefix.
        prefix: String,
        /// When it expired.
        expired_at: DateTime<Utc>,
    },
    /// The key was revoked.
    #[error("API key {prefix} was revoked")]
    RevokedKey {
        /// The key's display prefix.
        prefix: String,
    },
    /// The key is valid but lacks the scope the operation needs.
    #[error("API key {prefix} lacks the `{needed}` scope this operation needs")]
    MissingScope {
        /// The key's display prefix.
        prefix: String,
        /// The scope it lacks.
        needed: Scope,
    },
    /// A key or tenant to create, or a key to look up, is not acceptable
    /// (an empty name, no scope, a prefix or hash of the wrong form).
    #[error("{0}")]
    Invalid(String),
    /// No tenant has this name or id.
    #[error("no tenant {0}")]
    UnknownTenant(String),
    /// A tenant with this name exists already.
    #[error("a tenant named {0:?} exists already")]
    TenantExists(String),
    /// A key with this hash or prefix exists already, for another tenant
    /// or with other scopes.
    #[error("{0}")]
    KeyExists(String),
    /// The system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl AuthError {
    /// Whether the failure is the request's key's: a 401 (the key does not
    /// authenticate the request).
    pub fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            AuthError::MissingKey
                | AuthError::MalformedKey
                | AuthError::UnknownKey
                | AuthError::ExpiredKey { .. }
                | AuthError::RevokedKey { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn scopes_parse_from_a_list_and_print_back() {
        let scopes = Scopes::parse_list("write, read,").unwrap();
        assert!(scopes.contains(Scope::Read) && scopes.contains(Scope::Write));
        assert!(!scopes.contains(Scope::Admin));
        assert_eq!(scopes.to_string(), "read,write");
        assert_eq!(Scopes::all().to_string(), "read,write,admin");
        assert_eq!(
            Scopes::from_db(&Scopes::all().to_db()).unwrap(),
            Scopes::all()
        );
        assert!(Scopes::parse_list("").is_err());
        assert!(Scopes::parse_list("read,root").is_err());
    }

    #[test]
    fn a_caller_without_the_scope_is_refused_by_name() {
        let caller = Caller {
            tenant: TenantId::DEFAULT,
            key: Some("crk_AbCd1234".to_owned()),
            scopes: Scopes::parse_list("read").unwrap(),
        };
        assert!(caller.require(Scope::Read).is_ok());
        let refused = caller.require(Scope::Write).unwrap_err();
        assert!(matches!(
            refused,
            AuthError::MissingScope {
                needed: Scope::Write,
                ..
            }
        ));
        assert!(refused.to_string().contains("crk_AbCd1234"));
    }

    #[test]
    fn a_created_key_does_not_print_its_secret() {
        let minted = keys::mint().unwrap();
        let created = CreatedKey {
            secret: minted.secret.clone(),
            info: KeyInfo {
                prefix: minted.prefix,
                tenant: TenantId::DEFAULT,
                scopes: Scopes::all(),
                name: "n".to_owned(),
                created_at: Utc::now(),
                expires_at: None,
                revoked_at: None,
                last_used_at: None,
            },
        };
        assert!(!format!("{created:?}").contains(&minted.secret));
    }
}
