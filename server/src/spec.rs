//! The spec as clients' generators need it.
//!
//! poem-openapi writes a few shapes that the generators users reach crunch
//! through (openapi-python-client, openapi-typescript, openapi-generator)
//! cannot read, or read as something the server does not do. [`tidy`]
//! rewrites them, and both `/openapi.json` and Swagger UI serve the result:
//!
//! - A documented field of an enum or object type is `allOf: [{$ref},
//!   {description}]`. openapi-python-client refuses an `allOf` of a
//!   non-object and drops every schema that uses one; it becomes
//!   `allOf: [{$ref}]`, the description beside it.
//! - An optional field without a default is `Option<T>`, which the server
//!   writes as `null` (or leaves out) and reads `null` as absent: it is
//!   marked `nullable`. A `$ref` cannot carry `nullable` beside it in
//!   OpenAPI 3.0, so such a field becomes `allOf: [{$ref}]` with
//!   `nullable: true`, the one shape all three generators read as nullable.
//! - An optional field with a default: openapi-typescript (with its default
//!   options) makes a property with a `default` required in a named
//!   schema, so a job without `priority` would not type-check. The default
//!   moves into the description; the field stays optional.
//! - A query parameter of an enum type with a default is `allOf: [{$ref},
//!   {default}]`, which openapi-python-client refuses and drops the
//!   operation for; it becomes a plain `$ref`, the default in the
//!   description.
//! - A text response (`text/csv`) is `string` with `format: binary`, which
//!   openapi-python-client reads into bytes from the decoded text and
//!   fails; it is a plain `string`.
//! - Uploads are declared as `application/octet-stream` only, with
//!   `format` naming the encoding: openapi-python-client cannot send any
//!   other raw media type and drops the operation. The server also takes
//!   the `text/csv`, `application/x-ndjson` and
//!   `application/vnd.apache.parquet` bodies that curl users send; the
//!   operation's description says so.

use serde_json::{Map, Value};

/// Media types an upload may have beyond `application/octet-stream`,
/// accepted but not declared (see the module's documentation).
pub const RAW_UPLOAD_TYPES: [&str; 3] = [
    "text/csv",
    "application/x-ndjson",
    "application/vnd.apache.parquet",
];

/// The spec `raw` (poem-openapi's JSON) rewritten for generators.
pub fn tidy(raw: &str) -> Result<String, serde_json::Error> {
    let mut spec: Value = serde_json::from_str(raw)?;
    if let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for schema in schemas.values_mut() {
            tidy_object(schema);
        }
    }
    if let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) {
        for operation in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in operation.values_mut() {
                tidy_operation(operation);
            }
        }
    }
    serde_json::to_string_pretty(&spec)
}

/// An object schema's properties: single-`$ref` wrappers, nullability and
/// defaults. Other schemas (enums, unions) pass unchanged, and so do the
/// object parts inside a union's `allOf`.
fn tidy_object(schema: &mut Value) {
    if let Some(parts) = schema.get_mut("allOf").and_then(Value::as_array_mut) {
        parts.iter_mut().for_each(tidy_object);
    }
    let required: Vec<String> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        let Some(property) = property.as_object_mut() else {
            continue;
        };
        single_ref(property);
        if required.contains(name) {
            continue;
        }
        match property.remove("default") {
            Some(default) => describe_default(property, &default),
            None => nullable(property),
        }
    }
}

/// `allOf: [{$ref}, {description, default, …}]` as `allOf: [{$ref}]`, the
/// second part's keys moved beside it (the description is there already).
fn single_ref(property: &mut Map<String, Value>) {
    let Some(Value::Array(parts)) = property.get_mut("allOf") else {
        return;
    };
    if parts.len() != 2 || parts[0].get("$ref").is_none() {
        return;
    }
    let Some(Value::Object(extra)) = parts.pop() else {
        return;
    };
    for (key, value) in extra {
        property.entry(key).or_insert(value);
    }
}

/// Marks an optional property nullable, in a shape the generators read.
fn nullable(property: &mut Map<String, Value>) {
    if let Some(reference) = property.remove("$ref") {
        let mut wrapped = Map::new();
        wrapped.insert("$ref".to_owned(), reference);
        property.insert(
            "allOf".to_owned(),
            Value::Array(vec![Value::Object(wrapped)]),
        );
    }
    property.insert("nullable".to_owned(), Value::Bool(true));
}

