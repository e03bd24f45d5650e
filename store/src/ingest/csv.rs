//! CSV bodies.
//!
//! Values are parsed by arrow's CSV decoder in batches. When a batch fails,
//! the failing record is found again by decoding the batch's bytes one
//! record at a time, and the failing column by decoding that record one
//! column at a time: arrow's messages count lines their own way and name
//! columns by index, while the client needs the file's line and the
//! column's name.

use std::{
    fs::File,
    io::{BufRead, BufReader, Seek, SeekFrom},
    sync::Arc,
};

use datafusion::arrow::{
    array::{Array, StringArray},
    csv::{
        ReaderBuilder,
        reader::{Decoder, Format},
    },
    datatypes::{DataType, Field, Schema, SchemaRef},
    error::ArrowError,
    record_batch::RecordBatch,
};
use regex::Regex;

use super::{
    Converted, Expect, arrow_message, batch_rows, check_width, lines::line_at, sink::ParquetSink,
};
use crate::{
    error::StoreError,
    options::{CsvOptions, IngestOptions},
    schema::{describe, normalize, nulls_as_text},
};

/// Reads ahead of the decoder.
const READ_BUFFER: usize = 1 << 20;

/// Converts the CSV in `file` to Parquet.
pub(super) fn convert(
    file: &File,
    options: &IngestOptions,
    expect: Expect,
) -> Result<Converted, StoreError> {
    let format = format(&options.csv)?;
    let header = options.csv.header;
    check_quotes_closed(file, options.csv.delimiter)?;
    // The first record says how wide the body is, at the cost of one line.
    let found = first_record(file, &format)?;
    check_width(found.fields().len(), options.max_columns)?;
    let target = match expect {
        Expect::Infer => infer(file, &format, header, options.infer_records)?,
        Expect::Declared(expected) | Expect::Dataset(expected) => {
            check_columns(&expected, &found, header)?;
            expected
        }
    };

    let mut sink = ParquetSink::new(target.clone())?;
    let mut decoder = decoder(&target, &format, header, batch_rows(target.fields().len()));
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    reader.seek(SeekFrom::Start(0))?;
    let mut offset = 0u64;
    // Where the batch being decoded starts: a record boundary, or the start
    // of the file (before the header).
    let mut batch_start = 0u64;
    loop {
        match next_batch(&mut reader, &mut decoder, &mut offset)? {
            Ok(Some(batch)) => {
                sink.write(&batch)?;
                batch_start = offset;
            }
            Ok(None) => break,
            Err(error) => {
                let skip_header = header && batch_start == 0;
                return Err(locate(
                    file,
                    batch_start,
                    skip_header,
                    &target,
                    &format,
                    error,
                ));
            }
        }
    }
    sink.finish()
}

/// Where a quoted field stands while scanning.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoting {
    /// At the start of a field, where a quote opens a quoted field.
    FieldStart,
    /// In an unquoted field, where quotes are plain characters.
    Unquoted,
    /// In a quoted field.
    Quoted,
    /// Just after a quote in a quoted field: it closed the field, or a
    /// second quote follows and the pair stands for one.
    QuoteInQuoted,
}

/// Fails when the body opens a quoted field and never closes it. Arrow's
/// decoder (like the csv crate it builds on) ends such a field at the end
/// of the input, so a truncated body would be taken as complete, its last
/// field holding every line after the quote. The scan follows the same
/// rules as the decoder (RFC 4180 quotes, `""` inside a quoted field).
fn check_quotes_closed(file: &File, delimiter: u8) -> Result<(), StoreError> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    reader.seek(SeekFrom::Start(0))?;
    let mut state = Quoting::FieldStart;
    let mut line = 1u64;
    let mut opened_on = 1u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        for &byte in buf {
            state = match (state, byte) {
                (Quoting::Quoted, b'"') => Quoting::QuoteInQuoted,
                (Quoting::Quoted, _) => Quoting::Quoted,
                (Quoting::QuoteInQuoted, b'"') => Quoting::Quoted,
                (Quoting::FieldStart, b'"') => {
                    opened_on = line;
                    Quoting::Quoted
                }
                (_, b) if b == delimiter || b == b'\n' || b == b'\r' => Quoting::FieldStart,
                _ => Quoting::Unquoted,
            };
            if byte == b'\n' {
                line += 1;
            }
        }
        let len = buf.len();
        reader.consume(len);
    }
    if state == Quoting::Quoted {
        return Err(StoreError::bad_line(
            opened_on,
            "a quoted field opened on this line is never closed (is the body truncated?)",
        ));
    }
    Ok(())
}

