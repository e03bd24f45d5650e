//! Ingestion end to end: bodies in, Parquet parts and rows out, and precise
//! errors that leave nothing behind.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crate::common::*;
use crunch_queue::TenantId;
use crunch_store::{CsvOptions, Format, StoreError};
use datafusion::{
    arrow::{
        array::{Array, ArrayRef, AsArray, Int32Array, RecordBatch, StringArray},
        datatypes::{DataType, Field, Float64Type, Int64Type, Schema},
    },
    parquet::arrow::ArrowWriter,
};

const T: TenantId = TenantId::DEFAULT;

fn column_type(batch: &RecordBatch, name: &str) -> DataType {
    batch
        .schema()
        .field_with_name(name)
        .unwrap()
        .data_type()
        .clone()
}

#[tokio::test]
async fn csv_with_a_header_na_nulls_and_a_custom_delimiter_round_trips() {
    let f = fixture().await;
    let mut options = options(Format::Csv);
    options.csv = CsvOptions {
        delimiter: b';',
        header: true,
        null_values: vec!["NA".into(), String::new()],
    };
    let csv = "id;name;price;day\n1;apple;1.5;2024-01-02\n2;NA;NA;NA\n3;pear;2;2024-03-04\n";
    let (dataset, part) = f
        .store
        .create_dataset(T, "fruit", &options, body(csv))
        .await
        .unwrap();
    assert_eq!((dataset.rows, dataset.parts, part.rows), (3, 1, 3));
    assert!(part.bytes > 0);

    let batch = read_dataset(&f.store, T, dataset.id).await;
    assert_eq!(column_type(&batch, "id"), DataType::Int64);
    assert_eq!(column_type(&batch, "price"), DataType::Float64);
    assert_eq!(column_type(&batch, "day"), DataType::Date32);
    let ids = batch
        .column_by_name("id")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(ids.values().to_vec(), vec![1, 2, 3]);
    let names = batch.column_by_name("name").unwrap().as_string::<i32>();
    assert_eq!(names.value(0), "apple");
    assert!(names.is_null(1));
    let prices = batch
        .column_by_name("price")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(prices.value(2), 2.0);
    assert!(prices.is_null(1));
    assert!(batch.column_by_name("day").unwrap().is_null(1));
}

#[tokio::test]
async fn ndjson_round_trips() {
    let f = fixture().await;
    let ndjson = concat!(
        "{\"id\": 1, \"name\": \"a\", \"score\": 1.5, \"ok\": true}\n",
        "\n",
        "{\"id\": 2, \"score\": 2, \"ok\": false}\n",
        "{\"id\": 3, \"name\": null, \"score\": null, \"ok\": null}",
    );
    let (dataset, _) = f
        .store
        .create_dataset(T, "events", &options(Format::Ndjson), body(ndjson))
        .await
        .unwrap();
    assert_eq!(dataset.rows, 3);
    let batch = read_dataset(&f.store, T, dataset.id).await;
    assert_eq!(column_type(&batch, "id"), DataType::Int64);
    assert_eq!(column_type(&batch, "score"), DataType::Float64);
    assert_eq!(column_type(&batch, "ok"), DataType::Boolean);
    let scores = batch
        .column_by_name("score")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!((scores.value(0), scores.value(1)), (1.5, 2.0));
    assert!(scores.is_null(2));
    let names = batch.column_by_name("name").unwrap().as_string::<i32>();
    assert_eq!(names.value(0), "a");
    assert_eq!(names.null_count(), 2);
}

fn parquet_bytes() -> Vec<u8> {
    // Non-nullable columns: the stored schema makes them nullable.
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int32, false),
        Field::new("s", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(vec![10, 20, 30])),
        Arc::new(StringArray::from(vec!["x", "y", "z"])),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    out
}

#[tokio::test]
async fn a_parquet_upload_round_trips() {
    let f = fixture().await;
    let (dataset, _) = f
        .store
        .create_dataset(T, "p", &options(Format::Parquet), body(parquet_bytes()))
        .await
        .unwrap();
    assert_eq!(dataset.rows, 3);
    assert!(dataset.schema.fields().iter().all(|f| f.is_nullable()));
    let batch = read_dataset(&f.store, T, dataset.id).await;
    let n = batch
        .column_by_name("n")
        .unwrap()
        .as_primitive::<datafusion::arrow::datatypes::Int32Type>();
    assert_eq!(n.values().to_vec(), vec![10, 20, 30]);
    assert_eq!(
        batch
            .column_by_name("s")
            .unwrap()
            .as_string::<i32>()
            .value(2),
        "z"
    );
}

