//! API latency under open-loop load on loopback: requests are sent on a
//! fixed schedule and timed from their scheduled start, so a slow server
//! cannot hide queueing by slowing the client down.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use crunch_queue::{Queue, TenantId};
use crunch_server::{
    auth::{AuthMode, Scopes, keys},
    state::{AppState, Limits},
};
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
    /// GET /v1/jobs/{id} with a key.
    pub get_job: Phase,
    /// GET /v1/jobs/{id} on a server without auth (`CRUNCH_AUTH=off`).
    pub get_job_open: Phase,
    /// POST /v1/jobs with a key.
    pub submit: Phase,
}

/// A server on loopback: its base URL, the `Authorization` header value to
/// send (empty without auth) and the store's directory, kept until the end.
struct Running {
    base: String,
    authorization: String,
    _dir: tempfile::TempDir,
}

/// Starts a server with keys (`open` false; a key with every scope is
/// created for the default tenant) or without auth.
async fn start(setup: &Setup, open: bool) -> anyhow::Result<Running> {
    let pool = setup.crunch_db().await?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(pool.clone(), &format!("file://{}", dir.path().display()))?;
    let authorization = if open {
        String::new()
    } else {
        let key = keys::create(&pool, TenantId::DEFAULT, Scopes::all(), "bench", None).await?;
        format!("Bearer {}", key.secret)
    };
    let queue = Queue::new(pool, crunch_worker::registry());
    let mut state = AppState::new(queue, store, Limits::default());
    if open {
        state = state.with_auth(AuthMode::Open {
            tenant: TenantId::DEFAULT,
        });
    }
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
    let addr: SocketAddr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .ok_or_else(|| anyhow::anyhow!("no local address"))?;
    tokio::spawn(Server::new_with_acceptor(acceptor).run(crunch_server::app(state)));
    Ok(Running {
        base: format!("http://{addr}"),
        authorization,
        _dir: dir,
    })
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

/// Jobs created on `server` to read back (no worker runs, so they stay
/// queued), with the connections warmed up.
async fn seed(
    client: &reqwest::Client,
    server: &Running,
    job: &Value,
) -> anyhow::Result<Arc<Vec<String>>> {
    let dataset: Value = client
        .post(format!("{}/v1/datasets?name=bench", server.base))
        .header("authorization", &server.authorization)
        .header("content-type", "text/csv")
        .body("a,b\n1,2\n")
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let dataset = dataset["dataset"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let job = json!({"inputs": [{"table": "t", "dataset": dataset}], "analysis": job});
    let mut ids = Vec::new();
    for _ in 0..200 {
        let created: Value = client
            .post(format!("{}/v1/jobs", server.base))
            .header("authorization", &server.authorization)
            .json(&job)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        ids.push(created["id"].as_str().unwrap_or_default().to_owned());
    }
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(500) {
        client
            .get(format!("{}/v1/jobs/{}", server.base, ids[0]))
            .header("authorization", &server.authorization)
            .send()
            .await?
            .error_for_status()?;
    }
    Ok(Arc::new(ids))
}

/// GET /v1/jobs/{id} at `rate` for `seconds` against `server`.
async fn get_jobs(
    client: &reqwest::Client,
    server: &Running,
    ids: Arc<Vec<String>>,
    rate: u32,
    seconds: u32,
) -> Phase {
    let client = client.clone();
    let base = server.base.clone();
    let authorization = server.authorization.clone();
    open_loop(rate, seconds, move |i| {
        let request = client
            .get(format!("{base}/v1/jobs/{}", ids[i % ids.len()]))
            .header("authorization", &authorization);
        async move { matches!(request.send().await, Ok(r) if r.status().as_u16() == 200) }
    })
    .await
}

/// Measures get-job at `get_rate` with a key and without auth (two
/// servers, one after the other, in the same run), and submit at
/// `submit_rate` with a key, `seconds` each.
pub async fn measure(
    setup: &Setup,
    get_rate: u32,
    submit_rate: u32,
    seconds: u32,
) -> anyhow::Result<ApiResults> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let analysis = json!({"type": "sql", "query": "SELECT * FROM t"});

    let open = start(setup, true).await?;
    let open_ids = seed(&client, &open, &analysis).await?;
    eprintln!("get-job without auth at {get_rate}/s for {seconds} s");
    let get_job_open = get_jobs(&client, &open, open_ids, get_rate, seconds).await;

    let keyed = start(setup, false).await?;
    let ids = seed(&client, &keyed, &analysis).await?;
    eprintln!("get-job with a key at {get_rate}/s for {seconds} s");
    let get_job = get_jobs(&client, &keyed, ids.clone(), get_rate, seconds).await;

    eprintln!("submit with a key at {submit_rate}/s for {seconds} s");
    let dataset_job: Value = client
        .get(format!("{}/v1/jobs/{}", keyed.base, ids[0]))
        .header("authorization", &keyed.authorization)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let job = json!({"inputs": dataset_job["inputs"], "analysis": analysis});
    let submit = {
        let client = client.clone();
        let base = keyed.base.clone();
        let authorization = keyed.authorization.clone();
        open_loop(submit_rate, seconds, move |_| {
            let request = client
                .post(format!("{base}/v1/jobs"))
                .header("authorization", &authorization)
                .json(&job);
            async move { matches!(request.send().await, Ok(r) if r.status().as_u16() == 201) }
        })
        .await
    };
    Ok(ApiResults {
        get_job,
        get_job_open,
        submit,
    })
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
            (
                "GET /v1/jobs/{id} (getJob), with a key",
                get_rate,
                &self.get_job,
            ),
            (
                "GET /v1/jobs/{id} (getJob), without auth",
                get_rate,
                &self.get_job_open,
            ),
            (
                "POST /v1/jobs (submitJob), with a key",
                submit_rate,
                &self.submit,
            ),
        ] {
            out.push_str(&format!(
                "| {name} | {rate} | {} | {} | {:.2} | {:.2} | {:.2} |\n",
                p.sent, p.errors, p.latency.p50, p.latency.p99, p.max_ms
            ));
        }
        out.push_str(&format!(
            "\ngetJob p99 with a key minus without auth: {:+.2} ms (the bar: at most +0.50 ms).\n",
            self.get_job.latency.p99 - self.get_job_open.latency.p99
        ));
        out
    }
}