/// Arrow's CSV format for the options.
fn format(options: &CsvOptions) -> Result<Format, StoreError> {
    let null_values = if options.null_values.is_empty() {
        // Arrow's default treats empty fields as null; with no null values
        // nothing is, so an empty field is an empty string.
        r"[^\s\S]".to_string()
    } else {
        let alternatives: Vec<String> = options
            .null_values
            .iter()
            .map(|value| regex::escape(value))
            .collect();
        format!("^(?:{})$", alternatives.join("|"))
    };
    let null_regex = Regex::new(&null_values)
        .map_err(|error| StoreError::bad(format!("invalid null values: {error}")))?;
    Ok(Format::default()
        .with_header(options.header)
        .with_delimiter(options.delimiter)
        .with_null_regex(null_regex))
}

fn decoder(schema: &SchemaRef, format: &Format, header: bool, batch_rows: usize) -> Decoder {
    ReaderBuilder::new(schema.clone())
        .with_format(format.clone())
        .with_header(header)
        .with_batch_size(batch_rows)
        .build_decoder()
}

/// Feeds the decoder until it has a full batch or the file ends, and
/// flushes. The outer error is the file's, the inner one the data's.
fn next_batch(
    reader: &mut BufReader<&File>,
    decoder: &mut Decoder,
    offset: &mut u64,
) -> Result<Result<Option<RecordBatch>, ArrowError>, StoreError> {
    loop {
        let buf = reader.fill_buf()?;
        let decoded = match decoder.decode(buf) {
            Ok(decoded) => decoded,
            Err(error) => return Ok(Err(error)),
        };
        reader.consume(decoded);
        *offset += decoded as u64;
        if decoded == 0 || decoder.capacity() == 0 {
            return Ok(decoder.flush());
        }
    }
}

/// The schema inferred from the first `records` records.
fn infer(
    file: &File,
    format: &Format,
    header: bool,
    records: usize,
) -> Result<SchemaRef, StoreError> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    reader.seek(SeekFrom::Start(0))?;
    let (inferred, read) = match format.infer_schema(reader, Some(records.max(1))) {
        Ok(inferred) => inferred,
        Err(error) => {
            // Find the bad record with the decoder, which reports where.
            let width = first_record(file, format)?.fields().len();
            let text = text_schema(width);
            return Err(locate(file, 0, header, &text, format, error));
        }
    };
    if read == 0 {
        return Err(StoreError::bad("the body has no rows"));
    }
    normalize(&nulls_as_text(&inferred)).map_err(|error| on_header(error, header))
}

/// The names (or with no header, just the number) of the columns, read from
/// the first record.
fn first_record(file: &File, format: &Format) -> Result<Schema, StoreError> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    reader.seek(SeekFrom::Start(0))?;
    format
        .infer_schema(reader, Some(0))
        .map(|(schema, _)| schema)
        .map_err(|error| StoreError::bad_line(1, arrow_message(&error)))
}

/// A schema-level problem found in the header is on line 1.
fn on_header(error: StoreError, header: bool) -> StoreError {
    match error {
        StoreError::BadInput {
            line: None,
            column,
            message,
        } if header => StoreError::BadInput {
            line: Some(1),
            column,
            message,
        },
        other => other,
    }
}

/// The body's columns (from its header, or just their number) against the
/// required ones.
fn check_columns(expected: &Schema, found: &Schema, header: bool) -> Result<(), StoreError> {
    let names_match = expected.fields().len() == found.fields().len()
        && (!header
            || expected
                .fields()
                .iter()
                .zip(found.fields().iter())
                .all(|(a, b)| a.name() == b.name()));
    if names_match {
        return Ok(());
    }
    let found = if header {
        found
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        format!("{} columns", found.fields().len())
    };
    Err(StoreError::SchemaMismatch {
        expected: describe(expected),
        found,
    })
}

