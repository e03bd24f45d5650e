//! A group-by over a generated dataset, in memory and under a memory limit
//! that forces spilling, on the engine the workers run.

use std::{fs::File, sync::Arc, time::Instant};

use crunch_engine::{
    Engine, EngineConfig, RunRequest, TableInput,
    analysis::{Aggregate, AggregateFunction, Analysis},
};
use datafusion::{
    arrow::{
        array::{Float64Array, Int64Array, RecordBatch},
        datatypes::{DataType, Field, Schema},
    },
    execution::object_store::ObjectStoreUrl,
    parquet::arrow::ArrowWriter,
};
use object_store::{local::LocalFileSystem, path::Path};

/// One run's figures.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// The memory pool, bytes.
    pub memory_limit: usize,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Result rows (groups).
    pub groups: u64,
    /// Bytes spilled to disk.
    pub spilled_bytes: u64,
    /// Spill files written.
    pub spill_files: u64,
}

/// Writes `rows` rows (`key` with `keys` distinct values, `value`) as
/// Parquet files of 1M rows each under `dir`.
fn generate(
    dir: &std::path::Path,
    rows: usize,
    keys: usize,
) -> anyhow::Result<(Arc<Schema>, Vec<Path>)> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Int64, true),
        Field::new("value", DataType::Float64, true),
    ]));
    let chunk = 1_000_000;
    let mut files = Vec::new();
    let mut start = 0;
    while start < rows {
        let end = (start + chunk).min(rows);
        let name = format!("part-{}.parquet", files.len());
        let mut writer =
            ArrowWriter::try_new(File::create(dir.join(&name))?, schema.clone(), None)?;
        let mut at = start;
        while at < end {
            let to = (at + 65_536).min(end);
            // A multiplicative hash spreads keys so that groups are not sorted.
            let keys_col: Vec<i64> = (at..to)
                .map(|i| ((i as u64 * 2_654_435_761) % keys as u64) as i64)
                .collect();
            let values: Vec<f64> = (at..to).map(|i| (i % 1000) as f64 / 10.0).collect();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(keys_col)),
                    Arc::new(Float64Array::from(values)),
                ],
            )?;
            writer.write(&batch)?;
            at = to;
        }
        writer.close()?;
        files.push(Path::from(name));
        start = end;
    }
    Ok((schema, files))
}

/// Generates the data once, then runs the group-by with each memory limit.
pub async fn measure(rows: usize, keys: usize, limits: &[usize]) -> anyhow::Result<Vec<Run>> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    eprintln!("generating {rows} rows with {keys} keys");
    let (schema, files) = generate(&data, rows, keys)?;
    let objects = Arc::new(LocalFileSystem::new_with_prefix(&data)?);
    let mut runs = Vec::new();
    for (i, limit) in limits.iter().enumerate() {
        let engine = Engine::new(EngineConfig {
            memory_limit: Some(*limit),
            spill_dir: Some(dir.path().join("spill")),
            ..EngineConfig::default()
        })?;
        let request = RunRequest {
            objects: objects.clone(),
            object_store_url: ObjectStoreUrl::parse("crunch://bench")?,
            inputs: vec![TableInput {
                name: "t".into(),
                schema: schema.clone(),
                files: files.clone(),
            }],
            analysis: Analysis::GroupBy {
                table: "t".into(),
                keys: vec!["key".into()],
                aggregates: vec![
                    Aggregate {
                        function: AggregateFunction::Count,
                        column: None,
                        alias: Some("n".into()),
                    },
                    Aggregate {
                        function: AggregateFunction::Mean,
                        column: Some("value".into()),
                        alias: Some("mean".into()),
                    },
                    Aggregate {
                        function: AggregateFunction::Sum,
                        column: Some("value".into()),
                        alias: Some("total".into()),
                    },
                ],
                filters: Vec::new(),
                min_group_size: None,
            },
            output: Path::from(format!("out-{i}.parquet")),
        };
        eprintln!("group-by with a {} MiB pool", limit >> 20);
        let started = Instant::now();
        let summary = engine
            .run(request, |_, _| {}, std::future::pending())
            .await?;
        let seconds = started.elapsed().as_secs_f64();
        let spills = engine.spill_totals();
        anyhow::ensure!(
            summary.rows == keys as u64,
            "expected {keys} groups, got {}",
            summary.rows
        );
        runs.push(Run {
            memory_limit: *limit,
            seconds,
            groups: summary.rows,
            spilled_bytes: spills.bytes,
            spill_files: spills.files,
        });
    }
    Ok(runs)
}

/// The results block for docs/benchmarks.md.
pub fn markdown(rows: usize, keys: usize, runs: &[Run]) -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mut out = format!(
        "Run: `cargo run --release -p crunch-bench -- analysis --rows {rows} --keys {keys}` on {cores} cores: \
         group-by `key` computing count, mean and sum of `value` over {rows} generated rows (10 Parquet files of 1M rows) into {keys} groups.\n\n"
    );
    out.push_str("| memory pool | wall time s | rows/s | groups | spilled | spill files |\n|---:|---:|---:|---:|---:|---:|\n");
    for r in runs {
        out.push_str(&format!(
            "| {} MiB | {:.2} | {:.0} | {} | {:.1} MiB | {} |\n",
            r.memory_limit >> 20,
            r.seconds,
            rows as f64 / r.seconds,
            r.groups,
            r.spilled_bytes as f64 / (1 << 20) as f64,
            r.spill_files
        ));
    }
    out
}
