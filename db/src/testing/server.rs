//! The one PostgreSQL server all tests of a process share, and the migrated
//! template their databases are copied from.

use std::sync::OnceLock;

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::connect::{MAINTENANCE_DATABASE, create_database, quote_ident};
use crate::{ClusterOptions, DbError, LocalCluster, MIGRATOR};

/// Serializes template builds across processes sharing one server: an
/// arbitrary key ("crunchdb" in ASCII) for `pg_advisory_lock`.
const TEMPLATE_LOCK: i64 = 0x6372_756e_6368_6462;

/// Where test databases are made. Holds no pool or connection: each test runs
/// on its own runtime, and anything tied to the runtime of the test that
/// happened to come first would die with that test.
#[derive(Debug)]
pub(super) struct Server {
    /// The throwaway cluster, when DATABASE_URL does not name a server.
    pub(super) cluster: Option<LocalCluster>,
    /// A database to run CREATE and DROP DATABASE from.
    pub(super) admin_url: String,
    /// The migrated database every test database is a copy of.
    pub(super) template: String,
}

/// Set once per process; an Err is kept too, so that every test fails with
/// the same message instead of each retrying a setup that cannot work.
static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// The shared server, set up by the first caller.
pub(super) async fn get() -> &'static Server {
    let server = match SERVER.get() {
        Some(server) => server,
        // Setup blocks for seconds; the OnceLock makes concurrent callers wait for the first.
        None => tokio::task::spawn_blocking(|| SERVER.get_or_init(set_up_on_own_thread))
            .await
            .unwrap_or_else(|error| {
                panic!("crunch_db::testing: setting up PostgreSQL failed: {error}")
            }),
    };
    match server {
        Ok(server) => server,
        Err(message) => panic!("crunch_db::testing: no PostgreSQL for tests: {message}"),
    }
}

/// Sets up on a thread and runtime of its own, which outlive no test and
/// leave behind no runtime-bound state.
fn set_up_on_own_thread() -> Result<Server, String> {
    let thread = std::thread::Builder::new()
        .name("crunch-db-test-setup".to_owned())
        .spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| format!("building a runtime: {error}"))?;
            runtime
                .block_on(set_up())
                .map_err(|error| error.to_string())
        })
        .map_err(|error| format!("spawning the setup thread: {error}"))?;
    thread
        .join()
        .unwrap_or_else(|_| Err("the setup thread panicked".to_owned()))
}

async fn set_up() -> Result<Server, DbError> {
    let (cluster, admin_url) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => (None, url),
        _ => {
            let options = ClusterOptions {
                ephemeral: true,
                ..ClusterOptions::default()
            };
            let cluster = LocalCluster::start_temporary(options).await?;
            let url = cluster.url(MAINTENANCE_DATABASE);
            (Some(cluster), url)
        }
    };
    let template = template_name();
    prepare_template(&admin_url, &template).await?;
    Ok(Server {
        cluster,
        admin_url,
        template,
    })
}

/// Named after the migrations' contents, so a changed schema gets a new
/// template and an unchanged one is reused by every process on a shared server.
fn template_name() -> String {
    // FNV-1a: tiny, and stable across Rust releases, unlike DefaultHasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for migration in MIGRATOR.iter() {
        for byte in migration
            .version
            .to_le_bytes()
            .iter()
            .chain(migration.checksum.iter())
        {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("crunch_template_{hash:016x}")
}

/// Builds the template unless a complete one exists. Complete means marked
/// IS_TEMPLATE, the last step: a half-built one from a crashed process is
/// rebuilt. Connections to it are then refused, because CREATE DATABASE
/// fails while anyone is connected to the source.
async fn prepare_template(admin_url: &str, template: &str) -> Result<(), DbError> {
    let mut admin = PgConnection::connect(admin_url).await?;
    // Session lock: released by the close below, or by the server if we die.
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(TEMPLATE_LOCK)
        .execute(&mut admin)
        .await?;
    let complete: Option<bool> =
        sqlx::query_scalar("SELECT datistemplate FROM pg_database WHERE datname = $1")
            .bind(template)
            .fetch_optional(&mut admin)
            .await?;
    if complete != Some(true) {
        let quoted = quote_ident(template);
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await?;
        create_database(&mut admin, template, None).await?;
        let mut conn = PgConnection::connect(&url_with_database(admin_url, template)).await?;
        MIGRATOR.run(&mut conn).await?;
        conn.close().await?;
        sqlx::query(AssertSqlSafe(format!(
            "ALTER DATABASE {quoted} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"
        )))
        .execute(&mut admin)
        .await?;
    }
    admin.close().await?;
    Ok(())
}

/// `url` with its database replaced by `database`, keeping credentials, host
/// and query parameters.
pub(super) fn url_with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or_default();
    match query {
        Some(query) => format!("{scheme}://{authority}/{database}?{query}"),
        None => format!("{scheme}://{authority}/{database}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced_and_the_rest_kept() {
        assert_eq!(
            url_with_database("postgres://u:p@h:5432/main?sslmode=disable", "t"),
            "postgres://u:p@h:5432/t?sslmode=disable"
        );
        assert_eq!(url_with_database("postgresql://h", "t"), "postgresql://h/t");
        assert_eq!(
            url_with_database("postgres:///main?host=/run/postgresql", "t"),
            "postgres:///t?host=/run/postgresql"
        );
    }

    #[test]
    fn the_template_name_is_a_short_identifier() {
        let name = template_name();
        assert!(name.len() < 63, "{name}");
        assert_eq!(name, template_name());
    }
}
