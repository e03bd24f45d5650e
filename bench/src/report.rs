//! Running every measurement and writing the results as markdown.

use std::path::Path;

use anyhow::Context;

use crate::{
    Settings, apalis_pg,
    apalis_pg::Mode,
    crunch::{self, Enqueue},
    floor, pgmq,
    setup::Setup,
};

/// The fairness case of issue 11: one tenant's backlog, another's burst
/// behind it, and few slots.
const FAIR_BACKLOG: usize = 1000;
/// Jobs the second tenant submits.
const FAIR_BURST: usize = 10;
/// Worker slots in the fairness case.
const FAIR_SLOTS: usize = 4;

/// One workload's figures for every system.
#[derive(Debug, Clone, Copy)]
pub struct Row<T> {
    /// crunch through its apalis backend, default settings.
    pub crunch: T,
    /// crunch's statements issued raw.
    pub floor: T,
    /// apalis-postgres, batch_size(10) + pubsub.
    pub apalis_fast: T,
    /// apalis-postgres, batch_size(1) + pubsub.
    pub apalis_safe: T,
}

/// p50 and p99 of a latency sample, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Latency {
    /// Quantiles of a sorted sample of nanoseconds.
    pub fn of(sorted_ns: &[u64]) -> Latency {
        let at = |q: f64| {
            if sorted_ns.is_empty() {
                return f64::NAN;
            }
            let i = ((sorted_ns.len() as f64 - 1.0) * q).round() as usize;
            sorted_ns[i] as f64 / 1e6
        };
        Latency {
            p50: at(0.50),
            p99: at(0.99),
        }
    }
}

/// Every figure of one run.
pub struct Results {
    throughput: Row<f64>,
    enqueue: Row<f64>,
    pickup: Row<Latency>,
    /// crunch's no-op throughput with the jobs spread over many tenants.
    throughput_tenants: f64,
    /// apalis-postgres fast, as separate workers of one slot each.
    apalis_fast_workers: f64,
    /// crunch's ids-only batch enqueue.
    enqueue_ids: f64,
    /// PGMQ's `send_batch`, when its script was given.
    pgmq_enqueue: Option<f64>,
    /// The fairness case: job lengths until the second tenant starts.
    fairness: f64,
}

