//! Connecting to a database with the schema applied.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};

use crate::MIGRATOR;
use crate::error::DbError;

/// The database every PostgreSQL server has, to run CREATE DATABASE from.
pub(crate) const MAINTENANCE_DATABASE: &str = "postgres";

/// invalid_catalog_name: the database in the URL does not exist.
const MISSING_DATABASE: &str = "3D000";
/// duplicate_database, and the unique violation a concurrent CREATE DATABASE
/// of the same name can report instead.
const DATABASE_EXISTS: [&str; 2] = ["42P04", "23505"];

/// Connects a pool of up to `max_connections` to `url` and brings its schema
/// up to date with [`MIGRATOR`], creating the database first when the server
/// does not have it, so a fresh server needs no setup step.
///
/// Several processes may do this at once: creation tolerates a concurrent
/// creator, and migrations run under sqlx's advisory lock.
pub async fn connect_and_migrate(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    let options = PgConnectOptions::from_str(url)?;
    let pool_options = PgPoolOptions::new().max_connections(max_connections);
    let pool = match pool_options.clone().connect_with(options.clone()).await {
        Ok(pool) => pool,
        Err(error) if has_code(&error, &[MISSING_DATABASE]) => {
            let Some(database) = options.get_database() else {
                return Err(error.into());
            };
            tracing::info!(database, "creating database");
            let maintenance = options.clone().database(MAINTENANCE_DATABASE);
            let mut conn = PgConnection::connect_with(&maintenance).await?;
            create_database(&mut conn, database, None).await?;
            conn.close().await?;
            pool_options.connect_with(options).await?
        }
        Err(error) => return Err(error.into()),
    };
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// `CREATE DATABASE name [TEMPLATE template]`, succeeding when someone else
/// created it first.
pub(crate) async fn create_database(
    conn: &mut PgConnection,
    name: &str,
    template: Option<&str>,
) -> Result<(), sqlx::Error> {
    let mut sql = format!("CREATE DATABASE {}", quote_ident(name));
    if let Some(template) = template {
        sql.push_str(&format!(" TEMPLATE {}", quote_ident(template)));
    }
    match sqlx::query(AssertSqlSafe(sql)).execute(conn).await {
        Err(error) if has_code(&error, &DATABASE_EXISTS) => Ok(()),
        other => other.map(drop),
    }
}

/// Whether `error` is a server error with one of these SQLSTATE codes.
pub(crate) fn has_code(error: &sqlx::Error, codes: &[&str]) -> bool {
    error
        .as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| codes.contains(&code.as_ref()))
}

/// Quotes an identifier for SQL, since database names cannot be bound as
/// parameters.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_with_inner_quotes_doubled() {
        assert_eq!(quote_ident("plain"), "\"plain\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}