/// Says `default` in the description, unless the description says it.
fn describe_default(property: &mut Map<String, Value>, default: &Value) {
    let description = property
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if description.to_lowercase().contains("default") {
        return;
    }
    let said = match description {
        "" => format!("Default: {default}."),
        text => format!("{text} Default: {default}."),
    };
    property.insert("description".to_owned(), Value::String(said));
}

/// An operation's parameters and upload body.
fn tidy_operation(operation: &mut Value) {
    if let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    {
        for parameter in parameters.iter_mut() {
            tidy_parameter(parameter);
        }
    }
    if let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    {
        for response in responses.values_mut() {
            let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else {
                continue;
            };
            for (media_type, body) in content.iter_mut() {
                if media_type.starts_with("text/")
                    && let Some(schema) = body.get_mut("schema").and_then(Value::as_object_mut)
                {
                    schema.remove("format");
                }
            }
        }
    }
    let Some(content) = operation
        .pointer_mut("/requestBody/content")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if content.contains_key("application/octet-stream") {
        for raw in RAW_UPLOAD_TYPES {
            content.remove(raw);
        }
    }
}

/// An enum-typed parameter's `allOf: [{$ref}, {default}]` as a plain
/// `$ref`, the default said in the description.
fn tidy_parameter(parameter: &mut Value) {
    let Some(schema) = parameter.get_mut("schema").and_then(Value::as_object_mut) else {
        return;
    };
    let Some(Value::Array(parts)) = schema.get("allOf") else {
        return;
    };
    let Some(reference) = parts.first().and_then(|p| p.get("$ref")).cloned() else {
        return;
    };
    let default = parts.iter().skip(1).find_map(|p| p.get("default")).cloned();
    schema.clear();
    schema.insert("$ref".to_owned(), reference);
    if let Some(default) = default
        && let Some(parameter) = parameter.as_object_mut()
    {
        describe_default(parameter, &default);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_and_parameters_take_the_shapes_generators_read() {
        let raw = json!({
            "components": {"schemas": {"Job": {
                "type": "object",
                "required": ["state"],
                "properties": {
                    "state": {"allOf": [{"$ref": "#/components/schemas/JobState"},
                                        {"description": "Its state."}],
                              "description": "Its state."},
                    "scaling": {"$ref": "#/components/schemas/Scaling"},
                    "error": {"type": "string"},
                    "priority": {"type": "integer", "default": 0, "description": "Higher first."}
                }
            }}},
            "paths": {"/r": {"get": {
                "parameters": [{"name": "format", "in": "query", "required": false,
                    "schema": {"allOf": [{"$ref": "#/components/schemas/F"}, {"default": "json"}]}}],
                "responses": {"200": {"content": {
                    "text/csv": {"schema": {"type": "string", "format": "binary"}}
                }}},
                "requestBody": {"content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    "text/csv": {"schema": {"type": "string", "format": "binary"}}
                }}
            }}}
        });
        let tidied: Value = serde_json::from_str(&tidy(&raw.to_string()).unwrap()).unwrap();
        let job = &tidied["components"]["schemas"]["Job"]["properties"];
        assert_eq!(
            job["state"],
            json!({"allOf": [{"$ref": "#/components/schemas/JobState"}], "description": "Its state."})
        );
        assert_eq!(
            job["scaling"],
            json!({"allOf": [{"$ref": "#/components/schemas/Scaling"}], "nullable": true})
        );
        assert_eq!(job["error"], json!({"type": "string", "nullable": true}));
        assert_eq!(
            job["priority"],
            json!({"type": "integer", "description": "Higher first. Default: 0."})
        );
        let get = &tidied["paths"]["/r"]["get"];
        assert_eq!(
            get["parameters"][0]["schema"],
            json!({"$ref": "#/components/schemas/F"})
        );
        assert_eq!(
            get["parameters"][0]["description"],
            json!("Default: \"json\".")
        );
        assert_eq!(
            get["responses"]["200"]["content"]["text/csv"]["schema"],
            json!({"type": "string"})
        );
        let content = get["requestBody"]["content"].as_object().unwrap();
        assert_eq!(
            content.keys().collect::<Vec<_>>(),
            vec!["application/octet-stream"]
        );
    }
}
