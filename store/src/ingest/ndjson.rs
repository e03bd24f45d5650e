//! NDJSON bodies: one JSON object per line.
//!
//! Values are decoded by arrow's JSON decoder in batches. When a batch
//! fails, its lines are checked one at a time (as JSON with serde_json,
//! against the schema's fields, then decoded alone and column by column) to
//! name the line and the column: arrow's JSON messages name neither.

use std::{collections::HashSet, fs::File, sync::Arc};

use datafusion::arrow::{
    datatypes::{Schema, SchemaRef},
    error::ArrowError,
    json::{
        ReaderBuilder,
        reader::{Decoder, infer_json_schema_from_iterator},
    },
    record_batch::RecordBatch,
};
use serde_json::Value;

use super::{
    Converted, Expect, arrow_message, batch_rows, check_width,
    lines::{Line, Lines},
    sink::ParquetSink,
};
use crate::{
    error::StoreError,
    options::IngestOptions,
    schema::{describe, normalize, nulls_as_text},
};

/// Converts the NDJSON in `file` to Parquet.
pub(super) fn convert(
    file: &File,
    options: &IngestOptions,
    expect: Expect,
) -> Result<Converted, StoreError> {
    let records = options.infer_records.max(1);
    let target = match expect {
        Expect::Infer => infer(file, records)?,
        Expect::Declared(expected) => expected,
        Expect::Dataset(expected) => {
            check_names(file, records, &expected)?;
            expected
        }
    };

    check_width(target.fields().len(), options.max_columns)?;
    let rows_per_batch = batch_rows(target.fields().len());
    let mut sink = ParquetSink::new(target.clone())?;
    let mut decoder = decoder(&target, rows_per_batch)?;
    let mut lines = Lines::new(file, 1, 0)?;
    // First line (number, offset) of the batch being decoded.
    let mut batch_start: Option<(u64, u64)> = None;
    while let Some(line) = lines.next_line()? {
        if line.is_blank() {
            continue;
        }
        let start = *batch_start.get_or_insert((line.number, line.offset));
        let mut rest = line.bytes;
        while !rest.is_empty() {
            let decoded = decoder
                .decode(rest)
                .map_err(|error| locate(file, start, &target, error))?;
            rest = &rest[decoded..];
            if !rest.is_empty() {
                // The batch is full.
                flush(&mut decoder, &mut sink)
                    .map_err(|error| locate(file, start, &target, error))?;
                batch_start = Some((line.number, line.offset));
            }
        }
        if decoder.len() >= rows_per_batch {
            flush(&mut decoder, &mut sink).map_err(|error| locate(file, start, &target, error))?;
            batch_start = None;
        }
    }
    if let Some(start) = batch_start {
        flush(&mut decoder, &mut sink).map_err(|error| locate(file, start, &target, error))?;
    }
    sink.finish()
}

fn decoder(schema: &SchemaRef, batch_rows: usize) -> Result<Decoder, StoreError> {
    // Strict: a field the schema does not have is an error, not dropped.
    Ok(ReaderBuilder::new(schema.clone())
        .with_strict_mode(true)
        .with_batch_size(batch_rows)
        .build_decoder()?)
}

/// Writes the decoded rows to the sink. Only the decoder's errors are
/// returned (to be located); the sink's are stored in them as I/O.
fn flush(decoder: &mut Decoder, sink: &mut ParquetSink) -> Result<(), Located> {
    match decoder.flush() {
        Ok(Some(batch)) => sink.write(&batch).map_err(Located::Done),
        Ok(None) => Ok(()),
        Err(error) => Err(Located::Arrow(error)),
    }
}

/// A failure of a batch: arrow's, still to be located, or already final.
enum Located {
    Arrow(ArrowError),
    Done(StoreError),
}

impl From<ArrowError> for Located {
    fn from(error: ArrowError) -> Self {
        Located::Arrow(error)
    }
}

/// The schema inferred from the first `records` objects.
fn infer(file: &File, records: usize) -> Result<SchemaRef, StoreError> {
    let mut lines = Lines::new(file, 1, 0)?;
    let mut failure: Option<StoreError> = None;
    let mut read = 0usize;
    // Lazily, so that only one line at a time is in memory; a bad line stops
    // inference with its error kept aside.
    let values = std::iter::from_fn(|| {
        if read >= records || failure.is_some() {
            return None;
        }
        loop {
            let line = match lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => return None,
                Err(error) => {
                    failure = Some(StoreError::Io(error));
                    return Some(Err(ArrowError::JsonError("stopped".into())));
                }
            };
            if line.is_blank() {
                continue;
            }
            read += 1;
            return Some(match object(&line) {
                Ok(value) => Ok(value),
                Err(error) => {
                    failure = Some(error);
                    Err(ArrowError::JsonError("stopped".into()))
                }
            });
        }
    });
    let inferred = infer_json_schema_from_iterator(values);
    if let Some(failure) = failure {
        return Err(failure);
    }
    let inferred = inferred.map_err(|error| StoreError::bad(arrow_message(&error)))?;
    if read == 0 {
        return Err(StoreError::bad("the body has no rows"));
    }
    normalize(&nulls_as_text(&inferred))
}

