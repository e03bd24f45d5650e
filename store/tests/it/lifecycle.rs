//! Datasets after ingestion: appends, reading, tenant isolation, deletion
//! and listing.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crate::common::*;
use crunch_queue::{JobId, TenantId};
use crunch_store::{DatasetId, Format, StoreError};
use datafusion::arrow::{
    array::AsArray,
    datatypes::{DataType, Field, Int64Type, Schema},
};

const T: TenantId = TenantId::DEFAULT;

#[tokio::test]
async fn append_adds_a_part_and_committed_parts_lists_both() {
    let f = fixture().await;
    let (dataset, first) = f
        .store
        .create_dataset(T, "d", &options(Format::Csv), body("n,s\n1,a\n2,b\n"))
        .await
        .unwrap();
    // Integers into a column that is all integers so far; the dataset's types
    // are used, not the body's.
    let second = f
        .store
        .append(T, dataset.id, &options(Format::Csv), body("n,s\n3,c\n"))
        .await
        .unwrap();
    assert!(second.id > first.id);
    assert_eq!(second.rows, 1);

    let (schema, parts) = f
        .store
        .committed_parts(T, dataset.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(schema, dataset.schema);
    assert_eq!(parts.len(), 2);
    assert_eq!(parts.iter().map(|p| p.rows).collect::<Vec<_>>(), vec![2, 1]);
    assert!(
        parts[1]
            .path
            .as_ref()
            .contains(&format!("/parts/{}.parquet", second.id))
    );

    let (got, got_parts) = f.store.get(T, dataset.id).await.unwrap().unwrap();
    assert_eq!((got.rows, got.parts), (3, 2));
    assert_eq!(got.bytes, first.bytes + second.bytes);
    assert!(got.updated_at >= dataset.updated_at);
    assert_eq!(got_parts, vec![first, second]);

    let batch = read_dataset(&f.store, T, dataset.id).await;
    let n = batch
        .column_by_name("n")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(n.values().to_vec(), vec![1, 2, 3]);
}

#[tokio::test]
async fn an_ndjson_append_is_read_as_the_datasets_types() {
    let f = fixture().await;
    let (dataset, _) = f
        .store
        .create_dataset(
            T,
            "d",
            &options(Format::Ndjson),
            body("{\"x\": 1.5, \"y\": \"a\"}\n"),
        )
        .await
        .unwrap();
    f.store
        .append(
            T,
            dataset.id,
            &options(Format::Ndjson),
            body("{\"x\": 2}\n"),
        )
        .await
        .unwrap();
    let (got, _) = f.store.get(T, dataset.id).await.unwrap().unwrap();
    assert_eq!(got.rows, 2);
}

#[tokio::test]
async fn append_with_a_mismatched_schema_stores_nothing() {
    let f = fixture().await;
    let (dataset, _) = f
        .store
        .create_dataset(T, "d", &options(Format::Csv), body("n,s\n1,a\n"))
        .await
        .unwrap();
    let files = f.files();

    // Another header.
    let error = f
        .store
        .append(T, dataset.id, &options(Format::Csv), body("n,other\n2,b\n"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::SchemaMismatch { .. }),
        "{error:?}"
    );

    // A declared schema with other types.
    let mut declared = options(Format::Csv);
    declared.schema = Some(Arc::new(Schema::new(vec![
        Field::new("n", DataType::Utf8, true),
        Field::new("s", DataType::Utf8, true),
    ])));
    let error = f
        .store
        .append(T, dataset.id, &declared, body("n,s\n2,b\n"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::SchemaMismatch { .. }),
        "{error:?}"
    );

    // NDJSON naming a field the dataset does not have.
    let error = f
        .store
        .append(
            T,
            dataset.id,
            &options(Format::Ndjson),
            body("{\"n\": 2, \"t\": 1}\n"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::SchemaMismatch { .. }),
        "{error:?}"
    );

    let (got, parts) = f.store.get(T, dataset.id).await.unwrap().unwrap();
    assert_eq!((got.parts, parts.len()), (1, 1));
    assert_eq!(f.files(), files);
}

#[tokio::test]
async fn append_to_a_missing_dataset_is_not_found() {
    let f = fixture().await;
    let error = f
        .store
        .append(T, DatasetId::new(), &options(Format::Csv), body("a\n1\n"))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound), "{error:?}");
    f.assert_nothing_stored().await;
}

#[tokio::test]
async fn another_tenant_sees_nothing_and_can_change_nothing() {
    let f = fixture().await;
    let other = f.other_tenant().await;
    let (dataset, _) = f
        .store
        .create_dataset(T, "mine", &options(Format::Csv), body("a\n1\n"))
        .await
        .unwrap();

    assert!(f.store.get(other, dataset.id).await.unwrap().is_none());
    assert!(
        f.store
            .committed_parts(other, dataset.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(f.store.list(other, None, 10).await.unwrap().is_empty());
    let error = f
        .store
        .append(other, dataset.id, &options(Format::Csv), body("a\n2\n"))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound), "{error:?}");
    assert!(!f.store.delete(other, dataset.id).await.unwrap());

    let (got, _) = f.store.get(T, dataset.id).await.unwrap().unwrap();
    assert_eq!((got.rows, got.parts), (1, 1));
    assert_eq!(f.files().len(), 1);
}