impl Results {
    /// Measures everything, each system on a fresh database.
    pub async fn measure(setup: &Setup, s: &Settings) -> anyhow::Result<Results> {
        eprintln!(
            "no-op throughput: {} jobs at concurrency {}",
            s.jobs, s.concurrency
        );
        let throughput = Row {
            crunch: crunch::throughput(setup.crunch_db().await?, s, 1)
                .await
                .context("crunch throughput")?,
            floor: floor::throughput(setup.crunch_db().await?, s)
                .await
                .context("floor throughput")?,
            apalis_fast: apalis_pg::throughput(setup.apalis_db().await?, Mode::Fast, s)
                .await
                .context("apalis fast throughput")?,
            apalis_safe: apalis_pg::throughput(setup.apalis_db().await?, Mode::Safe, s)
                .await
                .context("apalis safe throughput")?,
        };
        let throughput_tenants = crunch::throughput(setup.crunch_db().await?, s, s.tenants)
            .await
            .context("crunch throughput over many tenants")?;
        let apalis_fast_workers =
            apalis_pg::throughput_workers(setup.apalis_db().await?, Mode::Fast, s, s.concurrency)
                .await
                .context("apalis fast throughput, separate workers")?;
        if s.throughput_only {
            eprintln!(
                "{throughput:?} {} tenants: {throughput_tenants:.0}, apalis fast as {} workers: {apalis_fast_workers:.0}",
                s.tenants, s.concurrency
            );
            std::process::exit(0);
        }
        eprintln!(
            "batch enqueue: {} jobs in batches of {}",
            s.enqueue_jobs, s.batch
        );
        let apalis_enqueue = apalis_pg::enqueue_rate(setup.apalis_db().await?, s).await?;
        let enqueue_ids = crunch::enqueue_rate(setup.crunch_db().await?, s, Enqueue::Ids).await?;
        let pgmq_enqueue = match &s.pgmq_sql {
            Some(script) => Some(
                pgmq::enqueue_rate(setup.empty_db("pgmq").await?, s, script)
                    .await
                    .context("pgmq send_batch")?,
            ),
            None => None,
        };
        let enqueue = Row {
            crunch: crunch::enqueue_rate(setup.crunch_db().await?, s, Enqueue::Rows).await?,
            floor: floor::enqueue_rate(setup.crunch_db().await?, s).await?,
            // Batch size does not change how apalis-postgres inserts.
            apalis_fast: apalis_enqueue,
            apalis_safe: apalis_enqueue,
        };
        eprintln!("pickup latency: {} jobs/s for {} s", s.rate, s.seconds);
        let pickup = Row {
            crunch: Latency::of(&crunch::pickup(setup.crunch_db().await?, s).await?),
            floor: Latency::of(&floor::pickup(setup.crunch_db().await?, s).await?),
            apalis_fast: Latency::of(
                &apalis_pg::pickup(setup.apalis_db().await?, Mode::Fast, s).await?,
            ),
            apalis_safe: Latency::of(
                &apalis_pg::pickup(setup.apalis_db().await?, Mode::Safe, s).await?,
            ),
        };
        eprintln!(
            "fairness: {} queued jobs of one tenant, {} of another, {} slots, {} ms jobs",
            FAIR_BACKLOG, FAIR_BURST, FAIR_SLOTS, s.fair_job_ms
        );
        let fairness = crunch::fairness(
            setup.crunch_db().await?,
            FAIR_BACKLOG,
            FAIR_BURST,
            FAIR_SLOTS,
            std::time::Duration::from_millis(s.fair_job_ms),
        )
        .await
        .context("fairness")?;
        Ok(Results {
            throughput,
            enqueue,
            pickup,
            throughput_tenants,
            apalis_fast_workers,
            enqueue_ids,
            pgmq_enqueue,
            fairness,
        })
    }

