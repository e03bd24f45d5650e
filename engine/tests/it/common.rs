//! Shared test setup: Parquet inputs in a temporary directory served by a
//! local object store, an engine, and readers for results.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::{fs::File, sync::Arc};

use crunch_engine::{
    Engine, EngineConfig, EngineError, RunRequest, TableInput,
    analysis::{Analysis, ResultSummary},
};
use datafusion::{
    arrow::{
        array::{Array, ArrayRef, AsArray, RecordBatch},
        compute::{cast, concat_batches},
        datatypes::{DataType, Float64Type, Int64Type},
    },
    execution::object_store::ObjectStoreUrl,
    parquet::arrow::{ArrowWriter, arrow_reader::ParquetRecordBatchReaderBuilder},
};
use object_store::{ObjectStore, local::LocalFileSystem, path::Path};

/// A directory of inputs and results behind a local object store.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub objects: Arc<dyn ObjectStore>,
    pub engine: Engine,
    pub inputs: Vec<TableInput>,
}

impl Fixture {
    /// An empty fixture with a small engine.
    pub fn new() -> Self {
        Self::with_config(EngineConfig {
            memory_limit: Some(256 << 20),
            threads: 2,
            target_partitions: 2,
            ..EngineConfig::default()
        })
    }

    /// An empty fixture with an engine built from `config` (spills go to
    /// the fixture's directory unless `config` says otherwise).
    pub fn with_config(mut config: EngineConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        if config.spill_dir.is_none() {
            config.spill_dir = Some(dir.path().join("spill"));
        }
        let objects: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path().join("data")).unwrap());
        Fixture {
            dir,
            objects,
            engine: Engine::new(config).unwrap(),
            inputs: Vec::new(),
        }
    }

    /// Adds a table `name` made of one Parquet file per batch.
    pub fn table(&mut self, name: &str, batches: &[RecordBatch]) -> &mut Self {
        let schema = batches[0].schema();
        let files = batches
            .iter()
            .enumerate()
            .map(|(i, batch)| self.write_file(&format!("datasets/{name}/part-{i}.parquet"), batch))
            .collect();
        self.inputs.push(TableInput {
            name: name.to_owned(),
            schema,
            files,
        });
        self
    }

    /// Writes `batch` as a Parquet file at `path` in the store.
    pub fn write_file(&self, path: &str, batch: &RecordBatch) -> Path {
        let local = self.dir.path().join("data").join(path);
        std::fs::create_dir_all(local.parent().unwrap()).unwrap();
        let mut writer =
            ArrowWriter::try_new(File::create(&local).unwrap(), batch.schema(), None).unwrap();
        writer.write(batch).unwrap();
        writer.close().unwrap();
        Path::from(path)
    }

    /// A request for `analysis` over the fixture's tables.
    pub fn request(&self, analysis: Analysis) -> RunRequest {
        RunRequest {
            objects: Arc::clone(&self.objects),
            object_store_url: ObjectStoreUrl::parse("crunch://test").unwrap(),
            inputs: self.inputs.clone(),
            analysis,
            output: Path::from(format!("results/{}.parquet", uuid::Uuid::now_v7())),
        }
    }

    /// Runs `analysis` and reads its result back.
    pub async fn run(
        &self,
        analysis: Analysis,
    ) -> Result<(ResultSummary, RecordBatch), EngineError> {
        let request = self.request(analysis);
        let summary = self
            .engine
            .run(request, |_, _| {}, std::future::pending())
            .await?;
        let batch = self.read(&summary.path);
        assert_eq!(batch.num_rows() as u64, summary.rows);
        Ok((summary, batch))
    }

    /// Runs `analysis`, which must succeed.
    pub async fn ok(&self, analysis: Analysis) -> RecordBatch {
        match self.run(analysis).await {
            Ok((_, batch)) => batch,
            Err(error) => panic!("the analysis failed: {error:?}"),
        }
    }

    /// Runs `analysis`, which must fail.
    pub async fn err(&self, analysis: Analysis) -> EngineError {
        match self.run(analysis).await {
            Ok((_, batch)) => panic!("the analysis succeeded with {batch:?}"),
            Err(error) => error,
        }
    }

    /// Reads the Parquet file at `path` in the store as one batch.
    pub fn read(&self, path: &str) -> RecordBatch {
        let file = File::open(self.dir.path().join("data").join(path)).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        let schema = batches.first().map(|b| b.schema()).unwrap_or_else(|| {
            let file = File::open(self.dir.path().join("data").join(path)).unwrap();
            ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .schema()
                .clone()
        });
        concat_batches(&schema, &batches).unwrap()
    }

    /// Whether a file exists at `path` in the store.
    pub fn exists(&self, path: &str) -> bool {
        self.dir.path().join("data").join(path).exists()
    }
}

/// A SQL analysis.
pub fn sql(query: &str) -> Analysis {
    Analysis::Sql {
        query: query.to_owned(),
    }
}

/// A batch from named columns.
pub fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

fn column(batch: &RecordBatch, name: &str, to: &DataType) -> ArrayRef {
    let array = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", batch.schema()));
    cast(array, to).unwrap()
}

/// Column `name` as floats.
pub fn f64s(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    column(batch, name, &DataType::Float64)
        .as_primitive::<Float64Type>()
        .iter()
        .collect()
}

/// Column `name` as integers.
pub fn i64s(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    column(batch, name, &DataType::Int64)
        .as_primitive::<Int64Type>()
        .iter()
        .collect()
}

/// Column `name` as text.
pub fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let array = column(batch, name, &DataType::Utf8);
    let array = array.as_string::<i32>();
    (0..array.len())
        .map(|i| (!array.is_null(i)).then(|| array.value(i).to_owned()))
        .collect()
}

/// Asserts two floats agree to 1e-9.
pub fn close(actual: Option<f64>, expected: f64) {
    let actual = actual.expect("a value, not null");
    assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
}