/// An append without a declared schema: the first `records` objects may
/// only name the dataset's columns (a column they leave out is null).
fn check_names(file: &File, records: usize, expected: &Schema) -> Result<(), StoreError> {
    let known: HashSet<&str> = expected
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    let mut lines = Lines::new(file, 1, 0)?;
    let mut read = 0usize;
    let mut unknown: Vec<String> = Vec::new();
    while read < records {
        let Some(line) = lines.next_line()? else {
            break;
        };
        if line.is_blank() {
            continue;
        }
        read += 1;
        if let Value::Object(map) = object(&line)? {
            for key in map.keys() {
                if !known.contains(key.as_str()) && !unknown.contains(key) {
                    unknown.push(key.clone());
                }
            }
        }
    }
    if unknown.is_empty() {
        return Ok(());
    }
    Err(StoreError::SchemaMismatch {
        expected: describe(expected),
        found: format!("fields not in the dataset: {}", unknown.join(", ")),
    })
}

/// The line as a JSON object, or why it is not one.
fn object(line: &Line<'_>) -> Result<Value, StoreError> {
    let value: Value = serde_json::from_slice(line.bytes).map_err(|error| {
        if error.is_eof() {
            return StoreError::bad_line(line.number, "invalid JSON: the line ends inside a value");
        }
        // serde_json's message ends with "at line 1 column N"; on one line
        // only the column means anything.
        let text = error.to_string();
        let text = text.split(" at line ").next().unwrap_or(&text).to_string();
        StoreError::bad_line(
            line.number,
            format!("invalid JSON at character {}: {text}", error.column()),
        )
    })?;
    if !value.is_object() {
        return Err(StoreError::bad_line(line.number, "expected a JSON object"));
    }
    Ok(value)
}

/// The `BadInput` for the first bad line from `start` (number, offset).
fn locate(
    file: &File,
    start: (u64, u64),
    schema: &SchemaRef,
    error: impl Into<Located>,
) -> StoreError {
    let error = match error.into() {
        Located::Done(done) => return done,
        Located::Arrow(ArrowError::IoError(_, source)) => return StoreError::Io(source),
        Located::Arrow(error) => error,
    };
    match find_bad_line(file, start, schema) {
        Ok(Some(found)) => found,
        Ok(None) => StoreError::bad(arrow_message(&error)),
        Err(failed) => failed,
    }
}

fn find_bad_line(
    file: &File,
    (number, offset): (u64, u64),
    schema: &SchemaRef,
) -> Result<Option<StoreError>, StoreError> {
    let mut lines = Lines::new(file, number, offset)?;
    while let Some(line) = lines.next_line()? {
        if line.is_blank() {
            continue;
        }
        if let Some(bad) = check_line(&line, schema)? {
            return Ok(Some(bad));
        }
    }
    Ok(None)
}

/// What is wrong with one line, if anything.
fn check_line(line: &Line<'_>, schema: &SchemaRef) -> Result<Option<StoreError>, StoreError> {
    let value = match object(line) {
        Ok(value) => value,
        Err(bad) => return Ok(Some(bad)),
    };
    let Value::Object(map) = &value else {
        return Ok(None);
    };
    for key in map.keys() {
        if schema.field_with_name(key).is_err() {
            return Ok(Some(StoreError::BadInput {
                line: Some(line.number),
                column: Some(key.clone()),
                message: "field is not in the schema".into(),
            }));
        }
    }
    let Err(error) = decode_alone(line.bytes, schema)? else {
        return Ok(None);
    };
    // Which column: decode each field present on its own.
    for key in map.keys() {
        let Ok(field) = schema.field_with_name(key) else {
            continue;
        };
        let single = Arc::new(Schema::new(vec![field.clone()]));
        let mut only = ReaderBuilder::new(single)
            .with_strict_mode(false)
            .with_batch_size(1)
            .build_decoder()?;
        if let Err(error) = only.decode(line.bytes).and_then(|_| only.flush()) {
            return Ok(Some(StoreError::BadInput {
                line: Some(line.number),
                column: Some(key.clone()),
                message: arrow_message(&error),
            }));
        }
    }
    Ok(Some(StoreError::bad_line(
        line.number,
        arrow_message(&error),
    )))
}

/// Decodes one line under the full schema.
fn decode_alone(
    bytes: &[u8],
    schema: &SchemaRef,
) -> Result<Result<Option<RecordBatch>, ArrowError>, StoreError> {
    let mut decoder = decoder(schema, 1)?;
    Ok(decoder.decode(bytes).and_then(|_| decoder.flush()))
}
