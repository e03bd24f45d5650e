//! A fresh, migrated database for every test.
//!
//! ```no_run
//! #[tokio::test]
//! async fn a_job_can_be_enqueued() {
//!     let db = crunch_db::testing::test_db().await;
//!     sqlx::query("SELECT 1").execute(db.pool()).await.unwrap();
//! }
//! ```
//!
//! With DATABASE_URL set, test databases are created on that server (its
//! user needs CREATEDB; the database it names is used to issue CREATE DATABASE).
//! Otherwise the first test of a process starts a throwaway [`LocalCluster`]
//! that every test of the process shares and that is deleted when the process
//! ends. Either way the schema is migrated once, into a template, and each test
//! database is a copy of it, which takes milliseconds.
//!
//! Failures panic with a message saying what went wrong: this module is for
//! tests, where a panic is the way to fail.

mod server;

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};

use crate::LocalCluster;
use crate::connect::{create_database, quote_ident};
use server::Server;

/// Connections per test pool: enough for concurrent tests of a job queue, few
/// enough that many tests fit within the cluster's max_connections.
const POOL_SIZE: u32 = 10;

/// Bounds the cleanup in Drop, which must not hang a test on a dead server.
const DROP_TIMEOUT: Duration = Duration::from_secs(30);

/// A fresh database with the schema applied, only for the calling test.
///
/// Call it from any tokio runtime (current-thread or multi-threaded); the pool
/// belongs to the caller's runtime. Panics when no database can be made.
pub async fn test_db() -> TestDb {
    let server = server::get().await;
    // Unique across processes sharing one server, too.
    let name = format!("crunch_test_{}", uuid::Uuid::now_v7().simple());
    let mut admin = PgConnection::connect(&server.admin_url)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "crunch_db::testing: connecting to {}: {error}",
                server.admin_url
            )
        });
    create_database(&mut admin, &name, Some(&server.template))
        .await
        .unwrap_or_else(|error| {
            panic!("crunch_db::testing: creating test database {name}: {error}")
        });
    // Only a courtesy to the server; the session ends with the connection anyway.
    let _ = admin.close().await;

    let url = server::url_with_database(&server.admin_url, &name);
    let pool = PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .connect_lazy(&url)
        .unwrap_or_else(|error| panic!("crunch_db::testing: bad test database URL {url}: {error}"));
    // From here the database is owned by TestDb, so a panic below still drops it.
    let db = TestDb {
        pool,
        url,
        name,
        server,
    };
    if let Err(error) = db.pool.acquire().await {
        panic!(
            "crunch_db::testing: connecting to test database {}: {error}",
            db.name
        );
    }
    db
}

/// One test's database, dropped from the server when this value is dropped.
#[derive(Debug)]
pub struct TestDb {
    pool: PgPool,
    url: String,
    name: String,
    server: &'static Server,
}

impl TestDb {
    /// A pool on the database, made in the runtime of the test that called
    /// [`test_db`].
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The database's URL, for tests that open their own connections or hand
    /// it to child processes.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The throwaway cluster serving this database, for fault tests that stop
    /// or restart PostgreSQL; `None` when DATABASE_URL names the server.
    /// The cluster is shared by every test of the process: fault tests belong
    /// in a test binary of their own.
    pub fn cluster(&self) -> Option<&'static LocalCluster> {
        self.server.cluster.as_ref()
    }
}

impl Drop for TestDb {
    /// Drops the database. Drop cannot await, and the test's runtime may be
    /// single-threaded and busy running this very drop, so the work happens on
    /// a new thread with its own runtime, waited for so the database is gone
    /// when the drop returns. Problems are reported, never panicked on.
    fn drop(&mut self) {
        let admin_url = self.server.admin_url.clone();
        let name = self.name.clone();
        let thread = std::thread::Builder::new()
            .name("crunch-db-drop".to_owned())
            .spawn(move || drop_database(&admin_url, &name));
        let outcome = match thread {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|_| Err("the drop thread panicked".to_owned())),
            Err(error) => Err(format!("spawning the drop thread: {error}")),
        };
        if let Err(message) = outcome {
            eprintln!(
                "crunch_db::testing: could not drop test database {}: {message}",
                self.name
            );
        }
    }
}

fn drop_database(admin_url: &str, name: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("building a runtime: {error}"))?;
    runtime.block_on(async {
        let work = async {
            let mut admin = PgConnection::connect(admin_url).await?;
            // FORCE: the test's own pool may still hold connections.
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
            sqlx::query(AssertSqlSafe(sql)).execute(&mut admin).await?;
            admin.close().await
        };
        match tokio::time::timeout(DROP_TIMEOUT, work).await {
            Ok(result) => result.map_err(|error| error.to_string()),
            Err(_) => Err(format!("no answer within {DROP_TIMEOUT:?}")),
        }
    })
}
