//! Datasets: upload, append an atomic part, list, get, delete.

use crunch_store::{CsvOptions, DatasetId, Format, IngestOptions};
use poem_openapi::{
    ApiRequest, ApiResponse, OpenApi,
    param::{Path, Query},
    payload::{Binary, Json},
};
use uuid::Uuid;

use super::{
    ApiTags, convert,
    model::{DatasetCreated, DatasetDetail, DatasetPage, Part, UploadFormat},
};
use crate::{
    auth::{Authorized, Read, Write},
    problem::ApiError,
    problems,
    state::AppState,
};

/// The dataset operations.
pub struct DatasetsApi {
    /// Shared state.
    pub state: AppState,
}

/// An upload body: the file, as `application/octet-stream` with `format`
/// naming its encoding. `text/csv`, `application/x-ndjson` and
/// `application/vnd.apache.parquet` bodies are taken too, the media type
/// then naming the encoding (what `curl --data-binary` sends).
#[derive(Debug, ApiRequest)]
pub enum UploadBody {
    /// The file; `format` says whether it is CSV, NDJSON or Parquet.
    #[oai(content_type = "application/octet-stream")]
    File(Binary<poem::Body>),
    /// CSV (see `delimiter`, `header`, `null`).
    #[oai(content_type = "text/csv")]
    Csv(Binary<poem::Body>),
    /// Newline-delimited JSON objects.
    #[oai(content_type = "application/x-ndjson")]
    Ndjson(Binary<poem::Body>),
    /// An Apache Parquet file.
    #[oai(content_type = "application/vnd.apache.parquet")]
    Parquet(Binary<poem::Body>),
}

/// A created dataset.
#[derive(Debug, ApiResponse)]
pub enum CreateDatasetResponse {
    /// Created, with its first part.
    #[oai(status = 201)]
    Created(Json<DatasetCreated>),
}

problems! {
    /// Why an upload failed; nothing was stored.
    UploadError {
        400 => BadRequest: "A parameter is malformed.",
        404 => NotFound: "No such dataset (appending).",
        409 => QuotaExceeded: "Storing the upload would take the tenant past its storage quota.",
        413 => TooLarge: "The body is over the upload limit.",
        415 => UnsupportedMediaType: "The media type is not application/octet-stream (with `format`), text/csv, application/x-ndjson or application/vnd.apache.parquet.",
        422 => Unprocessable: "The body is malformed; `errors` names the line and column.",
    }
}

/// An appended part.
#[derive(Debug, ApiResponse)]
pub enum AppendPartResponse {
    /// Committed: readers see all of its rows from now on.
    #[oai(status = 201)]
    Created(Json<Part>),
}

/// A page of datasets.
#[derive(Debug, ApiResponse)]
pub enum ListDatasetsResponse {
    /// The page.
    #[oai(status = 200)]
    Ok(Json<DatasetPage>),
}

problems! {
    /// Why datasets could not be listed.
    ListDatasetsError {
        400 => BadRequest: "A parameter is malformed or out of range.",
    }
}

/// A dataset.
#[derive(Debug, ApiResponse)]
pub enum GetDatasetResponse {
    /// The dataset and its parts.
    #[oai(status = 200)]
    Ok(Json<DatasetDetail>),
}

/// A deleted dataset.
#[derive(Debug, ApiResponse)]
pub enum DeleteDatasetResponse {
    /// Deleted, with its parts.
    #[oai(status = 204)]
    Deleted,
}

problems! {
    /// Why a dataset could not be read or deleted.
    DatasetError {
        400 => BadRequest: "The id is malformed.",
        404 => NotFound: "No such dataset.",
    }
}

/// Upload options from the query string.
struct UploadQuery {
    delimiter: Option<String>,
    header: bool,
    null: Vec<String>,
    schema: Option<String>,
}

impl DatasetsApi {
    fn options(&self, format: Format, q: UploadQuery) -> Result<IngestOptions, ApiError> {
        let delimiter = match q.delimiter.as_deref() {
            None => b',',
            Some("\\t") | Some("tab") => b'\t',
            Some(d) if d.len() == 1 && d.is_ascii() => d.as_bytes()[0],
            Some(d) => {
                return Err(ApiError::BadRequest(format!(
                    "delimiter {d:?} must be one ASCII character"
                )));
            }
        };
        Ok(IngestOptions {
            format,
            csv: CsvOptions {
                delimiter,
                header: q.header,
                null_values: if q.null.is_empty() {
                    vec![String::new()]
                } else {
                    q.null
                },
            },
            schema: q
                .schema
                .as_deref()
                .map(crunch_store::schema::parse_declared)
                .transpose()?,
            max_bytes: self.state.limits.max_upload_bytes,
            max_line_bytes: self.state.limits.max_line_bytes,
            max_columns: self.state.limits.max_columns,
            ..IngestOptions::new(format)
        })
    }
}