#[tokio::test]
async fn a_declared_schema_wins_over_inference() {
    let f = fixture().await;
    let mut options = options(Format::Csv);
    options.schema = Some(Arc::new(Schema::new(vec![
        Field::new("id", DataType::Float64, true),
        Field::new("code", DataType::Utf8, true),
    ])));
    let (dataset, _) = f
        .store
        .create_dataset(T, "codes", &options, body("id,code\n1,007\n2,010\n"))
        .await
        .unwrap();
    assert_eq!(dataset.schema.field(1).data_type(), &DataType::Utf8);
    let batch = read_dataset(&f.store, T, dataset.id).await;
    assert_eq!(column_type(&batch, "id"), DataType::Float64);
    assert_eq!(
        batch
            .column_by_name("code")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "007"
    );
}

#[tokio::test]
async fn a_bad_value_on_line_4_names_the_line_and_column_and_stores_nothing() {
    let f = fixture().await;
    let mut options = options(Format::Csv);
    // Infer from the first two rows only, so that price is a number.
    options.infer_records = 2;
    let csv = "id,price\n1,1.5\n2,2.5\n3,abc\n4,5\n";
    let error = f
        .store
        .create_dataset(T, "bad", &options, body(csv))
        .await
        .unwrap_err();
    match &error {
        StoreError::BadInput {
            line,
            column,
            message,
        } => {
            assert_eq!(*line, Some(4), "{error}");
            assert_eq!(column.as_deref(), Some("price"), "{error}");
            assert!(message.contains("abc"), "{message}");
        }
        other => panic!("expected BadInput, got {other:?}"),
    }
    assert!(error.is_caller_fault());
    f.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_bad_value_after_a_multi_line_field_names_the_file_line() {
    let f = fixture().await;
    let mut options = options(Format::Csv);
    options.schema = Some(Arc::new(Schema::new(vec![
        Field::new("note", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
    ])));
    let csv = "note,n\n\"two\nlines\",1\nok,2\nbad,x\n";
    let error = f
        .store
        .create_dataset(T, "bad", &options, body(csv))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::BadInput { line: Some(5), column: Some(c), .. } if c == "n"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_bad_value_in_a_later_batch_names_its_line() {
    let f = fixture().await;
    let mut csv = String::from("n\n");
    for i in 0..20_000 {
        csv.push_str(&format!("{i}\n"));
    }
    csv.push_str("oops\n");
    let mut options = options(Format::Csv);
    options.infer_records = 10;
    let error = f
        .store
        .create_dataset(T, "big", &options, body(csv))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::BadInput { line: Some(20_002), column: Some(c), .. } if c == "n"),
        "{error:?}"
    );
    f.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_line_with_the_wrong_number_of_fields_is_named() {
    let f = fixture().await;
    let error = f
        .store
        .create_dataset(T, "bad", &options(Format::Csv), body("a,b\n1,2\n3\n4,5\n"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::BadInput { line: Some(3), .. }),
        "{error:?}"
    );
    f.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_quoted_field_left_open_by_a_truncated_body_names_its_line() {
    let f = fixture().await;
    // Quotes inside unquoted fields and doubled quotes are not openings.
    let csv = "a,b\n1,\"one\nline\"\n2,x\"y\n3,\"say \"\"hi\"\"\"\n4,\"cut off\n5,z\n";
    let error = f
        .store
        .create_dataset(T, "bad", &options(Format::Csv), body(csv))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::BadInput { line: Some(6), message, .. } if message.contains("never closed")),
        "{error:?}"
    );
    f.assert_nothing_stored().await;
    let whole = csv.replace("cut off", "cut off\"");
    let (dataset, _) = f
        .store
        .create_dataset(T, "good", &options(Format::Csv), body(whole))
        .await
        .unwrap();
    assert_eq!(dataset.rows, 5);
}

#[tokio::test]
async fn invalid_utf8_is_named_by_line() {
    let f = fixture().await;
    let mut csv = b"a,b\n1,x\n2,".to_vec();
    csv.extend_from_slice(&[0xff, 0xfe]);
    csv.extend_from_slice(b"\n");
    let error = f
        .store
        .create_dataset(T, "bad", &options(Format::Csv), body(csv))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::BadInput { line: Some(3), .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn empty_bodies_headers_without_rows_and_bad_headers_are_rejected() {
    let f = fixture().await;
    let cases: [(&str, Option<u64>); 4] = [
        ("", None),
        ("a,b\n", None),
        ("a,a\n1,2\n", Some(1)),
        ("a,\n1,2\n", Some(1)),
    ];
    for (csv, line) in cases {
        let error = f
            .store
            .create_dataset(T, "bad", &options(Format::Csv), body(csv))
            .await
            .unwrap_err();
        match &error {
            StoreError::BadInput { line: found, .. } => {
                assert_eq!(*found, line, "{csv:?}: {error}")
            }
            other => panic!("{csv:?}: expected BadInput, got {other:?}"),
        }
    }
    f.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_truncated_parquet_file_is_bad_input_and_stores_nothing() {
    let f = fixture().await;
    let mut bytes = parquet_bytes();
    bytes.truncate(bytes.len() - 10);
    let error = f
        .store
        .create_dataset(T, "p", &options(Format::Parquet), body(bytes))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::BadInput { line: None, .. }),
        "{error:?}"
    );
    f.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_body_over_max_bytes_is_too_large_and_stores_nothing() {
    let f = fixture().await;
    let mut options = options(Format::Csv);
    options.max_bytes = 10;
    let error = f
        .store
        .create_dataset(T, "big", &options, body("a,b\n1,2\n3,4\n5,6\n"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::TooLarge { limit: 10 }),
        "{error:?}"
    );
    f.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_line_longer_than_max_line_bytes_is_named() {
    let f = fixture().await;
    let mut options = options(Format::Ndjson);
    options.max_line_bytes = 30;
    let ndjson = "{\"a\": 1}\n{\"a\": 2}\n{\"a\": \"a rather long value indeed\"}\n";
    let error = f
        .store
        .create_dataset(T, "long", &options, body(ndjson))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::BadInput { line: Some(3), .. }),
        "{error:?}"
    );
    f.assert_nothing_stored().await;
}

#[tokio::test]
async fn ndjson_errors_name_the_line_and_column() {
    let f = fixture().await;
    let cases: [(&str, u64, Option<&str>); 3] = [
        ("{\"a\": 1}\n{\"a\": 2\n{\"a\": 3}\n", 2, None),
        ("{\"a\": 1}\n[1]\n", 2, None),
        (
            "{\"a\": 1, \"b\": \"x\"}\n\n{\"a\": 2, \"b\": \"y\"}\n{\"a\": \"three\", \"b\": \"z\"}\n",
            4,
            Some("a"),
        ),
    ];
    let mut options = options(Format::Ndjson);
    // Infer from two records, so that a later mistyped value is an error.
    options.infer_records = 2;
    for (ndjson, line, column) in cases {
        let error = f
            .store
            .create_dataset(T, "bad", &options, body(ndjson))
            .await
            .unwrap_err();
        match &error {
            StoreError::BadInput {
                line: l, column: c, ..
            } => {
                assert_eq!(
                    (*l, c.as_deref()),
                    (Some(line), column),
                    "{ndjson:?}: {error}"
                )
            }
            other => panic!("{ndjson:?}: expected BadInput, got {other:?}"),
        }
    }
    f.assert_nothing_stored().await;
}

#[tokio::test]
async fn an_ndjson_field_not_in_the_declared_schema_is_bad_input() {
    let f = fixture().await;
    let mut options = options(Format::Ndjson);
    options.schema = Some(Arc::new(Schema::new(vec![Field::new(
        "a",
        DataType::Int64,
        true,
    )])));
    let error = f
        .store
        .create_dataset(
            T,
            "bad",
            &options,
            body("{\"a\": 1}\n{\"a\": 2, \"zz\": 3}\n"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::BadInput { line: Some(2), column: Some(c), .. } if c == "zz"),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_invalid_name_is_rejected_before_reading() {
    let f = fixture().await;
    for name in ["", "   ", &"x".repeat(201), "a\nb"] {
        let error = f
            .store
            .create_dataset(T, name, &options(Format::Csv), body("a\n1\n"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::InvalidName(_)),
            "{name:?}: {error:?}"
        );
    }
    f.assert_nothing_stored().await;
}
