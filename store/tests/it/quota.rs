//! Storage quotas: a tenant's own `storage_quota_bytes` or the store's
//! default bounds the Parquet bytes of its parts; an upload or append past
//! it is refused and stores nothing, also when two race for the last room.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::common::*;
use crunch_queue::TenantId;
use crunch_store::{Format, StoreError};
use sqlx::PgPool;

const T: TenantId = TenantId::DEFAULT;

/// The body every test stores: its part has the same size every time.
const BODY: &str = "n,s\n1,a\n2,b\n3,c\n";

async fn set_quota(pool: &PgPool, tenant: TenantId, bytes: Option<i64>) {
    sqlx::query("UPDATE tenants SET storage_quota_bytes = $2 WHERE id = $1")
        .bind(tenant.0)
        .bind(bytes)
        .execute(pool)
        .await
        .unwrap();
}

fn quota_exceeded(error: StoreError) -> (u64, u64, u64) {
    match error {
        StoreError::QuotaExceeded {
            limit,
            used,
            upload,
        } => (limit, used, upload),
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
}

#[tokio::test]
async fn uploads_under_the_quota_are_stored_and_counted_per_tenant() {
    let f = fixture().await;
    let other = f.other_tenant().await;
    assert_eq!(f.store.storage_quota(T).await.unwrap(), None);
    let store = f.store.clone().with_default_storage_quota(Some(10 << 20));
    assert_eq!(store.storage_quota(T).await.unwrap(), Some(10 << 20));
    assert_eq!(store.used_bytes(T).await.unwrap(), 0);

    let (dataset, first) = store
        .create_dataset(T, "d", &options(Format::Csv), body(BODY))
        .await
        .unwrap();
    let second = store
        .append(T, dataset.id, &options(Format::Csv), body(BODY))
        .await
        .unwrap();

    let used = store.used_bytes(T).await.unwrap();
    assert_eq!(used, u64::try_from(first.bytes + second.bytes).unwrap());
    let (got, _) = store.get(T, dataset.id).await.unwrap().unwrap();
    assert_eq!(u64::try_from(got.bytes).unwrap(), used);
    // Another tenant's usage is its own.
    assert_eq!(store.used_bytes(other).await.unwrap(), 0);
    store
        .create_dataset(other, "d", &options(Format::Csv), body(BODY))
        .await
        .unwrap();
    assert_eq!(store.used_bytes(T).await.unwrap(), used);
    assert_eq!(f.files().len(), 3);
}

#[tokio::test]
async fn a_first_upload_past_the_quota_is_refused_and_nothing_is_stored() {
    let f = fixture().await;
    // Smaller than any Parquet file.
    let store = f.store.clone().with_default_storage_quota(Some(100));
    let error = store
        .create_dataset(T, "d", &options(Format::Csv), body(BODY))
        .await
        .unwrap_err();
    assert!(error.is_caller_fault());
    let (limit, used, upload) = quota_exceeded(error);
    assert_eq!((limit, used), (100, 0));
    assert!(upload > 100, "{upload}");
    f.assert_nothing_stored().await;
    assert_eq!(store.used_bytes(T).await.unwrap(), 0);
}

#[tokio::test]
async fn the_quota_may_be_reached_exactly_and_not_passed() {
    let f = fixture().await;
    let (dataset, first) = f
        .store
        .create_dataset(T, "d", &options(Format::Csv), body(BODY))
        .await
        .unwrap();
    let part = u64::try_from(first.bytes).unwrap();

    // One byte short of room for a second part.
    let short = f
        .store
        .clone()
        .with_default_storage_quota(Some(2 * part - 1));
    let error = short
        .append(T, dataset.id, &options(Format::Csv), body(BODY))
        .await
        .unwrap_err();
    assert_eq!(quota_exceeded(error), (2 * part - 1, part, part));
    assert_eq!(f.row_counts().await, (1, 1));
    assert_eq!(f.files().len(), 1);

    // Exactly room for it.
    let store = f.store.clone().with_default_storage_quota(Some(2 * part));
    let second = store
        .append(T, dataset.id, &options(Format::Csv), body(BODY))
        .await
        .unwrap();
    assert_eq!(second.bytes, first.bytes);
    assert_eq!(store.used_bytes(T).await.unwrap(), 2 * part);

    // Full: not one more part, in this dataset or a new one.
    let error = store
        .append(T, dataset.id, &options(Format::Csv), body(BODY))
        .await
        .unwrap_err();
    assert_eq!(quota_exceeded(error), (2 * part, 2 * part, part));
    let error = store
        .create_dataset(T, "e", &options(Format::Csv), body(BODY))
        .await
        .unwrap_err();
    assert_eq!(quota_exceeded(error), (2 * part, 2 * part, part));
    assert_eq!(f.row_counts().await, (1, 2));
    assert_eq!(f.files().len(), 2);

    // Deleting frees the room.
    assert!(store.delete(T, dataset.id).await.unwrap());
    assert_eq!(store.used_bytes(T).await.unwrap(), 0);
    store
        .create_dataset(T, "e", &options(Format::Csv), body(BODY))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_tenants_own_quota_wins_over_the_default() {
    let f = fixture().await;
    let other = f.other_tenant().await;
    let store = f.store.clone().with_default_storage_quota(Some(100));

    // Larger than the default: the upload fits.
    set_quota(f.db.pool(), T, Some(10 << 20)).await;
    assert_eq!(store.storage_quota(T).await.unwrap(), Some(10 << 20));
    store
        .create_dataset(T, "d", &options(Format::Csv), body(BODY))
        .await
        .unwrap();
    // Smaller than the default: it does not.
    assert_eq!(store.storage_quota(other).await.unwrap(), Some(100));
    let roomy = f.store.clone().with_default_storage_quota(Some(10 << 20));
    set_quota(f.db.pool(), other, Some(100)).await;
    assert_eq!(roomy.storage_quota(other).await.unwrap(), Some(100));
    let error = roomy
        .create_dataset(other, "d", &options(Format::Csv), body(BODY))
        .await
        .unwrap_err();
    assert_eq!(quota_exceeded(error).0, 100);
    // Without a default, a tenant's own quota still holds.
    let error = f
        .store
        .create_dataset(other, "d", &options(Format::Csv), body(BODY))
        .await
        .unwrap_err();
    assert_eq!(quota_exceeded(error).0, 100);
    assert_eq!(f.store.storage_quota(T).await.unwrap(), Some(10 << 20));
    assert_eq!(f.row_counts().await, (1, 1));
    assert_eq!(f.files().len(), 1);
}

/// Waits until `n` sessions of this database wait for a lock: the appends
/// have uploaded their objects and queue for the tenant's row.
async fn until_waiting_for_locks(pool: &PgPool, n: i64) {
    let waiting = async {
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            if waiting == n {
                return;
            }
            assert!(waiting < n, "{waiting} sessions wait for locks");
        }
    };
    // Only a bound on a failure; the loop ends as soon as both wait.
    tokio::time::timeout(Duration::from_secs(120), waiting)
        .await
        .expect("the appends never waited for the tenant's row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_appends_racing_for_the_last_room_cannot_both_pass() {
    let f = fixture().await;
    let (dataset, first) = f
        .store
        .create_dataset(T, "d", &options(Format::Csv), body(BODY))
        .await
        .unwrap();
    let part = u64::try_from(first.bytes).unwrap();
    // Room for exactly one more part.
    let store = f.store.clone().with_default_storage_quota(Some(2 * part));

    // Holding the tenant's row lets both appends pass the early check and
    // upload their objects before either can insert: the insert's check
    // under the lock is all that stands between them.
    let mut blocker = f.db.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM tenants WHERE id = $1 FOR NO KEY UPDATE")
        .bind(T.0)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let appends: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append(T, dataset.id, &options(Format::Csv), body(BODY))
                    .await
            })
        })
        .collect();
    until_waiting_for_locks(f.db.pool(), 2).await;
    // Both objects are written while their rows wait.
    assert_eq!(f.files().len(), 3);
    blocker.commit().await.unwrap();

    let mut passed = 0;
    let mut refused = Vec::new();
    for append in appends {
        match append.await.unwrap() {
            Ok(_) => passed += 1,
            Err(error) => refused.push(quota_exceeded(error)),
        }
    }
    assert_eq!(passed, 1);
    assert_eq!(refused, vec![(2 * part, 2 * part, part)]);
    assert_eq!(store.used_bytes(T).await.unwrap(), 2 * part);
    assert_eq!(f.row_counts().await, (1, 2));
    // The refused append's object is gone.
    assert_eq!(f.files().len(), 2);
}