impl DatasetsApi {
    /// An upload's ingest options and body, after checking that the
    /// declared format agrees with the media type.
    fn upload(
        &self,
        body: UploadBody,
        declared: Option<UploadFormat>,
        query: UploadQuery,
    ) -> Result<(IngestOptions, poem::Body), ApiError> {
        let (format, body) = match body {
            UploadBody::File(b) => (declared_format(declared)?, b.0),
            UploadBody::Csv(b) => (Format::Csv, b.0),
            UploadBody::Ndjson(b) => (Format::Ndjson, b.0),
            UploadBody::Parquet(b) => (Format::Parquet, b.0),
        };
        check_format(declared, format)?;
        Ok((self.options(format, query)?, body))
    }
}

/// The store's name for a declared format.
fn store_format(declared: UploadFormat) -> Format {
    match declared {
        UploadFormat::Csv => Format::Csv,
        UploadFormat::Ndjson => Format::Ndjson,
        UploadFormat::Parquet => Format::Parquet,
    }
}

/// The format of an `application/octet-stream` body, which only `format`
/// can tell.
fn declared_format(declared: Option<UploadFormat>) -> Result<Format, ApiError> {
    declared.map(store_format).ok_or_else(|| {
        ApiError::BadRequest(
            "an application/octet-stream upload needs `format` (csv, ndjson or parquet)".to_owned(),
        )
    })
}

fn check_format(declared: Option<UploadFormat>, format: Format) -> Result<(), ApiError> {
    if declared
        .map(store_format)
        .is_none_or(|declared| declared == format)
    {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(
            "the `format` parameter and the body's media type disagree".to_owned(),
        ))
    }
}

#[OpenApi(tag = "ApiTags::Datasets")]
impl DatasetsApi {
    /// Upload a dataset.
    ///
    /// The body is streamed to disk, checked in full, converted to Parquet
    /// and stored; only then does the dataset exist. A malformed row is
    /// answered 422 naming its line and column, and nothing is stored; so
    /// is an upload that would take the tenant past its storage quota
    /// (409). Needs the `write` scope.
    #[oai(path = "/v1/datasets", method = "post", operation_id = "createDataset")]
    #[allow(clippy::too_many_arguments)]
    async fn create_dataset(
        &self,
        auth: Authorized<Write>,
        /// The dataset's name.
        #[oai(validator(min_length = 1, max_length = 200))]
        name: Query<String>,
        /// The body's encoding: required for `application/octet-stream`,
        /// and otherwise, if given, must agree with the media type.
        format: Query<Option<UploadFormat>>,
        /// CSV field delimiter: one ASCII character, or `tab`.
        delimiter: Query<Option<String>>,
        /// Whether the CSV's first line names the columns.
        #[oai(default = "yes")]
        header: Query<bool>,
        /// A string that means null in CSV (repeatable), e.g. `NA`; by
        /// default the empty field. Ignored for NDJSON and Parquet.
        null: Query<Option<Vec<String>>>,
        /// Declared columns, `name:type,…` (types string, int64, float64,
        /// bool, date, timestamp); inferred when absent.
        schema: Query<Option<String>>,
        body: UploadBody,
    ) -> Result<CreateDatasetResponse, UploadError> {
        let (options, body) = self.upload(
            body,
            format.0,
            UploadQuery {
                delimiter: delimiter.0,
                header: header.0,
                null: null.0.unwrap_or_default(),
                schema: schema.0,
            },
        )?;
        let (dataset, part) = self
            .state
            .store
            .create_dataset(
                auth.tenant,
                &name.0,
                &options,
                Box::pin(body.into_bytes_stream()),
            )
            .await
            .map_err(ApiError::from)?;
        Ok(CreateDatasetResponse::Created(Json(DatasetCreated {
            dataset: convert::dataset(&dataset),
            part: convert::part(&part),
        })))
    }

