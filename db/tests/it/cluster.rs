//! LocalCluster against the machine's real PostgreSQL binaries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crunch_db::{ClusterOptions, DbError, LocalCluster, connect_and_migrate};
use sqlx::{Connection, PgConnection};

/// Kills whatever server runs in the directory when the test ends, passed or
/// failed, so a persistent test cluster never outlives its test.
struct KillOnDrop<'a>(&'a LocalCluster);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

/// A scratch directory the postgres user can enter when we run as root
/// (whatever the umask).
fn scratch_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("crunch-db-test-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

async fn execute(url: &str, sql: &'static str) {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

async fn count_notes(url: &str) -> i64 {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|line| line.starts_with("Uid:"))
        .and_then(|line| line.split_whitespace().nth(2).map(|uid| uid == "0"))
        .unwrap()
}

#[tokio::test]
async fn a_persistent_cluster_keeps_its_data_across_stop_and_start() {
    let scratch = scratch_dir();
    let data_dir = scratch.path().join("data");

    let first = LocalCluster::start(&data_dir, ClusterOptions::default())
        .await
        .unwrap();
    let _guard = KillOnDrop(&first);
    assert_eq!(first.data_dir(), data_dir);
    let url = first.url("postgres");
    execute(
        &url,
        "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept')",
    )
    .await;
    first.stop().unwrap();
    assert!(
        PgConnection::connect(&url).await.is_err(),
        "still answering after stop"
    );

    let second = LocalCluster::start(&data_dir, ClusterOptions::default())
        .await
        .unwrap();
    assert_eq!(count_notes(&second.url("postgres")).await, 1);
    second.stop().unwrap();
}

#[tokio::test]
async fn a_cluster_left_running_is_reused_by_the_next_start() {
    let scratch = scratch_dir();
    let data_dir = scratch.path().join("data");

    let first = LocalCluster::start(&data_dir, ClusterOptions::default())
        .await
        .unwrap();
    let _guard = KillOnDrop(&first);
    execute(&first.url("postgres"), "CREATE TABLE notes (body text)").await;

    // As the next run of the server would: the first run never stopped it.
    let second = LocalCluster::start(&data_dir, ClusterOptions::default())
        .await
        .unwrap();
    assert_eq!(second.port(), first.port());
    assert_eq!(count_notes(&second.url("postgres")).await, 0);
}

#[tokio::test]
async fn a_stale_pid_file_naming_an_unrelated_process_does_not_block_the_start() {
    let scratch = scratch_dir();
    let data_dir = scratch.path().join("data");
    let first = LocalCluster::start(&data_dir, ClusterOptions::default())
        .await
        .unwrap();
    let _guard = KillOnDrop(&first);
    first.stop().unwrap();
    // As after a crash and a reboot, when the old pid now belongs to someone else:
    // this test process.
    let stale = format!(
        "{}\n{}\n0\n{}\n\n127.0.0.1\n0 0\nready\n",
        std::process::id(),
        data_dir.display(),
        first.port()
    );
    std::fs::write(data_dir.join("postmaster.pid"), stale).unwrap();

    let second = LocalCluster::start(&data_dir, ClusterOptions::default())
        .await
        .unwrap();
    PgConnection::connect(&second.url("postgres"))
        .await
        .unwrap();
    second.stop().unwrap();
}

#[tokio::test]
async fn a_cluster_listens_on_the_port_it_is_given() {
    let scratch = scratch_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = ClusterOptions {
        port: Some(port),
        ..ClusterOptions::default()
    };
    let cluster = LocalCluster::start(&scratch.path().join("data"), options)
        .await
        .unwrap();
    let _guard = KillOnDrop(&cluster);
    assert_eq!(cluster.port(), port);
    assert_eq!(
        cluster.url("app"),
        format!("postgres://postgres@127.0.0.1:{port}/app")
    );
    PgConnection::connect(&cluster.url("postgres"))
        .await
        .unwrap();
}

#[tokio::test]
async fn restart_keeps_data_and_the_server_answers_again() {
    let options = ClusterOptions {
        ephemeral: true,
        ..ClusterOptions::default()
    };
    let cluster = LocalCluster::start_temporary(options).await.unwrap();
    let url = cluster.url("postgres");
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept')")
        .execute(&pool)
        .await
        .unwrap();

    let port = cluster.port();
    cluster.restart().unwrap();

    assert_eq!(cluster.port(), port);
    // The pool notices its broken connections and opens new ones.
    let notes: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(notes, 1);
}

#[tokio::test]
async fn kill_and_start_again_recover_checkpointed_data() {
    let options = ClusterOptions {
        ephemeral: true,
        ..ClusterOptions::default()
    };
    let cluster = LocalCluster::start_temporary(options).await.unwrap();
    let url = cluster.url("postgres");
    execute(
        &url,
        "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept')",
    )
    .await;
    // With synchronous_commit off a commit survives a crash only once written;
    // a checkpoint (after the commit, so not in the same statement) writes it.
    execute(&url, "CHECKPOINT").await;

    cluster.kill().unwrap();
    assert!(
        PgConnection::connect(&url).await.is_err(),
        "still answering after kill"
    );
    cluster.kill().unwrap();
    cluster.start_again().unwrap();

    assert_eq!(count_notes(&url).await, 1);
}

#[tokio::test]
async fn a_temporary_cluster_is_deleted_when_dropped() {
    let cluster = LocalCluster::start_temporary(ClusterOptions {
        ephemeral: true,
        ..ClusterOptions::default()
    })
    .await
    .unwrap();
    let data_dir = cluster.data_dir().to_path_buf();
    let url = cluster.url("postgres");
    assert!(data_dir.join("PG_VERSION").exists());

    drop(cluster);

    assert!(!data_dir.exists(), "{} still exists", data_dir.display());
    assert!(
        PgConnection::connect(&url).await.is_err(),
        "still answering after drop"
    );
}

#[tokio::test]
async fn connect_and_migrate_creates_a_missing_database_and_is_repeatable() {
    let cluster = LocalCluster::start_temporary(ClusterOptions {
        ephemeral: true,
        ..ClusterOptions::default()
    })
    .await
    .unwrap();
    let url = cluster.url("crunch");

    let pool = connect_and_migrate(&url, 4).await.unwrap();
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tenants, 1);
    pool.close().await;

    let again = connect_and_migrate(&url, 4).await.unwrap();
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&again)
        .await
        .unwrap();
    assert_eq!(jobs, 0);
}

