//! Test databases: fresh, migrated, separate, and gone afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crunch_db::testing::test_db;
use sqlx::{Connection, PgConnection};

const DEFAULT_TENANT: &str = "00000000-0000-0000-0000-000000000000";

async fn assert_fresh_and_migrated(db: &crunch_db::testing::TestDb) {
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(jobs, 0);
    let tenant: String = sqlx::query_scalar("SELECT id::text FROM tenants WHERE name = 'default'")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(tenant, DEFAULT_TENANT);
}

#[tokio::test]
async fn two_test_databases_are_different_empty_and_migrated() {
    let first = test_db().await;
    let second = test_db().await;
    assert_ne!(first.name(), second.name());
    assert_ne!(first.url(), second.url());
    assert_fresh_and_migrated(&first).await;
    assert_fresh_and_migrated(&second).await;

    // A row in one is not seen by the other.
    sqlx::query(
        "INSERT INTO tenants (id, name) VALUES ('00000000-0000-0000-0000-000000000001', 'other')",
    )
    .execute(first.pool())
    .await
    .unwrap();
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(second.pool())
        .await
        .unwrap();
    assert_eq!(tenants, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_database_is_dropped_with_its_test_db() {
    let db = test_db().await;
    let name = db.name().to_owned();
    // A connection to another database, alive across the drop.
    let mut observer = PgConnection::connect(&db.url().replace(&name, "postgres"))
        .await
        .unwrap();
    let exists = "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)";
    let before: bool = sqlx::query_scalar(exists)
        .bind(&name)
        .fetch_one(&mut observer)
        .await
        .unwrap();
    assert!(before);

    drop(db);

    let after: bool = sqlx::query_scalar(exists)
        .bind(&name)
        .fetch_one(&mut observer)
        .await
        .unwrap();
    assert!(!after, "{name} still exists");
}

#[tokio::test]
async fn the_url_reaches_the_same_database_as_the_pool() {
    let db = test_db().await;
    let mut conn = PgConnection::connect(db.url()).await.unwrap();
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(name, db.name());
}

#[tokio::test]
async fn the_throwaway_cluster_is_exposed_unless_database_url_is_set() {
    let db = test_db().await;
    let own_cluster = std::env::var("DATABASE_URL").is_err();
    assert_eq!(db.cluster().is_some(), own_cluster);
    if let Some(cluster) = db.cluster() {
        assert!(db.url().contains(&format!(":{}/", cluster.port())));
    }
}

#[test]
fn test_databases_work_from_runtimes_that_come_and_go() {
    // Each runtime dies before the next starts, as each test's runtime does:
    // nothing shared may be tied to the first one.
    for _ in 0..3 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let db = test_db().await;
            assert_fresh_and_migrated(&db).await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_test_databases_can_be_made_at_once() {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(async {
                let db = test_db().await;
                assert_fresh_and_migrated(&db).await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}
