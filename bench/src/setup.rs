//! A private PostgreSQL cluster for the benchmarks, with a fresh database
//! per measurement so that no run inherits another's dead rows.

use std::sync::atomic::{AtomicUsize, Ordering};

use crunch_db::{ClusterOptions, LocalCluster};
use sqlx::{PgPool, postgres::PgPoolOptions};

/// The cluster every measurement runs against.
pub struct Setup {
    cluster: LocalCluster,
    next: AtomicUsize,
    /// The server's version string, for the report.
    pub version: String,
}

impl Setup {
    /// Starts a temporary cluster with PostgreSQL's default durability
    /// (fsync and synchronous commit on), as a real deployment runs.
    pub async fn start() -> anyhow::Result<Setup> {
        let cluster = LocalCluster::start_temporary(ClusterOptions {
            ephemeral: false,
            ..ClusterOptions::default()
        })
        .await?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&cluster.url("postgres"))
            .await?;
        let (version,): (String,) = sqlx::query_as("SHOW server_version")
            .fetch_one(&pool)
            .await?;
        pool.close().await;
        Ok(Setup {
            cluster,
            next: AtomicUsize::new(0),
            version,
        })
    }

    /// A fresh database with crunch's schema.
    pub async fn crunch_db(&self) -> anyhow::Result<PgPool> {
        let url = self.fresh_url("crunch");
        Ok(crunch_db::connect_and_migrate(&url, 40).await?)
    }

    /// A fresh database with apalis-postgres' schema.
    pub async fn apalis_db(&self) -> anyhow::Result<PgPool> {
        let pool = self.empty_db("apalis").await?;
        apalis_postgres::PostgresStorage::setup(&pool).await?;
        Ok(pool)
    }

    /// A fresh, empty database, for a peer that installs its own schema.
    pub async fn empty_db(&self, prefix: &str) -> anyhow::Result<PgPool> {
        let url = self.fresh_url(prefix);
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.cluster.url("postgres"))
            .await?;
        let name = url.rsplit('/').next().unwrap_or_default().to_owned();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await?;
        admin.close().await;
        Ok(PgPoolOptions::new()
            .max_connections(40)
            .connect(&url)
            .await?)
    }

    fn fresh_url(&self, prefix: &str) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.cluster.url(&format!("{prefix}_bench_{n}"))
    }
}
