//! API keys: minting, hashing, and every statement over `api_keys`.
//!
//! A key is [`KEY_PREFIX`] followed by [`RANDOM_CHARS`] characters from
//! `[0-9A-Za-z]`, drawn from the operating system's CSPRNG
//! (`ring::rand::SystemRandom`) without bias, which is about 190 bits of
//! entropy. The table stores only the SHA-256 of the whole key and its
//! display prefix ([`prefix_of`]), so nothing that is stored or logged can
//! be used as the key.

use std::fmt;

use chrono::{DateTime, Utc};
use crunch_queue::TenantId;
use ring::rand::{SecureRandom, SystemRandom};
use sqlx::PgPool;
use uuid::Uuid;

use super::{AuthError, CreatedKey, KeyInfo, Scopes};

/// What every crunch key starts with, so that a leaked key is recognisable
/// (secret scanners, log reviews).
pub const KEY_PREFIX: &str = "crk_";

/// How many random characters follow [`KEY_PREFIX`].
pub const RANDOM_CHARS: usize = 32;

/// How many of them the display prefix shows.
pub const DISPLAY_CHARS: usize = 8;

/// The length of a whole key.
pub const KEY_LEN: usize = KEY_PREFIX.len() + RANDOM_CHARS;

/// The characters of a key's random part.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// How often [`create`] mints a new key when the display prefix is taken
/// (a 1 in 2^47 chance per existing key).
const MINT_ATTEMPTS: usize = 4;

/// A freshly minted key, not stored yet.
#[derive(Clone, PartialEq, Eq)]
pub struct Minted {
    /// The whole key.
    pub secret: String,
    /// Its display prefix.
    pub prefix: String,
    /// Its SHA-256, as stored.
    pub sha256: [u8; 32],
}

