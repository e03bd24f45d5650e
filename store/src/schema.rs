//! Schemas in their stored form, and the checks every dataset schema passes.
//!
//! A dataset's Arrow schema is stored (and shown to clients) as a list of
//! [`Column`]s whose `data_type` is Arrow's own string form of the type
//! (`Int64`, `Utf8`, `Timestamp(ns)`, ...), which Arrow parses back. Every
//! schema the store keeps is normalized: all columns nullable, no metadata.
//! Nullability is not enforced because a sample-based inference cannot know
//! it and a later append may hold nulls; readers treat every column as
//! nullable anyway.
//!
//! A client declares an upload's schema in a shorter text form,
//! `name:type,...` ([`parse_declared`]).

use std::{collections::HashSet, str::FromStr, sync::Arc};

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::error::{DeclaredSchemaError, StoreError};

/// One column of a schema in the stored form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// The column's name, unique within the schema.
    pub name: String,
    /// Arrow's string form of the type, e.g. `Int64`, `Float64`, `Utf8`.
    pub data_type: String,
    /// Whether the column may hold nulls (always true for stored schemas).
    pub nullable: bool,
}

/// The stored form of a schema.
pub fn to_columns(schema: &Schema) -> Vec<Column> {
    schema
        .fields()
        .iter()
        .map(|field| Column {
            name: field.name().clone(),
            data_type: field.data_type().to_string(),
            nullable: field.is_nullable(),
        })
        .collect()
}

/// Parses the stored form back into a normalized schema (for declared
/// schemas from clients, too). An unknown type, an empty or duplicate name is
/// `BadInput`.
pub fn from_columns(columns: &[Column]) -> Result<SchemaRef, StoreError> {
    let fields = columns
        .iter()
        .map(|column| {
            let data_type =
                DataType::from_str(&column.data_type).map_err(|error| StoreError::BadInput {
                    line: None,
                    column: Some(column.name.clone()),
                    message: format!("unknown data type {:?}: {error}", column.data_type),
                })?;
            Ok(Field::new(&column.name, data_type, true))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    normalize(&Schema::new(fields))
}

/// Parses a declared schema: `name:type` entries separated by commas, types
/// `string`, `int64`, `float64`, `bool`, `date`, `timestamp` (and a few
/// synonyms, any case), every column nullable. Names are trimmed; a name
/// may hold `:` (the type follows the last one). Empty entries are skipped.
///
/// Only the text is checked here; what every schema must be (unique,
/// non-empty names) is checked when the upload is ingested.
pub fn parse_declared(text: &str) -> Result<SchemaRef, StoreError> {
    let mut fields = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, type_name) =
            entry
                .rsplit_once(':')
                .ok_or_else(|| DeclaredSchemaError::NotNameType {
                    entry: entry.to_owned(),
                })?;
        let data_type = match type_name.trim().to_ascii_lowercase().as_str() {
            "string" | "utf8" | "text" => DataType::Utf8,
            "int" | "int64" | "integer" | "bigint" => DataType::Int64,
            "float" | "float64" | "double" => DataType::Float64,
            "bool" | "boolean" => DataType::Boolean,
            "date" => DataType::Date32,
            "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, None),
            other => {
                return Err(DeclaredSchemaError::UnknownType {
                    column: name.to_owned(),
                    type_name: other.to_owned(),
                }
                .into());
            }
        };
        fields.push(Field::new(name.trim(), data_type, true));
    }
    if fields.is_empty() {
        return Err(DeclaredSchemaError::NoColumns.into());
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// The schema as stored in `datasets.schema`.
pub(crate) fn to_json(schema: &Schema) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(to_columns(schema))
        .map_err(|error| StoreError::Invariant(format!("cannot serialize a schema: {error}")))
}

/// A schema read from `datasets.schema`; it was valid when written, so any
/// failure here is the store's.
pub(crate) fn from_json(value: serde_json::Value) -> Result<SchemaRef, StoreError> {
    let columns: Vec<Column> = serde_json::from_value(value)
        .map_err(|error| StoreError::Invariant(format!("stored schema is malformed: {error}")))?;
    from_columns(&columns)
        .map_err(|error| StoreError::Invariant(format!("stored schema does not parse: {error}")))
}

/// The schema the store keeps for `schema`: every column nullable, no
/// metadata. Rejects what could not be stored or queried: no columns, empty
/// or duplicate names, types whose string form does not parse back.
pub(crate) fn normalize(schema: &Schema) -> Result<SchemaRef, StoreError> {
    if schema.fields().is_empty() {
        return Err(StoreError::bad("the data has no columns"));
    }
    let mut seen = HashSet::new();
    let mut fields = Vec::with_capacity(schema.fields().len());
    for (index, field) in schema.fields().iter().enumerate() {
        let name = field.name();
        if name.trim().is_empty() {
            return Err(StoreError::bad(format!(
                "column {} has an empty name",
                index + 1
            )));
        }
        // PostgreSQL's jsonb, where the schema is kept, cannot hold a NUL.
        if name.contains('\0') {
            return Err(StoreError::BadInput {
                line: None,
                column: Some(name.replace('\0', "\\0")),
                message: format!("column {} has a NUL character in its name", index + 1),
            });
        }
        if !seen.insert(name.as_str()) {
            return Err(StoreError::BadInput {
                line: None,
                column: Some(name.clone()),
                message: "duplicate column name".into(),
            });
        }
        // The stored form must read back as the same type, or the dataset
        // could not be appended to or read after a restart.
        let text = field.data_type().to_string();
        if DataType::from_str(&text).ok().as_ref() != Some(field.data_type()) {
            return Err(StoreError::BadInput {
                line: None,
                column: Some(name.clone()),
                message: format!("data type {text} is not supported"),
            });
        }
        fields.push(Field::new(name, field.data_type().clone(), true));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// An inferred schema with `Null` types (columns with no values in the
/// sample) made `Utf8`: a dataset column must be able to hold the values a
/// later append brings, and text can hold anything.
pub(crate) fn nulls_as_text(schema: &Schema) -> Schema {
    fn fix(data_type: &DataType) -> DataType {
        match data_type {
            DataType::Null => DataType::Utf8,
            DataType::List(item) => DataType::List(Arc::new(fix_field(item))),
            DataType::LargeList(item) => DataType::LargeList(Arc::new(fix_field(item))),
            DataType::Struct(fields) => {
                DataType::Struct(fields.iter().map(|f| fix_field(f)).collect())
            }
            other => other.clone(),
        }
    }
    fn fix_field(field: &Field) -> Field {
        field.clone().with_data_type(fix(field.data_type()))
    }
    Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| fix_field(f))
            .collect::<Vec<_>>(),
    )
}

/// Whether the two schemas have the same column names and types, in order
/// (nullability and metadata aside).
pub(crate) fn same_columns(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields().iter())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type())
}

