//! API latency under open-loop load on loopback: requests are sent on a
//! fixed schedule and timed from their scheduled start, so a slow server
//! cannot hide queueing by slowing the client down.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use crunch_queue::Queue;
use crunch_server::state::{AppState, Limits};
use crunch_store::Store;
use poem::{
    Server,
    listener::{Acceptor, Listener, TcpListener},
};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::{report::Latency, setup::Setup};

/// One load phase's outcome.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// Requests sent.
    pub sent: usize,
    /// Requests that did not return the expected 2xx.
    pub errors: usize,
    /// Latency quantiles, ms.
    pub latency: Latency,
    /// The slowest, ms.
    pub max_ms: f64,
}

/// The API benchmark's results.
pub struct ApiResults {
    /// GET /v1/jobs/{id}.
    pub get_job: Phase,
    /// POST /v1/jobs.
    pub submit: Phase,
}

async fn start(setup: &Setup) -> anyhow::Result<(String, tempfile::TempDir)> {
    let pool = setup.crunch_db().await?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(pool.clone(), &format!("file://{}", dir.path().display()))?;
    let queue = Queue::new(pool, crunch_worker::registry());
    let state = AppState::new(queue, store, Limits::default());
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
    let addr: SocketAddr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .ok_or_else(|| anyhow::anyhow!("no local address"))?;
    tokio::spawn(Server::new_with_acceptor(acceptor).run(crunch_server::app(state)));
    Ok((format!("http://{addr}"), dir))
}

/// Sends `rate` requests per second for `seconds`, each built by `request`
/// from its index, and times them from their scheduled start.
async fn open_loop<F, Fut>(rate: u32, seconds: u32, request: F) -> Phase
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let total = (rate * seconds) as usize;
    let interval = Duration::from_secs(1) / rate.max(1);
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let request = Arc::new(request);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled).await;
        let request = request.clone();
        let latencies = latencies.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let ok = request(i).await;
            let elapsed = scheduled.elapsed().as_nanos() as u64;
            latencies.lock().await.push(elapsed);
            if !ok {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut sorted = latencies.lock().await.clone();
    sorted.sort_unstable();
    Phase {
        sent: total,
        errors: errors.load(std::sync::atomic::Ordering::Relaxed),
        latency: Latency::of(&sorted),
        max_ms: sorted.last().copied().unwrap_or(0) as f64 / 1e6,
    }
}

/// Measures get-job at `get_rate` and submit at `submit_rate` requests per
/// second, `seconds` each.
pub async fn measure(
    setup: &Setup,
    get_rate: u32,
    submit_rate: u32,
    seconds: u32,
) -> anyhow::Result<ApiResults> {
    let (base, _dir) = start(setup).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let dataset: Value = client
        .post(format!("{base}/v1/datasets?name=bench"))
        .header("content-type", "text/csv")
        .body("a,b\n1,2\n")
        .send()
        .await?
        .json()
        .await?;
    let dataset = dataset["dataset"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let job = json!({"inputs": [{"table": "t", "dataset": dataset}], "analysis": {"type": "sql", "query": "SELECT * FROM t"}});
    // Jobs to read back (no worker runs, so they stay queued).
    let mut ids = Vec::new();
    for _ in 0..200 {
        let created: Value = client
            .post(format!("{base}/v1/jobs"))
            .json(&job)
            .send()
            .await?
            .json()
            .await?;
        ids.push(created["id"].as_str().unwrap_or_default().to_owned());
    }
    let ids = Arc::new(ids);
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(500) {
        let _ = client
            .get(format!("{base}/v1/jobs/{}", ids[0]))
            .send()
            .await?;
    }

    eprintln!("get-job at {get_rate}/s for {seconds} s");
    let get_job = {
        let client = client.clone();
        let base = base.clone();
        let ids = ids.clone();
        open_loop(get_rate, seconds, move |i| {
            let url = format!("{base}/v1/jobs/{}", ids[i % ids.len()]);
            let client = client.clone();
            async move {
                matches!(client.get(url).send().await, Ok(r) if r.status().as_u16() == 200)
            }
        })
        .await
    };
    eprintln!("submit at {submit_rate}/s for {seconds} s");
    let submit = {
        let client = client.clone();
        open_loop(submit_rate, seconds, move |_| {
            let request = client.post(format!("{base}/v1/jobs")).json(&job);
            async move { matches!(request.send().await, Ok(r) if r.status().as_u16() == 201) }
        })
        .await
    };
    Ok(ApiResults { get_job, submit })
}

impl ApiResults {
    /// The results block for docs/benchmarks.md.
    pub fn markdown(&self, get_rate: u32, submit_rate: u32, seconds: u32, setup: &Setup) -> String {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        let mut out = format!(
            "Run: `cargo run --release -p crunch-bench -- api --get-rate {get_rate} --submit-rate {submit_rate} --seconds {seconds}` \
             on {cores} cores, PostgreSQL {} (private cluster, fsync and synchronous_commit on); client, server and database share the machine.\n\n",
            setup.version
        );
        out.push_str("| operation | rate (req/s) | requests | errors | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|---:|\n");
        for (name, rate, p) in [
            ("GET /v1/jobs/{id} (getJob)", get_rate, &self.get_job),
            ("POST /v1/jobs (submitJob)", submit_rate, &self.submit),
        ] {
            out.push_str(&format!(
                "| {name} | {rate} | {} | {} | {:.2} | {:.2} | {:.2} |\n",
                p.sent, p.errors, p.latency.p50, p.latency.p99, p.max_ms
            ));
        }
        out
    }
}
