//! Connecting to a database with the schema applied.

use std::str::FromStr;
use std::time::{Duration, Instant};

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

/// How long a request waits for a pooled connection before it fails with
/// `PoolTimedOut` (which the API answers 503). sqlx's default is 30 s:
/// during a database outage every API call would hang that long. A few
/// seconds rides out a restart's brief refusal without making clients of
/// a dead database wait for their 503.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long [`connect_and_migrate`] waits for the database to accept a
/// first connection: a process started beside its database (a deploy, a
/// compose file, a private cluster) may be up before PostgreSQL is.
pub const STARTUP_WAIT: Duration = Duration::from_secs(30);

/// The `application_name` of the API server's database sessions, as
/// `pg_stat_activity` shows them (workers use their worker id).
pub const SERVER_APPLICATION_NAME: &str = "crunch-server";

/// The options of `url` with the sessions named `application_name`, which
/// replaces any the URL gives: an operator maps `pg_stat_activity` rows to
/// processes by it.
///
/// PostgreSQL keeps at most 63 bytes of the name and shows characters
/// outside printable ASCII as `?`.
pub fn connect_options(url: &str, application_name: &str) -> Result<PgConnectOptions, DbError> {
    Ok(PgConnectOptions::from_str(url)?.application_name(application_name))
}

/// A pool of up to `max_connections` to `url` whose sessions are named
/// `application_name` ([`connect_options`]), connecting only when first
/// used and acquiring with [`ACQUIRE_TIMEOUT`]: for processes that do not
/// migrate (workers), whose first use retries until the database is up.
pub fn connect_lazy_as(
    url: &str,
    max_connections: u32,
    application_name: &str,
) -> Result<PgPool, DbError> {
    Ok(pool_options(max_connections).connect_lazy_with(connect_options(url, application_name)?))
}

/// Connects a pool of up to `max_connections` to `url` and brings its schema
/// up to date with [`MIGRATOR`], creating the database first when the server
/// does not have it, so a fresh server needs no setup step. The sessions
/// carry whatever `application_name` the URL gives (none if it gives
/// none); a process names its own with [`connect_and_migrate_as`].
///
/// The pool's connections are acquired with [`ACQUIRE_TIMEOUT`]; only this
/// first connection waits up to [`STARTUP_WAIT`] for the server to come up.
///
/// Several processes may do this at once: creation tolerates a concurrent
/// creator, and migrations run under sqlx's advisory lock.
pub async fn connect_and_migrate(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    migrate_with(PgConnectOptions::from_str(url)?, max_connections).await
}

/// [`connect_and_migrate`] with the sessions named `application_name`
/// ([`connect_options`]): [`SERVER_APPLICATION_NAME`] for the API server.
pub async fn connect_and_migrate_as(
    url: &str,
    max_connections: u32,
    application_name: &str,
) -> Result<PgPool, DbError> {
    migrate_with(connect_options(url, application_name)?, max_connections).await
}

fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
}

async fn migrate_with(options: PgConnectOptions, max_connections: u32) -> Result<PgPool, DbError> {
    let pool = pool_options(max_connections).connect_lazy_with(options.clone());
    let started = Instant::now();
    let mut created = false;
    loop {
        match pool.acquire().await {
            Ok(conn) => {
                drop(conn);
                break;
            }
            Err(error) if !created && has_code(&error, &[MISSING_DATABASE]) => {
                let Some(database) = options.get_database() else {
                    return Err(error.into());
                };
                tracing::info!(database, "creating database");
                let maintenance = options.clone().database(MAINTENANCE_DATABASE);
                let mut conn = PgConnection::connect_with(&maintenance).await?;
                create_database(&mut conn, database, None).await?;
                conn.close().await?;
                created = true;
            }
            // Refused connections are retried inside the acquire until its
            // timeout; keep trying for the rest of the startup wait.
            Err(sqlx::Error::PoolTimedOut) if started.elapsed() < STARTUP_WAIT => {
                tracing::info!("waiting for PostgreSQL to accept connections");
            }
            Err(error) => return Err(error.into()),
        }
    }
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