    /// Append a batch of rows as one atomic part: all rows or none.
    ///
    /// Needs the `write` scope.
    #[oai(
        path = "/v1/datasets/:id/parts",
        method = "post",
        operation_id = "appendDatasetPart"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn append_part(
        &self,
        auth: Authorized<Write>,
        /// The dataset's id.
        id: Path<Uuid>,
        /// The body's encoding: required for `application/octet-stream`,
        /// and otherwise, if given, must agree with the media type.
        format: Query<Option<UploadFormat>>,
        /// CSV field delimiter: one ASCII character, or `tab`.
        delimiter: Query<Option<String>>,
        /// Whether the CSV's first line names the columns.
        #[oai(default = "yes")]
        header: Query<bool>,
        /// A string that means null in CSV (repeatable); by default the
        /// empty field. Ignored for NDJSON and Parquet.
        null: Query<Option<Vec<String>>>,
        /// Declared columns, as for upload.
        schema: Query<Option<String>>,
        body: UploadBody,
    ) -> Result<AppendPartResponse, UploadError> {
        let (options, body) = self.upload(
            body,
            format.0,
            UploadQuery {
                delimiter: delimiter.0,
                header: header.0,
                null: null.0.unwrap_or_default(),
                schema: schema.0,
            },
        )?;
        let part = self
            .state
            .store
            .append(
                auth.tenant,
                DatasetId(id.0),
                &options,
                Box::pin(body.into_bytes_stream()),
            )
            .await
            .map_err(ApiError::from)?;
        Ok(AppendPartResponse::Created(Json(convert::part(&part))))
    }

    /// List datasets, newest first.
    ///
    /// Needs the `read` scope.
    #[oai(path = "/v1/datasets", method = "get", operation_id = "listDatasets")]
    async fn list_datasets(
        &self,
        auth: Authorized<Read>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1 to 1000.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "1000"))
        )]
        limit: Query<i64>,
    ) -> Result<ListDatasetsResponse, ListDatasetsError> {
        let before = cursor
            .0
            .as_deref()
            .map(|c| {
                Uuid::parse_str(c).map(DatasetId).map_err(|_| {
                    ApiError::BadRequest(format!("cursor {c:?} is not one this API gave out"))
                })
            })
            .transpose()?;
        let datasets = self
            .state
            .store
            .list(auth.tenant, before, limit.0)
            .await
            .map_err(ApiError::from)?;
        let next_cursor = (datasets.len() as i64 == limit.0)
            .then(|| datasets.last().map(|d| d.id.0.to_string()))
            .flatten();
        Ok(ListDatasetsResponse::Ok(Json(DatasetPage {
            items: datasets.iter().map(convert::dataset).collect(),
            next_cursor,
        })))
    }

    /// Get a dataset: schema, rows, bytes and parts.
    ///
    /// Needs the `read` scope.
    #[oai(path = "/v1/datasets/:id", method = "get", operation_id = "getDataset")]
    async fn get_dataset(
        &self,
        auth: Authorized<Read>,
        /// The dataset's id.
        id: Path<Uuid>,
    ) -> Result<GetDatasetResponse, DatasetError> {
        match self
            .state
            .store
            .get(auth.tenant, DatasetId(id.0))
            .await
            .map_err(ApiError::from)?
        {
            Some((dataset, parts)) => Ok(GetDatasetResponse::Ok(Json(DatasetDetail {
                dataset: convert::dataset(&dataset),
                parts: parts.iter().map(convert::part).collect(),
            }))),
            None => Err(ApiError::NotFound(format!("no dataset {}", id.0)).into()),
        }
    }

    /// Delete a dataset and all its parts.
    ///
    /// Needs the `write` scope.
    #[oai(
        path = "/v1/datasets/:id",
        method = "delete",
        operation_id = "deleteDataset"
    )]
    async fn delete_dataset(
        &self,
        auth: Authorized<Write>,
        /// The dataset's id.
        id: Path<Uuid>,
    ) -> Result<DeleteDatasetResponse, DatasetError> {
        if self
            .state
            .store
            .delete(auth.tenant, DatasetId(id.0))
            .await
            .map_err(ApiError::from)?
        {
            Ok(DeleteDatasetResponse::Deleted)
        } else {
            Err(ApiError::NotFound(format!("no dataset {}", id.0)).into())
        }
    }
}

fn default_limit() -> i64 {
    100
}

fn yes() -> bool {
    true
}