/// Every column as text: decodes any well-formed record.
fn text_schema(width: usize) -> SchemaRef {
    Arc::new(Schema::new(
        (0..width)
            .map(|i| Field::new(format!("column_{}", i + 1), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

/// The `BadInput` for the first bad record at or after `from`; `error` is
/// what the batch failed with, the message if the record cannot be found.
fn locate(
    file: &File,
    from: u64,
    skip_header: bool,
    schema: &SchemaRef,
    format: &Format,
    error: ArrowError,
) -> StoreError {
    if let ArrowError::IoError(_, source) = error {
        return StoreError::Io(source);
    }
    match find_bad_record(file, from, skip_header, schema, format) {
        Ok(Some(found)) => found,
        Ok(None) => StoreError::bad(arrow_message(&error)),
        Err(io) => io,
    }
}

fn find_bad_record(
    file: &File,
    from: u64,
    skip_header: bool,
    schema: &SchemaRef,
    format: &Format,
) -> Result<Option<StoreError>, StoreError> {
    let mut start = from;
    if skip_header {
        let text = text_schema(schema.fields().len());
        let (end, _) = decode_one(file, 0, &mut decoder(&text, format, false, 1))?;
        start = end;
    }
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    reader.seek(SeekFrom::Start(start))?;
    let mut decoder = decoder(schema, format, false, 1);
    let mut offset = start;
    loop {
        let record_start = offset;
        match next_batch(&mut reader, &mut decoder, &mut offset)? {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(None),
            Err(error) => {
                return describe_bad_record(file, record_start, schema, format, error).map(Some);
            }
        }
    }
}

/// Decodes the one record starting at `at`: its end and the result.
fn decode_one(
    file: &File,
    at: u64,
    decoder: &mut Decoder,
) -> Result<(u64, Result<Option<RecordBatch>, ArrowError>), StoreError> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    reader.seek(SeekFrom::Start(at))?;
    let mut offset = at;
    let result = next_batch(&mut reader, decoder, &mut offset)?;
    Ok((offset, result))
}

/// The `BadInput` for the record at `at`, which failed with `error`.
fn describe_bad_record(
    file: &File,
    at: u64,
    schema: &SchemaRef,
    format: &Format,
    error: ArrowError,
) -> Result<StoreError, StoreError> {
    let line = Some(line_at(file, at)?);
    let message = arrow_message(&error);
    // Arrow's record-level messages carry its own line count; say it plainly.
    if let ArrowError::CsvError(_) = error {
        let message = if message.contains("number of fields") {
            format!("wrong number of fields: expected {}", schema.fields().len())
        } else if message.contains("UTF-8") {
            "invalid UTF-8".to_string()
        } else {
            message
        };
        return Ok(StoreError::BadInput {
            line,
            column: None,
            message,
        });
    }
    // A value failed: decode the record one column at a time.
    for (index, field) in schema.fields().iter().enumerate() {
        let mut one = ReaderBuilder::new(schema.clone())
            .with_format(format.clone())
            .with_header(false)
            .with_batch_size(1)
            .with_projection(vec![index])
            .build_decoder();
        if let (_, Err(_)) = decode_one(file, at, &mut one)? {
            let value = text_value(file, at, schema.fields().len(), index, format)?;
            let message = match value {
                Some(value) => format!("cannot read {value:?} as {}", field.data_type()),
                None => message,
            };
            return Ok(StoreError::BadInput {
                line,
                column: Some(field.name().clone()),
                message,
            });
        }
    }
    Ok(StoreError::BadInput {
        line,
        column: None,
        message,
    })
}

/// The text of one field of the record at `at`.
fn text_value(
    file: &File,
    at: u64,
    width: usize,
    index: usize,
    format: &Format,
) -> Result<Option<String>, StoreError> {
    let mut decoder = ReaderBuilder::new(text_schema(width))
        .with_format(format.clone())
        .with_header(false)
        .with_batch_size(1)
        .with_projection(vec![index])
        .build_decoder();
    let (_, result) = decode_one(file, at, &mut decoder)?;
    Ok(result.ok().flatten().and_then(|batch| {
        let column = batch.column(0).as_any().downcast_ref::<StringArray>()?;
        (!column.is_empty() && column.is_valid(0)).then(|| column.value(0).to_string())
    }))
}