    /// The results block for docs/benchmarks.md.
    pub fn markdown(&self, s: &Settings, setup: &Setup) -> String {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        let t = &self.throughput;
        let e = &self.enqueue;
        let p = &self.pickup;
        let mut out = String::new();
        out.push_str(&format!(
            "Run: `cargo run --release -p crunch-bench -- queue --jobs {} --concurrency {} --enqueue-jobs {} --batch {} --rate {} --seconds {}` \
             on {cores} cores, PostgreSQL {} (private cluster, fsync and synchronous_commit on).\n\n",
            s.jobs, s.concurrency, s.enqueue_jobs, s.batch, s.rate, s.seconds, setup.version
        ));
        out.push_str(&format!(
            "Fair-share options: `--tenants {} --fair-job-ms {}`. Every crunch claim is a fair-share claim.\n\n",
            s.tenants, s.fair_job_ms
        ));
        out.push_str("| workload | crunch | floor (raw SQL) | apalis-postgres batch 10 + pubsub | apalis-postgres batch 1 + pubsub | crunch / floor | crunch / apalis fast | crunch / apalis safe |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        out.push_str(&format!(
            "| no-op jobs/s ({} jobs, {} at once) | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} |\n",
            s.jobs, s.concurrency, t.crunch, t.floor, t.apalis_fast, t.apalis_safe,
            t.crunch / t.floor, t.crunch / t.apalis_fast, t.crunch / t.apalis_safe
        ));
        out.push_str(&format!(
            "| batch enqueue jobs/s ({} per statement) | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} |\n",
            s.batch, e.crunch, e.floor, e.apalis_fast, e.apalis_safe,
            e.crunch / e.floor, e.crunch / e.apalis_fast, e.crunch / e.apalis_safe
        ));
        for (name, values) in [
            (
                "p50",
                [
                    p.crunch.p50,
                    p.floor.p50,
                    p.apalis_fast.p50,
                    p.apalis_safe.p50,
                ],
            ),
            (
                "p99",
                [
                    p.crunch.p99,
                    p.floor.p99,
                    p.apalis_fast.p99,
                    p.apalis_safe.p99,
                ],
            ),
        ] {
            let [crunch, floor, fast, safe] = values;
            out.push_str(&format!(
                "| pickup {name} ms at {} jobs/s | {crunch:.2} | {floor:.2} | {fast:.2} | {safe:.2} | {:.2} | {:.2} | {:.2} |\n",
                s.rate,
                crunch / floor,
                crunch / fast,
                crunch / safe
            ));
        }
        out.push_str("\n| fair share and scale-out | figure | against | ratio |\n");
        out.push_str("|---|---:|---|---:|\n");
        out.push_str(&format!(
            "| no-op jobs/s, 1 tenant | {:.0} | itself | 1.00 |\n",
            t.crunch
        ));
        out.push_str(&format!(
            "| no-op jobs/s, jobs dealt round {} tenants | {:.0} | crunch, 1 tenant | {:.2} |\n",
            s.tenants,
            self.throughput_tenants,
            self.throughput_tenants / t.crunch
        ));
        out.push_str(&format!(
            "| apalis-postgres batch 10 + pubsub, {} separate workers of 1 slot, no-op jobs/s | {:.0} | crunch, 1 tenant (crunch / apalis) | {:.2} |\n",
            s.concurrency,
            self.apalis_fast_workers,
            t.crunch / self.apalis_fast_workers
        ));
        let apalis_best = t.apalis_fast.max(self.apalis_fast_workers);
        out.push_str(&format!(
            "| crunch, {} tenants, against apalis-postgres' fastest configuration | {:.0} | {:.0} | {:.2} |\n",
            s.tenants,
            self.throughput_tenants,
            apalis_best,
            self.throughput_tenants / apalis_best
        ));
        out.push_str(&format!(
            "| batch enqueue jobs/s, ids only (`enqueue_batch_ids`, {} per statement) | {:.0} | floor (raw SQL) | {:.2} |\n",
            s.batch,
            self.enqueue_ids,
            self.enqueue_ids / e.floor
        ));
        if let Some(pgmq) = self.pgmq_enqueue {
            out.push_str(&format!(
                "| batch enqueue jobs/s, PGMQ `send_batch` (SQL-only install, {} per call) | {:.0} | crunch ids only (crunch / PGMQ) | {:.2} |\n",
                s.batch,
                pgmq,
                self.enqueue_ids / pgmq
            ));
        }
        out.push_str(&format!(
            "| fairness: tenant B's first job starts after (in job lengths; {FAIR_BACKLOG} of A's queued, {FAIR_BURST} of B's, {FAIR_SLOTS} slots, B submits mid-job) | {:.2} | A's backlog first (FIFO) | {:.0} |\n",
            self.fairness,
            FAIR_BACKLOG as f64 / FAIR_SLOTS as f64
        ));
        out
    }
}

/// Replaces the block between `<!-- bench:NAME:start -->` and
/// `<!-- bench:NAME:end -->` in `path` (appending it if absent), leaving
/// the hand-written analysis around it alone.
pub fn write_block(path: &Path, name: &str, block: &str) -> anyhow::Result<()> {
    let start = format!("<!-- bench:{name}:start -->");
    let end = format!("<!-- bench:{name}:end -->");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let fresh = format!("{start}\n{block}{end}");
    let updated = match (text.find(&start), text.find(&end)) {
        (Some(a), Some(b)) if b > a => format!("{}{}{}", &text[..a], fresh, &text[b + end.len()..]),
        _ => format!("{text}\n{fresh}\n"),
    };
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
