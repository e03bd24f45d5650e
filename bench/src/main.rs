//! Benchmarks of the crunch queue, each beside a floor (the same SQL issued
//! raw, without the queue's machinery) and apalis-postgres 1.0 in its
//! fastest setting and in the one that is safe for long jobs, all in one
//! run against one private PostgreSQL cluster.
//!
//! ```text
//! cargo run --release -p crunch-bench -- queue [--jobs 20000] [--concurrency 16]
//!     [--enqueue-jobs 100000] [--batch 1000] [--rate 50] [--seconds 10]
//!     [--write docs/benchmarks.md]
//! ```

mod analysis;
mod apalis_pg;
mod api;
mod crunch;
mod floor;
mod report;
mod scaling;
mod setup;

use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
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

/// What to measure, from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Jobs in the no-op burn-down.
    pub jobs: usize,
    /// Jobs run at once by each system's worker.
    pub concurrency: usize,
    /// Jobs in the batch-enqueue measurement.
    pub enqueue_jobs: usize,
    /// Jobs per enqueue statement.
    pub batch: usize,
    /// Jobs per second in the pickup-latency measurement.
    pub rate: u32,
    /// Length of the pickup-latency measurement.
    pub seconds: u32,
    /// Where to write the results block, if anywhere.
    pub write: Option<std::path::PathBuf>,
    /// Run only the no-op throughput measurement (for profiling).
    pub throughput_only: bool,
}

impl Settings {
    fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Settings> {
        let mut s = Settings {
            jobs: 20_000,
            concurrency: 16,
            enqueue_jobs: 100_000,
            batch: 1_000,
            rate: 50,
            seconds: 10,
            write: None,
            throughput_only: false,
        };
        while let Some(flag) = args.next() {
            if flag == "--throughput-only" {
                s.throughput_only = true;
                continue;
            }
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--jobs" => s.jobs = value.parse()?,
                "--concurrency" => s.concurrency = value.parse()?,
                "--enqueue-jobs" => s.enqueue_jobs = value.parse()?,
                "--batch" => s.batch = value.parse()?,
                "--rate" => s.rate = value.parse()?,
                "--seconds" => s.seconds = value.parse()?,
                "--write" => s.write = Some(value.into()),
                other => bail!("unknown flag {other}"),
            }
        }
        Ok(s)
    }

    /// The gap between two enqueues in the latency measurement.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(1) / self.rate.max(1)
    }

    /// Jobs sent in the latency measurement.
    pub fn latency_jobs(&self) -> usize {
        (self.rate * self.seconds) as usize
    }
}

/// Flags of the `api` and `analysis` commands: `--name value` pairs.
fn flags(
    args: impl Iterator<Item = String>,
) -> anyhow::Result<std::collections::HashMap<String, String>> {
    let mut out = std::collections::HashMap::new();
    let mut args = args;
    while let Some(flag) = args.next() {
        let name = flag
            .strip_prefix("--")
            .with_context(|| format!("{flag} is not a flag"))?;
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}

fn flag<T: std::str::FromStr>(
    flags: &std::collections::HashMap<String, String>,
    name: &str,
    default: T,
) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match flags.get(name) {
        Some(v) => v.parse().map_err(|e| anyhow::anyhow!("--{name}: {e}")),
        None => Ok(default),
    }
}

const USAGE: &str = "usage:
  crunch-bench queue [--jobs N] [--concurrency N] [--enqueue-jobs N] [--batch N] [--rate N] [--seconds N] [--write FILE]
  crunch-bench api [--get-rate N] [--submit-rate N] [--seconds N] [--write FILE]
  crunch-bench analysis [--rows N] [--keys N] [--limit-mib N] [--write FILE]
  crunch-bench scaling [--write FILE]";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    epoch();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match command.as_str() {
        "queue" => {
            let settings = Settings::parse(args)?;
            runtime.block_on(async move {
                let setup = setup::Setup::start().await?;
                let results = report::Results::measure(&setup, &settings).await?;
                let block = results.markdown(&settings, &setup);
                publish(&block, "queue", settings.write.as_deref())
            })
        }
        "api" => {
            let flags = flags(args)?;
            let get_rate = flag(&flags, "get-rate", 1000u32)?;
            let submit_rate = flag(&flags, "submit-rate", 200u32)?;
            let seconds = flag(&flags, "seconds", 10u32)?;
            let write = flags.get("write").map(std::path::PathBuf::from);
            runtime.block_on(async move {
                let setup = setup::Setup::start().await?;
                let results = api::measure(&setup, get_rate, submit_rate, seconds).await?;
                let block = results.markdown(get_rate, submit_rate, seconds, &setup);
                publish(&block, "api", write.as_deref())
            })
        }
        "analysis" => {
            let flags = flags(args)?;
            let rows = flag(&flags, "rows", 10_000_000usize)?;
            let keys = flag(&flags, "keys", 1_000_000usize)?;
            let limit_mib = flag(&flags, "limit-mib", 64usize)?;
            let write = flags.get("write").map(std::path::PathBuf::from);
            runtime.block_on(async move {
                let runs = analysis::measure(rows, keys, &[8 << 30, limit_mib << 20]).await?;
                let block = analysis::markdown(rows, keys, &runs);
                publish(&block, "analysis", write.as_deref())
            })
        }
        "scaling" => {
            let flags = flags(args)?;
            let write = flags.get("write").map(std::path::PathBuf::from);
            publish(&scaling::markdown(), "scaling", write.as_deref())
        }
        _ => bail!("{USAGE}"),
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
