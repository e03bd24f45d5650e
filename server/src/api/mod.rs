//! The OpenAPI operations, grouped by resource.

pub mod convert;
mod datasets;
mod jobs;
mod keys;
pub mod model;
mod ops;
// ParquetObjectReader is deprecated upstream in favour of hand-written
// AsyncFileReader implementations; it still does exactly what serving a
// result needs (ranged reads of one object).
#[allow(deprecated)]
pub(crate) mod results;

use poem_openapi::{OpenApiService, Tags};

use crate::state::AppState;

/// Groups of operations in the spec.
#[derive(Tags)]
pub enum ApiTags {
    /// Upload and manage datasets.
    Datasets,
    /// Run analyses and fetch their results.
    Jobs,
    /// Manage the tenant's API keys.
    Keys,
    /// Queue statistics and health.
    Operations,
}

/// Every operation of the API.
pub type Api = (
    datasets::DatasetsApi,
    jobs::JobsApi,
    keys::KeysApi,
    ops::OpsApi,
);

/// The API as an OpenAPI service.
pub fn service(state: AppState) -> OpenApiService<Api, ()> {
    OpenApiService::new(
        (
            datasets::DatasetsApi {
                state: state.clone(),
            },
            jobs::JobsApi {
                state: state.clone(),
            },
            keys::KeysApi {
                state: state.clone(),
            },
            ops::OpsApi { state },
        ),
        "crunch",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Upload datasets, run analyses on them as jobs, and fetch the results. \
         Every /v1 operation needs an API key (`Authorization: Bearer crk_…`) of the tenant \
         whose data it reads or changes, with the scope the operation names; another \
         tenant's resources answer 404, like ones that do not exist. \
         Errors are RFC 9457 problem details.",
    )
}