#[tokio::test]
async fn a_fresh_private_directory_works_as_the_data_dir_when_root() {
    if !running_as_root() {
        return;
    }
    // What `mktemp -d` makes: a directory only its owner (root) may enter.
    let fresh = tempfile::tempdir().unwrap();
    std::fs::set_permissions(fresh.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let cluster = LocalCluster::start(&fresh.path().join("postgres"), ClusterOptions::default())
        .await
        .unwrap();
    let pool = connect_and_migrate(&cluster.url("postgres"), 2)
        .await
        .unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(one, 1);
    pool.close().await;
    cluster.stop().unwrap();
    // Others may pass through it now, not list it.
    let mode = std::fs::metadata(fresh.path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o701);
}

#[tokio::test]
async fn an_unreachable_data_dir_is_refused_with_advice_that_works_when_root() {
    if !running_as_root() {
        return;
    }
    // A directory above the data directory's own parent that only root may
    // enter, as /root is: not ours to open, so refused, naming it.
    let locked = tempfile::tempdir().unwrap();
    std::fs::set_permissions(locked.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let data_dir = locked.path().join("crunch").join("postgres");
    let error = match LocalCluster::start(&data_dir, ClusterOptions::default()).await {
        Ok(cluster) => {
            cluster.kill().unwrap();
            panic!("started in {}", cluster.data_dir().display());
        }
        Err(error) => error,
    };
    let DbError::DataDirNotAccessible { blocked, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(blocked, locked.path());
    let advice = format!("chmod o+x {}", locked.path().display());
    assert!(error.to_string().contains(&advice), "{error}");
    assert_eq!(
        std::fs::metadata(locked.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700,
        "a directory that is not the cluster's parent was changed"
    );

    // The advice, followed, works.
    let status = std::process::Command::new("chmod")
        .arg("o+x")
        .arg(locked.path())
        .status()
        .unwrap();
    assert!(status.success());
    let cluster = LocalCluster::start(&data_dir, ClusterOptions::default())
        .await
        .unwrap();
    cluster.stop().unwrap();
}

#[test]
fn the_bin_dir_holds_the_server_binaries() {
    let dir = LocalCluster::find_bin_dir().unwrap();
    for name in ["initdb", "pg_ctl", "postgres"] {
        assert!(
            Path::new(&dir).join(name).exists(),
            "{} lacks {name}",
            dir.display()
        );
    }
}
