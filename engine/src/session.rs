//! The per-run DataFusion session: exactly the run's inputs, nothing else.
//!
//! Every run gets a fresh `SessionContext` over a fresh `RuntimeEnv` that
//! shares only the engine's memory pool and spill directory. Its object
//! store registry holds the run's store alone (DataFusion's default local
//! filesystem store is removed), there are no URL tables, no
//! information_schema and no caches shared with other runs, so a query can
//! read its inputs and nothing more. Its `avg` (and `mean`) is
//! [`super::avg::RoundedAvg`], which rounds decimal averages.

use std::{collections::HashSet, sync::Arc};

use datafusion::{
    catalog::TableProvider,
    common::TableReference,
    datasource::{
        empty::EmptyTable,
        file_format::parquet::ParquetFormat,
        listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl},
    },
    execution::{
        FunctionRegistry,
        cache::cache_manager::CacheManagerConfig,
        object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry, ObjectStoreUrl},
        runtime_env::{RuntimeEnv, RuntimeEnvBuilder},
    },
    prelude::{SessionConfig, SessionContext},
};
use futures_util::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt};

use super::{EngineConfig, EngineError, TableInput};

/// Concurrent existence checks of input files.
const HEAD_CONCURRENCY: usize = 16;

/// A session over `inputs`, read from `objects` registered as `url`.
pub(crate) async fn session(
    shared: &RuntimeEnv,
    config: &EngineConfig,
    objects: Arc<dyn ObjectStore>,
    url: &ObjectStoreUrl,
    inputs: &[TableInput],
) -> Result<SessionContext, EngineError> {
    let registry = DefaultObjectStoreRegistry::new();
    // The default registry serves file:// from the local filesystem; a run
    // must see only its own store.
    let _ = registry.deregister_store(ObjectStoreUrl::local_filesystem().as_ref());
    registry.register_store(url.as_ref(), Arc::clone(&objects));
    let runtime = RuntimeEnvBuilder::from_runtime_env(shared)
        .with_cache_manager(CacheManagerConfig::default())
        .with_object_store_registry(Arc::new(registry))
        .build_arc()?;

    let mut session_config = SessionConfig::new()
        .with_target_partitions(config.target_partitions)
        .with_batch_size(config.batch_size)
        .with_information_schema(false);
    let options = session_config.options_mut();
    options.execution.enable_recursive_ctes = true;
    options.execution.collect_statistics = true;
    // Each sort reserves this much up front for merging its spills; the
    // 10 MB default starves a small pool shared by several partitions.
    options.execution.sort_spill_reservation_bytes = (config.memory_limit.unwrap_or(usize::MAX)
        / (4 * config.target_partitions.max(1)))
    .min(options.execution.sort_spill_reservation_bytes);
    options.sql_parser.recursion_limit =
        datafusion::common::config::ConfigNonZeroUsize::try_new(super::sql::RECURSION_LIMIT)?;
    let mut ctx = SessionContext::new_with_config_rt(session_config, runtime);
    // Replaces the built-in under its name and alias, so SQL `avg` and
    // `mean` (also as window functions) resolve to it.
    FunctionRegistry::register_udaf(&mut ctx, super::avg::avg_udaf())?;

    let mut names = HashSet::new();
    for input in inputs {
        if input.name.is_empty() {
            return Err(EngineError::InvalidQuery(
                "an input has an empty table name".into(),
            ));
        }
        if !names.insert(input.name.as_str()) {
            return Err(EngineError::InvalidQuery(format!(
                "two inputs are named {:?}",
                input.name
            )));
        }
        let table = table(&ctx, &objects, url, input).await?;
        ctx.register_table(TableReference::bare(input.name.as_str()), table)?;
    }
    Ok(ctx)
}

/// A table over exactly the input's files.
async fn table(
    ctx: &SessionContext,
    objects: &Arc<dyn ObjectStore>,
    url: &ObjectStoreUrl,
    input: &TableInput,
) -> Result<Arc<dyn TableProvider>, EngineError> {
    if input.files.is_empty() {
        return Ok(Arc::new(EmptyTable::new(Arc::clone(&input.schema))));
    }
    // A listing table whose path does not exist falls back to listing it
    // as a directory, which would quietly read nothing (or something else):
    // make sure every committed file is there first.
    // Owned futures: borrowing ones trip the compiler's Send check for
    // the spawned run (rust-lang/rust#102211).
    futures_util::stream::iter(input.files.clone())
        .map(|file| {
            let objects = Arc::clone(objects);
            async move { objects.head(&file).await }
        })
        .buffer_unordered(HEAD_CONCURRENCY)
        .try_for_each(|_| async { Ok(()) })
        .await?;

    let paths = input
        .files
        .iter()
        .map(|file| ListingTableUrl::parse(format!("{}{}", url.as_str(), file.as_ref())))
        .collect::<Result<Vec<_>, _>>()?;
    let format = ParquetFormat::default().with_options(ctx.state().table_options().parquet.clone());
    let options = ListingOptions::new(Arc::new(format))
        // Committed files are named by the store, not by extension.
        .with_file_extension("");
    let config = ListingTableConfig::new_with_multi_paths(paths)
        .with_listing_options(options)
        .with_schema(Arc::clone(&input.schema));
    Ok(Arc::new(ListingTable::try_new(config)?))
}
