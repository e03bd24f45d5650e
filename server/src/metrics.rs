//! Prometheus metrics: HTTP latency measured in process, queue numbers read
//! from the database at scrape time (so every replica reports the same
//! queue, and restarts lose nothing). The numbers are the whole fleet's:
//! no metric is labelled with a tenant, a key or a dataset, so the
//! endpoint shows no tenant's data ([`crate::metrics_app`] serves it).

use std::{
    fmt::Write,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use crunch_queue::{QueueStats, RunTimes};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

use crate::{problem::ApiError, state::AppState};

/// How far back the run-time quantiles look.
const RUN_TIME_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

/// The exposition text now: the fleet's queue numbers and this process's
/// counters.
pub async fn scrape(state: &AppState) -> Result<String, ApiError> {
    let stats = state.queue.stats(None).await?;
    let run_times = state.queue.recent_run_times(RUN_TIME_WINDOW).await?;
    Ok(state.metrics.render(&stats, &run_times))
}

/// Upper bounds of the HTTP latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The server's own counters.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Per status class (1xx..5xx): request count.
    requests: [AtomicU64; 5],
    /// Cumulative latency histogram counts, one per bucket plus +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    /// Sum of latencies, microseconds.
    sum_micros: AtomicU64,
}

impl Metrics {
    fn observe(&self, status: u16, seconds: f64) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.inner.requests[class].fetch_add(1, Ordering::Relaxed);
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.inner.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.inner.buckets[BUCKETS.len()].fetch_add(1, Ordering::Relaxed);
        self.inner
            .sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, stats: &QueueStats, run_times: &RunTimes) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP crunch_jobs Jobs by state.\n# TYPE crunch_jobs gauge"
        );
        for (state, n) in [
            ("queued", stats.queued_ready),
            ("waiting", stats.queued_waiting),
            ("running", stats.running),
            ("succeeded", stats.succeeded),
            ("failed", stats.failed),
            ("cancelled", stats.cancelled),
        ] {
            let _ = writeln!(out, "crunch_jobs{{state=\"{state}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP crunch_queue_backlog Queued plus running jobs.\n# TYPE crunch_queue_backlog gauge\ncrunch_queue_backlog {}",
            stats.backlog()
        );
        let _ = writeln!(
            out,
            "# HELP crunch_queue_oldest_seconds Age of the oldest claimable job.\n# TYPE crunch_queue_oldest_seconds gauge\ncrunch_queue_oldest_seconds {}",
            stats.oldest_queued_age.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "# HELP crunch_jobs_finished_last_minute Jobs that ended in the last minute, by outcome.\n# TYPE crunch_jobs_finished_last_minute gauge"
        );
        let f = stats.finished_last_minute;
        for (state, n) in [
            ("succeeded", f.succeeded),
            ("failed", f.failed),
            ("cancelled", f.cancelled),
        ] {
            let _ = writeln!(
                out,
                "crunch_jobs_finished_last_minute{{state=\"{state}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP crunch_job_run_seconds Run time of the jobs that ended in the last 5 minutes.\n# TYPE crunch_job_run_seconds summary"
        );
        for q in &run_times.by_state {
            for (quantile, v) in [("0.5", q.p50), ("0.9", q.p90), ("0.99", q.p99)] {
                let _ = writeln!(
                    out,
                    "crunch_job_run_seconds{{state=\"{}\",quantile=\"{quantile}\"}} {v}",
                    q.state
                );
            }
            let _ = writeln!(
                out,
                "crunch_job_run_seconds_sum{{state=\"{}\"}} {}",
                q.state, q.sum
            );
            let _ = writeln!(
                out,
                "crunch_job_run_seconds_count{{state=\"{}\"}} {}",
                q.state, q.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP crunch_http_requests_total HTTP requests by status class.\n# TYPE crunch_http_requests_total counter"
        );
        for (i, n) in self.inner.requests.iter().enumerate() {
            let _ = writeln!(
                out,
                "crunch_http_requests_total{{class=\"{}xx\"}} {}",
                i + 1,
                n.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP crunch_http_request_duration_seconds HTTP request latency.\n# TYPE crunch_http_request_duration_seconds histogram"
        );
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "crunch_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                self.inner.buckets[i].load(Ordering::Relaxed)
            );
        }
        let total = self.inner.buckets[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "crunch_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {total}"
        );
        let _ = writeln!(
            out,
            "crunch_http_request_duration_seconds_sum {}",
            self.inner.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "crunch_http_request_duration_seconds_count {total}");
        out
    }
}

/// Times every request into [`Metrics`].
pub struct Measure(pub Metrics);

impl<E: Endpoint> Middleware<E> for Measure {
    type Output = Measured<E>;

    fn transform(&self, ep: E) -> Self::Output {
        Measured {
            inner: ep,
            metrics: self.0.clone(),
        }
    }
}

/// An endpoint wrapped by [`Measure`].
pub struct Measured<E> {
    inner: E,
    metrics: Metrics,
}

impl<E: Endpoint> Endpoint for Measured<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let start = Instant::now();
        let result = self.inner.call(req).await;
        let response = match result {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        self.metrics
            .observe(response.status().as_u16(), start.elapsed().as_secs_f64());
        Ok(response)
    }
}