/// `name: type, ...`, for messages.
pub(crate) fn describe(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|field| format!("{}: {}", field.name(), field.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The mismatch error between what was required and what was found.
pub(crate) fn mismatch(expected: &Schema, found: &Schema) -> StoreError {
    StoreError::SchemaMismatch {
        expected: describe(expected),
        found: describe(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_types_survive_the_stored_form() {
        let types = [
            DataType::Int64,
            DataType::Float64,
            DataType::Boolean,
            DataType::Utf8,
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Second, None),
            DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into())),
            DataType::new_list(DataType::Int64, true),
            DataType::Decimal128(10, 2),
        ];
        let schema = Schema::new(
            types
                .iter()
                .enumerate()
                .map(|(i, t)| Field::new(format!("c{i}"), t.clone(), true))
                .collect::<Vec<_>>(),
        );
        let stored = to_json(&schema).unwrap();
        let back = from_json(stored).unwrap();
        assert_eq!(*back, schema);
    }

    #[test]
    fn duplicate_and_empty_names_are_rejected() {
        let dup = Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("a", DataType::Utf8, true),
        ]);
        assert!(matches!(
            normalize(&dup),
            Err(StoreError::BadInput { column: Some(c), .. }) if c == "a"
        ));
        let empty = Schema::new(vec![Field::new("", DataType::Int64, true)]);
        assert!(matches!(
            normalize(&empty),
            Err(StoreError::BadInput { .. })
        ));
    }

    #[test]
    fn a_declared_schema_reads_its_types_and_names() {
        let schema =
            parse_declared(" a:int64, b : String ,,c:FLOAT, d:bool,e:date,f:timestamp,g:h:text,")
                .unwrap();
        let expected = Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Float64, true),
            Field::new("d", DataType::Boolean, true),
            Field::new("e", DataType::Date32, true),
            Field::new("f", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("g:h", DataType::Utf8, true),
        ]);
        assert_eq!(*schema, expected);
    }

    #[test]
    fn a_declared_schema_that_does_not_parse_says_why() {
        let error = |text: &str| match parse_declared(text) {
            Err(StoreError::DeclaredSchema(error)) => error,
            other => panic!("{text:?}: {other:?}"),
        };
        assert_eq!(
            error("a:int64,b"),
            DeclaredSchemaError::NotNameType { entry: "b".into() }
        );
        let unknown = error("a:int64, b :Int128");
        assert_eq!(
            unknown,
            DeclaredSchemaError::UnknownType {
                column: "b ".into(),
                type_name: "int128".into()
            }
        );
        assert_eq!(
            unknown.to_string(),
            r#"schema type "int128" of "b " is not one of string, int64, float64, bool, date, timestamp"#
        );
        assert_eq!(error(" , ,"), DeclaredSchemaError::NoColumns);
        assert_eq!(error(""), DeclaredSchemaError::NoColumns);
        assert!(parse_declared("").unwrap_err().is_caller_fault());
    }
}