#[tokio::test]
async fn delete_removes_the_rows_and_the_objects() {
    let f = fixture().await;
    let (dataset, _) = f
        .store
        .create_dataset(T, "d", &options(Format::Csv), body("a\n1\n"))
        .await
        .unwrap();
    f.store
        .append(T, dataset.id, &options(Format::Csv), body("a\n2\n"))
        .await
        .unwrap();
    assert_eq!(f.files().len(), 2);

    assert!(f.store.delete(T, dataset.id).await.unwrap());
    assert!(f.store.get(T, dataset.id).await.unwrap().is_none());
    f.assert_nothing_stored().await;
    assert!(!f.store.delete(T, dataset.id).await.unwrap());
}

#[tokio::test]
async fn list_pages_newest_first_with_before() {
    let f = fixture().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (dataset, _) = f
            .store
            .create_dataset(
                T,
                &format!("d{i}"),
                &options(Format::Csv),
                body("a\n1\n2\n"),
            )
            .await
            .unwrap();
        ids.push(dataset.id);
    }
    ids.reverse();

    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = f.store.list(T, before, 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        assert!(
            page.iter()
                .all(|d| d.rows == 2 && d.parts == 1 && d.bytes > 0)
        );
        before = page.last().map(|d| d.id);
        seen.extend(page.into_iter().map(|d| d.id));
    }
    assert_eq!(seen, ids);
    assert!(f.store.list(T, None, 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn result_paths_live_under_the_tenant() {
    let f = fixture().await;
    let job = JobId::new();
    let path = f.store.result_path(T, job, 2);
    let dir = f.dir.path().canonicalize().unwrap();
    assert_eq!(
        format!("/{path}"),
        format!(
            "{}/tenants/{T}/results/{job}/attempt-2.parquet",
            dir.display()
        )
    );
    assert_eq!(f.store.object_store_url().as_str(), "file:///");
}

#[tokio::test]
async fn a_part_over_the_multipart_threshold_uploads_in_parts() {
    let f = fixture().await;
    // Incompressible text, so that the Parquet file passes 10 MiB.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut csv = String::from("v\n");
    for _ in 0..360_000 {
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            csv.push_str(&format!("{state:016x}"));
        }
        csv.push('\n');
    }
    let (dataset, part) = f
        .store
        .create_dataset(T, "big", &options(Format::Csv), body_in_large_chunks(csv))
        .await
        .unwrap();
    assert!(part.bytes > 10 << 20, "{} bytes", part.bytes);
    let (_, parts) = f
        .store
        .committed_parts(T, dataset.id)
        .await
        .unwrap()
        .unwrap();
    let on_disk = std::fs::metadata(format!("/{}", parts[0].path))
        .unwrap()
        .len();
    assert_eq!(on_disk as i64, part.bytes);
    assert_eq!(
        read_dataset(&f.store, T, dataset.id).await.num_rows(),
        360_000
    );
}

#[tokio::test]
async fn a_column_without_values_is_text_so_later_appends_can_fill_it() {
    let f = fixture().await;
    let (dataset, _) = f
        .store
        .create_dataset(T, "d", &options(Format::Csv), body("a,b\n1,\n2,\n"))
        .await
        .unwrap();
    assert_eq!(dataset.schema.field(1).data_type(), &DataType::Utf8);
    f.store
        .append(T, dataset.id, &options(Format::Csv), body("a,b\n3,hello\n"))
        .await
        .unwrap();
    let (ndjson, _) = f
        .store
        .create_dataset(
            T,
            "j",
            &options(Format::Ndjson),
            body("{\"a\": null, \"l\": []}\n"),
        )
        .await
        .unwrap();
    let types: Vec<String> = ndjson
        .schema
        .fields()
        .iter()
        .map(|f| f.data_type().to_string())
        .collect();
    assert_eq!(types, vec!["Utf8", "List(Utf8)"]);
}

/// Never run: fails to compile if the store's futures cannot move between
/// threads (the HTTP server needs them to).
#[allow(dead_code)]
fn store_futures_are_send(store: crunch_store::Store) {
    fn send<T: Send>(_: T) {}
    send(store.create_dataset(T, "d", &options(Format::Csv), body("a\n1\n")));
    send(store.append(T, DatasetId::new(), &options(Format::Csv), body("a\n1\n")));
    send(store.list(T, None, 1));
    send(store.get(T, DatasetId::new()));
    send(store.delete(T, DatasetId::new()));
    send(store.committed_parts(T, DatasetId::new()));
}
