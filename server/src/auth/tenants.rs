//! Tenants: the owners of datasets, jobs and keys. Every statement over
//! the `tenants` table's identity (its limits are the queue's) is here.

use chrono::{DateTime, Utc};
use crunch_queue::TenantId;
use sqlx::PgPool;
use uuid::Uuid;

use super::{AuthError, Tenant};

/// A tenant's name must be 1 to 200 characters, none of them control
/// characters or surrounding whitespace (the CLI names tenants by it).
fn check_name(name: &str) -> Result<(), AuthError> {
    let length = name.chars().count();
    if !(1..=200).contains(&length) || name.chars().any(char::is_control) || name.trim() != name {
        return Err(AuthError::Invalid(
            "a tenant's name is 1 to 200 characters, without control characters or \
             surrounding whitespace"
                .to_owned(),
        ));
    }
    Ok(())
}

struct TenantRow {
    id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
}

impl From<TenantRow> for Tenant {
    fn from(row: TenantRow) -> Self {
        Tenant {
            id: TenantId(row.id),
            name: row.name,
            created_at: row.created_at,
        }
    }
}

/// Creates a tenant named `name` (unique) and returns its id.
pub async fn create(pool: &PgPool, name: &str) -> Result<TenantId, AuthError> {
    check_name(name)?;
    let id = Uuid::now_v7();
    let inserted = sqlx::query!("INSERT INTO tenants (id, name) VALUES ($1, $2)", id, name,)
        .execute(pool)
        .await;
    match inserted {
        Ok(_) => Ok(TenantId(id)),
        Err(sqlx::Error::Database(db)) if db.constraint() == Some("tenants_name_key") => {
            Err(AuthError::TenantExists(name.to_owned()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Every tenant, oldest first.
pub async fn list(pool: &PgPool) -> Result<Vec<Tenant>, AuthError> {
    let rows = sqlx::query_as!(
        TenantRow,
        "SELECT id, name, created_at FROM tenants ORDER BY created_at, id"
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Tenant::from).collect())
}

/// The tenant named `name`.
pub async fn by_name(pool: &PgPool, name: &str) -> Result<Option<Tenant>, AuthError> {
    let row = sqlx::query_as!(
        TenantRow,
        "SELECT id, name, created_at FROM tenants WHERE name = $1",
        name,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Tenant::from))
}

/// The tenant with id `id`.
pub async fn by_id(pool: &PgPool, id: TenantId) -> Result<Option<Tenant>, AuthError> {
    let row = sqlx::query_as!(
        TenantRow,
        "SELECT id, name, created_at FROM tenants WHERE id = $1",
        id.0,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Tenant::from))
}