impl fmt::Debug for Minted {
    /// Never the secret: a debug print may end up in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Minted")
            .field("secret", &"<redacted>")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Mints a new key from the system CSPRNG: [`KEY_PREFIX`] and
/// [`RANDOM_CHARS`] uniformly drawn characters (bytes of 248 and above are
/// redrawn, so that each character is one of 62 with equal chance).
pub fn mint() -> Result<Minted, AuthError> {
    let rng = SystemRandom::new();
    let mut secret = String::with_capacity(KEY_LEN);
    secret.push_str(KEY_PREFIX);
    let mut buffer = [0u8; 64];
    while secret.len() < KEY_LEN {
        rng.fill(&mut buffer).map_err(|_| AuthError::Random)?;
        for byte in buffer {
            // 248 = 4 × 62: the largest multiple of 62 a byte can hold.
            if byte < 248 && secret.len() < KEY_LEN {
                secret.push(char::from(ALPHABET[usize::from(byte % 62)]));
            }
        }
    }
    let prefix = display_prefix(&secret);
    let sha256 = hash(&secret);
    Ok(Minted {
        secret,
        prefix,
        sha256,
    })
}

/// The SHA-256 of a key, as stored in `api_keys.key_sha256`.
pub fn hash(secret: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Whether `secret` has the form of a crunch key: [`KEY_PREFIX`] and
/// [`RANDOM_CHARS`] characters from `[0-9A-Za-z]`.
pub fn is_well_formed(secret: &str) -> bool {
    secret.len() == KEY_LEN
        && secret.starts_with(KEY_PREFIX)
        && secret.as_bytes()[KEY_PREFIX.len()..]
            .iter()
            .all(u8::is_ascii_alphanumeric)
}

/// The display prefix of a well-formed key: [`KEY_PREFIX`] and its first
/// [`DISPLAY_CHARS`] random characters (`crk_AbCd1234`). This is what
/// listings, logs and revocations name a key by.
pub fn prefix_of(secret: &str) -> Result<String, AuthError> {
    if is_well_formed(secret) {
        Ok(display_prefix(secret))
    } else {
        Err(AuthError::MalformedKey)
    }
}

/// The first characters of a key whose form was checked.
fn display_prefix(secret: &str) -> String {
    secret
        .chars()
        .take(KEY_PREFIX.len() + DISPLAY_CHARS)
        .collect()
}

/// Whether `prefix` has the form of a display prefix.
pub fn is_prefix(prefix: &str) -> bool {
    prefix.len() == KEY_PREFIX.len() + DISPLAY_CHARS
        && prefix.starts_with(KEY_PREFIX)
        && prefix.as_bytes()[KEY_PREFIX.len()..]
            .iter()
            .all(u8::is_ascii_alphanumeric)
}

/// A SHA-256 written as 64 hexadecimal digits (what `sha256sum` prints),
/// for bootstrapping a key from its hash.
pub fn parse_sha256_hex(text: &str) -> Result<[u8; 32], AuthError> {
    let text = text.trim();
    let invalid = || AuthError::Invalid("a SHA-256 is 64 hexadecimal digits".to_owned());
    if text.len() != 64 || !text.is_ascii() {
        return Err(invalid());
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        let digits = std::str::from_utf8(pair).map_err(|_| invalid())?;
        out[i] = u8::from_str_radix(digits, 16).map_err(|_| invalid())?;
    }
    Ok(out)
}

/// A key's name must be 1 to 200 characters, none of them control
/// characters (it is printed in listings and terminals).
fn check_name(name: &str) -> Result<(), AuthError> {
    let length = name.chars().count();
    if !(1..=200).contains(&length) || name.chars().any(char::is_control) {
        return Err(AuthError::Invalid(
            "a key's name is 1 to 200 characters, without control characters".to_owned(),
        ));
    }
    Ok(())
}

fn check_scopes(scopes: Scopes) -> Result<(), AuthError> {
    if scopes.is_empty() {
        return Err(AuthError::Invalid(
            "a key needs at least one scope (read, write, admin)".to_owned(),
        ));
    }
    Ok(())
}

/// A row of `api_keys` as listings read it.
struct KeyRow {
    prefix: String,
    tenant_id: Uuid,
    scopes: Vec<String>,
    name: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

impl TryFrom<KeyRow> for KeyInfo {
    type Error = AuthError;

    fn try_from(row: KeyRow) -> Result<Self, Self::Error> {
        Ok(KeyInfo {
            prefix: row.prefix,
            tenant: TenantId(row.tenant_id),
            scopes: Scopes::from_db(&row.scopes)?,
            name: row.name,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            last_used_at: row.last_used_at,
        })
    }
}

/// Whether `e` is a violation of the named unique constraint.
fn violates(e: &sqlx::Error, constraint: &str) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.constraint() == Some(constraint))
}

/// Creates a key for `tenant` with `scopes`, named `name`, expiring at
/// `expires_at` (never when `None`; a time already past makes a key that
/// never works). The secret is in the answer and nowhere else.
pub async fn create(
    pool: &PgPool,
    tenant: TenantId,
    scopes: Scopes,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<CreatedKey, AuthError> {
    check_name(name)?;
    check_scopes(scopes)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let minted = mint()?;
        let inserted = sqlx::query_as!(
            KeyRow,
            r#"
            INSERT INTO api_keys (id, tenant_id, prefix, key_sha256, scopes, name, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            RETURNING prefix, tenant_id, scopes, name, created_at, expires_at, revoked_at,
                      last_used_at
            "#,
            Uuid::now_v7(),
            tenant.0,
            minted.prefix,
            &minted.sha256[..],
            &scopes.to_db()[..],
            name,
            expires_at,
        )
        .fetch_one(pool)
        .await;
        match inserted {
            Ok(row) => {
                return Ok(CreatedKey {
                    secret: minted.secret,
                    info: row.try_into()?,
                });
            }
            // Another key has this display prefix (or, impossibly, hash):
            // mint another.
            Err(e)
                if attempt < MINT_ATTEMPTS
                    && (violates(&e, "api_keys_prefix_unique")
                        || violates(&e, "api_keys_sha256_unique")) =>
            {
                continue;
            }
            Err(e) if violates(&e, "api_keys_tenant_id_fkey") => {
                return Err(AuthError::UnknownTenant(tenant.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Stores a key known only by its SHA-256 and display prefix (a key
/// bootstrapped from a secret store: the operator minted it and supplies
/// its hash). Idempotent, so a bootstrap may run at every start: when the
/// hash is stored already for `tenant`, that key is returned as it is,
/// revoked or not (a revoked bootstrap key stays revoked), whatever
/// `scopes` and `name` say now. The hash stored for another tenant, or the
/// prefix taken by another key, is [`AuthError::KeyExists`].
pub async fn insert_hashed(
    pool: &PgPool,
    tenant: TenantId,
    sha256: [u8; 32],
    prefix: &str,
    scopes: Scopes,
    name: &str,
) -> Result<KeyInfo, AuthError> {
    check_name(name)?;
    check_scopes(scopes)?;
    if !is_prefix(prefix) {
        return Err(AuthError::Invalid(format!(
            "a key's display prefix is {KEY_PREFIX} and the key's next {DISPLAY_CHARS} characters"
        )));
    }
    let inserted = sqlx::query_as!(
        KeyRow,
        r#"
        INSERT INTO api_keys (id, tenant_id, prefix, key_sha256, scopes, name)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT ON CONSTRAINT api_keys_sha256_unique DO NOTHING
        RETURNING prefix, tenant_id, scopes, name, created_at, expires_at, revoked_at,
                  last_used_at
        "#,
        Uuid::now_v7(),
        tenant.0,
        prefix,
        &sha256[..],
        &scopes.to_db()[..],
        name,
    )
    .fetch_optional(pool)
    .await;
    let row = match inserted {
        Ok(Some(row)) => row,
        Ok(None) => {
            let existing = sqlx::query_as!(
                KeyRow,
                r#"
                SELECT prefix, tenant_id, scopes, name, created_at, expires_at, revoked_at,
                       last_used_at
                FROM api_keys
                WHERE key_sha256 = $1
                "#,
                &sha256[..],
            )
            .fetch_one(pool)
            .await?;
            if existing.tenant_id != tenant.0 || existing.prefix != prefix {
                return Err(AuthError::KeyExists(
                    "this key is stored already, for another tenant or under another prefix"
                        .to_owned(),
                ));
            }
            existing
        }
        Err(e) if violates(&e, "api_keys_prefix_unique") => {
            return Err(AuthError::KeyExists(format!(
                "another key has the prefix {prefix}"
            )));
        }
        Err(e) if violates(&e, "api_keys_tenant_id_fkey") => {
            return Err(AuthError::UnknownTenant(tenant.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    row.try_into()
}

/// The keys of `tenant` (of every tenant with `None`), newest first,
/// revoked and expired ones included. Secrets are not stored, so none is
/// listed.
pub async fn list(pool: &PgPool, tenant: Option<TenantId>) -> Result<Vec<KeyInfo>, AuthError> {
    let rows = sqlx::query_as!(
        KeyRow,
        r#"
        SELECT prefix, tenant_id, scopes, name, created_at, expires_at, revoked_at, last_used_at
        FROM api_keys
        WHERE ($1::uuid IS NULL OR tenant_id = $1)
        ORDER BY created_at DESC, id DESC
        "#,
        tenant.map(|t| t.0),
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(KeyInfo::try_from).collect()
}

/// The key with display prefix `prefix`, when it belongs to `tenant` (to
/// any tenant with `None`).
pub async fn get(
    pool: &PgPool,
    tenant: Option<TenantId>,
    prefix: &str,
) -> Result<Option<KeyInfo>, AuthError> {
    let row = sqlx::query_as!(
        KeyRow,
        r#"
        SELECT prefix, tenant_id, scopes, name, created_at, expires_at, revoked_at, last_used_at
        FROM api_keys
        WHERE prefix = $1 AND ($2::uuid IS NULL OR tenant_id = $2)
        "#,
        prefix,
        tenant.map(|t| t.0),
    )
    .fetch_optional(pool)
    .await?;
    row.map(KeyInfo::try_from).transpose()
}

/// Revokes the key with display prefix `prefix` if it belongs to `tenant`
/// (to any tenant with `None`): from the commit on, every replica refuses
/// it (see the module docs of [`crate::auth`]). Returns whether there is
/// such a key; revoking a revoked key keeps its first `revoked_at`.
pub async fn revoke(
    pool: &PgPool,
    tenant: Option<TenantId>,
    prefix: &str,
) -> Result<bool, AuthError> {
    let found = sqlx::query_scalar!(
        r#"
        WITH target AS (
            SELECT id FROM api_keys
            WHERE prefix = $1 AND ($2::uuid IS NULL OR tenant_id = $2)
        ), revoked AS (
            UPDATE api_keys SET revoked_at = now()
            WHERE id IN (SELECT id FROM target) AND revoked_at IS NULL
            RETURNING id
        )
        SELECT count(*) AS "found!" FROM target
        "#,
        prefix,
        tenant.map(|t| t.0),
    )
    .fetch_one(pool)
    .await?;
    Ok(found > 0)
}

/// What the verifier needs of a stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredKey {
    pub id: Uuid,
    pub tenant: TenantId,
    pub prefix: String,
    pub scopes: Scopes,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The key whose SHA-256 is `sha256`: one index lookup.
pub(crate) async fn by_hash(
    pool: &PgPool,
    sha256: &[u8; 32],
) -> Result<Option<StoredKey>, AuthError> {
    let row = sqlx::query!(
        r#"
        SELECT id, tenant_id, prefix, scopes, expires_at, revoked_at
        FROM api_keys
        WHERE key_sha256 = $1
        "#,
        &sha256[..],
    )
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(StoredKey {
            id: r.id,
            tenant: TenantId(r.tenant_id),
            prefix: r.prefix,
            scopes: Scopes::from_db(&r.scopes)?,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        })
    })
    .transpose()
}

/// Sets `last_used_at` of each key in `uses` (key id, when it was used)
/// unless the stored time is less than `interval` older: one statement for
/// all of them, and at most one write per key per interval whatever the
/// number of replicas. Returns how many rows it wrote.
pub(crate) async fn record_last_used(
    pool: &PgPool,
    uses: &[(Uuid, DateTime<Utc>)],
    interval: std::time::Duration,
) -> Result<u64, AuthError> {
    let (ids, times): (Vec<Uuid>, Vec<DateTime<Utc>>) = uses.iter().copied().unzip();
    let done = sqlx::query!(
        r#"
        UPDATE api_keys AS k SET last_used_at = u.at
        FROM unnest($1::uuid[], $2::timestamptz[]) AS u (id, at)
        WHERE k.id = u.id
          AND (k.last_used_at IS NULL OR k.last_used_at <= u.at - make_interval(secs => $3))
        "#,
        &ids[..],
        &times[..],
        interval.as_secs_f64(),
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_minted_key_is_well_formed_and_named_by_its_prefix() {
        let a = mint().unwrap();
        let b = mint().unwrap();
        assert_ne!(a.secret, b.secret);
        assert!(is_well_formed(&a.secret), "{}", a.prefix);
        assert_eq!(a.secret.len(), KEY_LEN);
        assert_eq!(prefix_of(&a.secret).unwrap(), a.prefix);
        assert!(is_prefix(&a.prefix));
        assert!(a.secret.starts_with(&a.prefix));
        assert_eq!(a.sha256, hash(&a.secret));
        assert!(!format!("{a:?}").contains(&a.secret));
    }

    #[test]
    fn keys_of_another_form_are_malformed() {
        let good = mint().unwrap().secret;
        for bad in [
            String::new(),
            good[..KEY_LEN - 1].to_owned(),
            format!("{good}x"),
            good.replacen("crk_", "crx_", 1),
            format!("{}-", &good[..KEY_LEN - 1]),
            format!("{}é", &good[..KEY_LEN - 2]),
        ] {
            assert!(!is_well_formed(&bad), "{bad:?}");
            assert!(matches!(prefix_of(&bad), Err(AuthError::MalformedKey)));
        }
    }

    #[test]
    fn the_hash_is_sha256() {
        // sha256("abc"), FIPS 180-2 appendix B.1.
        let expected =
            parse_sha256_hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
                .unwrap();
        assert_eq!(hash("abc"), expected);
        assert!(parse_sha256_hex("ba78").is_err());
        assert!(parse_sha256_hex(&"g".repeat(64)).is_err());
    }

    #[test]
    fn every_character_of_the_alphabet_is_drawn() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.extend(mint().unwrap().secret.bytes().skip(KEY_PREFIX.len()));
        }
        assert_eq!(seen.len(), 62);
    }
}
