//! Connecting as a named process: sessions carry the `application_name`
//! they were given, so `pg_stat_activity` maps them to processes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crunch_db::testing::test_db;
use sqlx::PgPool;

/// `url` asking for sessions named `from-the-url`.
fn url_naming_sessions(url: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}application_name=from-the-url")
}

/// The names `observer` sees on the sessions of `pool`'s backends.
async fn names_seen(observer: &PgPool, pool: &PgPool) -> Vec<String> {
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(pool)
        .await
        .unwrap();
    sqlx::query_scalar("SELECT application_name FROM pg_stat_activity WHERE pid = $1")
        .bind(pid)
        .fetch_all(observer)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_lazy_pool_names_its_sessions_and_overrides_the_url() {
    let db = test_db().await;
    // The URL's own name loses to the process's.
    let url = url_naming_sessions(db.url());
    let pool = crunch_db::connect_lazy_as(&url, 1, "worker-7").unwrap();
    assert_eq!(names_seen(db.pool(), &pool).await, vec!["worker-7"]);
    let own: String = sqlx::query_scalar("SELECT current_setting('application_name')")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(own, "worker-7");
}

#[tokio::test]
async fn a_migrating_pool_names_its_sessions() {
    let db = test_db().await;
    let pool = crunch_db::connect_and_migrate_as(db.url(), 2, crunch_db::SERVER_APPLICATION_NAME)
        .await
        .unwrap();
    assert_eq!(names_seen(db.pool(), &pool).await, vec!["crunch-server"]);
}

#[tokio::test]
async fn without_a_name_the_urls_is_kept() {
    let db = test_db().await;
    let url = url_naming_sessions(db.url());
    let pool = crunch_db::connect_and_migrate(&url, 1).await.unwrap();
    assert_eq!(names_seen(db.pool(), &pool).await, vec!["from-the-url"]);
}
