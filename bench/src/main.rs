//! Benchmarks of the crunch queue, each beside a floor (the same SQL issued
//! raw, without the queue's machinery) and apalis-postgres 1.0 in its
//! fastest setting and in the one that is safe for long jobs, all in one
//! run against one private PostgreSQL cluster.
//!
//! ```text
//! cargo run --release -p crunch-bench -- queue [--jobs 20000] [--concurrency 16]
//!     [--enqueue-jobs 100000] [--batch 1000] [--rate 50] [--seconds 10]
//!     [--tenants 100] [--fair-job-ms 200] [--pgmq-sql pgmq.sql]
//!     [--write docs/benchmarks.md]
//! ```

mod analysis;
mod apalis_pg;
mod api;
mod crunch;
mod floor;
mod pgmq;
mod report;
mod scaling;
mod setup;

use std::{
    path::PathBuf,
    sync::OnceLock,
    time::{Duration, Instant},
};

use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};

/// The job every benchmark runs: it does nothing but say when it was sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchJob {
    /// Nanoseconds after [`epoch`] when the job was enqueued.
    pub sent_ns: u64,
}

impl crunch_queue::JobKind for BenchJob {
    const KIND: &'static str = "bench";
    type Payload = BenchJob;
}

/// The instant all latencies are measured from.
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since [`epoch`].
pub fn now_ns() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// What the queue benchmark measures, from the command line.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Jobs in the no-op burn-down
    #[arg(long, value_name = "N", default_value = "20000")]
    pub jobs: usize,
    /// Jobs run at once by each system's worker
    #[arg(long, value_name = "N", default_value = "16")]
    pub concurrency: usize,
    /// Jobs in the batch-enqueue measurement
    #[arg(long, value_name = "N", default_value = "100000")]
    pub enqueue_jobs: usize,
    /// Jobs per enqueue statement
    #[arg(long, value_name = "N", default_value = "1000")]
    pub batch: usize,
    /// Jobs per second in the pickup-latency measurement
    #[arg(long, value_name = "N", default_value = "50")]
    pub rate: u32,
    /// Length of the pickup-latency measurement, in seconds
    #[arg(long, value_name = "N", default_value = "10")]
    pub seconds: u32,
    /// Where to write the results block, if anywhere
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Tenants the jobs are dealt round in the many-tenant throughput line
    #[arg(long, value_name = "N", default_value = "100")]
    pub tenants: usize,
    /// Length of a job in the fairness case, in milliseconds
    #[arg(long, value_name = "MS", default_value = "200")]
    pub fair_job_ms: u64,
    /// PGMQ's SQL-only install script (`pgmq.sql`), to measure its
    /// `send_batch` beside crunch's batch enqueue; docs/benchmarks.md says
    /// where to get it. Without it the PGMQ line is left out.
    #[arg(long, value_name = "FILE", env = "CRUNCH_BENCH_PGMQ_SQL")]
    pub pgmq_sql: Option<PathBuf>,
    /// Run only the no-op throughput measurement (for profiling)
    #[arg(long)]
    pub throughput_only: bool,
}

impl Settings {
    /// The gap between two enqueues in the latency measurement.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(1) / self.rate.max(1)
    }

    /// Jobs sent in the latency measurement.
    pub fn latency_jobs(&self) -> usize {
        (self.rate * self.seconds) as usize
    }
}

/// Benchmarks of crunch; each prints a results block and, with --write,
/// puts it in its place in a Markdown file.
#[derive(Debug, Parser)]
#[command(name = "crunch-bench")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
enum Bench {
    /// The queue beside its floor and apalis-postgres: no-op throughput,
    /// batch enqueue rate and pickup latency
    Queue(Settings),
    /// API latency under open-loop load on loopback
    Api {
        /// GET /v1/jobs/{id} requests per second
        #[arg(long, value_name = "N", default_value = "1000")]
        get_rate: u32,
        /// POST /v1/jobs requests per second
        #[arg(long, value_name = "N", default_value = "200")]
        submit_rate: u32,
        /// Length of each phase, in seconds
        #[arg(long, value_name = "N", default_value = "10")]
        seconds: u32,
        /// Where to write the results block, if anywhere
        #[arg(long, value_name = "FILE")]
        write: Option<PathBuf>,
    },
    /// A group-by over generated rows, in memory and under a memory pool
    /// small enough to make it spill
    Analysis {
        /// Rows generated
        #[arg(long, value_name = "N", default_value = "10000000")]
        rows: usize,
        /// Distinct group keys
        #[arg(long, value_name = "N", default_value = "1000000")]
        keys: usize,
        /// The small memory pool, in MiB
        #[arg(long, value_name = "N", default_value = "64")]
        limit_mib: usize,
        /// Where to write the results block, if anywhere
        #[arg(long, value_name = "FILE")]
        write: Option<PathBuf>,
    },
    /// The worker-scaling policy simulated (deterministic)
    Scaling {
        /// Where to write the results block, if anywhere
        #[arg(long, value_name = "FILE")]
        write: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    epoch();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Bench::Queue(settings) => runtime.block_on(async move {
            let setup = setup::Setup::start().await?;
            let results = report::Results::measure(&setup, &settings).await?;
            let block = results.markdown(&settings, &setup);
            publish(&block, "queue", settings.write.as_deref())
        }),
        Bench::Api {
            get_rate,
            submit_rate,
            seconds,
            write,
        } => runtime.block_on(async move {
            let setup = setup::Setup::start().await?;
            let results = api::measure(&setup, get_rate, submit_rate, seconds).await?;
            let block = results.markdown(get_rate, submit_rate, seconds, &setup);
            publish(&block, "api", write.as_deref())
        }),
        Bench::Analysis {
            rows,
            keys,
            limit_mib,
            write,
        } => runtime.block_on(async move {
            let runs = analysis::measure(rows, keys, &[8 << 30, limit_mib << 20]).await?;
            let block = analysis::markdown(rows, keys, &runs);
            publish(&block, "analysis", write.as_deref())
        }),
        Bench::Scaling { write } => publish(&scaling::markdown(), "scaling", write.as_deref()),
    }
}

/// Prints a results block and, if asked, writes it into its place in a file.
fn publish(block: &str, name: &str, write: Option<&std::path::Path>) -> anyhow::Result<()> {
    println!("{block}");
    if let Some(path) = write {
        report::write_block(path, name, block)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
