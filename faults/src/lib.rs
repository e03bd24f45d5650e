//! Support for the fault suite (`tests/`): real `crunch-server` and
//! `crunch-worker` processes against a private PostgreSQL cluster, driven
//! over HTTP and observed through the API and [`crunch_queue::Queue`].
//!
//! - [`Env`]: one throwaway cluster, a migrated database, a dataset store in
//!   a temporary directory, and the processes started on them; when a test
//!   fails, their logs are printed. Each holds the suite's turn while it
//!   lives, so the cases run one at a time (see [`Env::start`]).
//! - [`Proc`]: a child process, killed when dropped, signalled with the
//!   `kill` command.
//! - [`Api`]: a small HTTP client for the calls the cases make.
//! - [`eventually`]: the one way the suite waits, by polling a condition
//!   with a generous bound (the bound only turns a hang into a failure).
//!
//! Run it with `cargo test -p crunch-faults` (the binaries are built first
//! if needed), one case with `cargo test -p crunch-faults --test it
//! worker_crash`. `CRUNCH_FAULT_KILLS=200` raises the number of workers the
//! crash case kills (20 by default); `CRUNCH_FAULT_LOG=info` makes the
//! processes log more (their output is printed when a case fails).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    future::Future,
    net::{Ipv4Addr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant, SystemTime},
};

use crunch_db::{ClusterOptions, LocalCluster};
use crunch_queue::{Job, JobFilter, JobId, JobState, Queue, TenantId};
use serde_json::{Value, json};
use uuid::Uuid;

/// How often [`eventually`] re-checks its condition.
pub const POLL: Duration = Duration::from_millis(50);

/// Rows in the numbers dataset that [`Api::numbers`] uploads: 0 to 2999.
pub const NUMBERS: u32 = 3000;

/// A query that runs for minutes over the numbers dataset (27 billion
/// triples, none matching): a job to stop mid-flight.
pub const SLOW_QUERY: &str = "SELECT count(*) AS n FROM t a, t b, t c WHERE a.x + b.x + c.x = -1";

/// A query that runs for a few seconds over the numbers dataset (270
/// million triples); its answer is 0.
pub const SECONDS_QUERY: &str =
    "SELECT count(*) AS n FROM t a, t b, t c WHERE a.x + b.x + c.x = -1 AND c.x < 10";

/// A query that takes milliseconds and whose answer is `k` (up to 3000).
pub fn quick_query(k: u32) -> String {
    format!("SELECT count(*) AS n FROM t WHERE x < {k}")
}

/// A query that takes a few hundred milliseconds (9 million pairs) and
/// whose answer is `k + 1`: the pairs of numbers that add up to `k` (up to
/// 2999).
pub fn pairs_query(k: u32) -> String {
    format!("SELECT count(*) AS n FROM t a, t b WHERE a.x + b.x = {k}")
}

/// The suite's turn, held by each [`Env`] for as long as it lives.
///
/// Every case starts its own cluster, a server and workers with engine
/// threads, and kills, restarts or signals them; its processes run with
/// 2 s leases and 0.5 s heartbeats. The cases share one test binary, whose
/// harness runs as many tests at once as the machine has cores: two cases
/// at once on a small machine starve each other's heartbeats and fail by
/// timing rather than by the fault under test, and on a large one a dozen
/// clusters and dozens of workers would compete. So the cases run one after
/// another, whatever `--test-threads` says. A tokio mutex: it is held
/// across awaits and by tests on different runtimes, and a failed case
/// releases it without poisoning it for the next.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The two binaries under test.
#[derive(Debug)]
pub struct Binaries {
    /// `crunch-server`.
    pub server: PathBuf,
    /// `crunch-worker`.
    pub worker: PathBuf,
}

/// The binaries of this build's profile (`target/<profile>/`, the parent of
/// the test executable's `deps/`), built first when missing or older than
/// the sources they are built from, so `cargo test -p crunch-faults` works
/// alone. `cargo test --workspace` has built them already.
pub fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test executable's path");
        let deps = exe.parent().expect("the test executable's directory");
        let profile_dir = if deps.file_name().is_some_and(|n| n == "deps") {
            deps.parent().expect("target/<profile>")
        } else {
            deps
        };
        let binaries = Binaries {
            server: profile_dir.join("crunch-server"),
            worker: profile_dir.join("crunch-worker"),
        };
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace root");
        // A worker without failpoints (built by a plain `cargo build`, so
        // newer than the sources yet not this suite's build) is rebuilt
        // too: tests/it/panic.rs needs them.
        if stale(&binaries.server, workspace)
            || stale(&binaries.worker, workspace)
            || !has_failpoints(&binaries.worker)
        {
            build(profile_dir, workspace);
        }
        assert!(
            has_failpoints(&binaries.worker),
            "{} was built without the `failpoints` feature",
            binaries.worker.display()
        );
        binaries
    })
}

/// Whether the worker binary carries its failpoints: the variable that arms
/// one appears in the binary only when the feature compiled them in.
fn has_failpoints(worker: &Path) -> bool {
    std::fs::read(worker).is_ok_and(|bytes| {
        memchr::memmem::find(&bytes, b"CRUNCH_FAILPOINT_HANDLER_PANIC").is_some()
    })
}

/// Whether `binary` is missing or older than a source it is built from.
fn stale(binary: &Path, workspace: &Path) -> bool {
    let Ok(built) = std::fs::metadata(binary).and_then(|m| m.modified()) else {
        return true;
    };
    let sources = ["db", "queue", "store", "worker", "server", "migrations"];
    sources
        .iter()
        .any(|dir| newest_file(&workspace.join(dir)).is_some_and(|t| t > built))
        || newest_file(&workspace.join("Cargo.lock")).is_some_and(|t| t > built)
}

/// The latest modification time of the files under `path`, skipping
/// `tests/`, which the binaries are not built from.
fn newest_file(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter(|e| e.file_name() != "tests")
        .filter_map(|e| newest_file(&e.path()))
        .max()
}

fn build(profile_dir: &Path, workspace: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "-p", "crunch-server", "-p", "crunch-worker"])
        // The worker's failpoints, as `cargo test --workspace` builds it.
        .args(["--features", "crunch-worker/failpoints"]);
    // Build in the environment the developer ran cargo in, not the one cargo
    // gives the test: some build scripts (ring's) rerun when CARGO_PKG_NAME
    // or CARGO_MANIFEST_DIR change, which would rebuild half the workspace
    // on every alternation between this build and the developer's.
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let added_by_cargo = key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "OUT_DIR",
            ]
            .contains(&key);
        if added_by_cargo {
            command.env_remove(key);
        }
    }
    let target = profile_dir.parent().unwrap_or(profile_dir);
    if let Some(paths) = std::env::var_os("LD_LIBRARY_PATH") {
        // Cargo prepends the target directory and the toolchain's libraries.
        let kept: Vec<PathBuf> = std::env::split_paths(&paths)
            .filter(|p| !p.starts_with(target) && !p.to_string_lossy().contains("/toolchains/"))
            .collect();
        if kept.is_empty() {
            command.env_remove("LD_LIBRARY_PATH");
        } else {
            command.env(
                "LD_LIBRARY_PATH",
                std::env::join_paths(kept).expect("joining library paths"),
            );
        }
    }
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    command.arg("--target-dir").arg(target);
    let status = command.status().expect("running cargo build");
    assert!(status.success(), "building the binaries failed: {status}");
}

/// Polls `probe` every [`POLL`] until it returns `Some`, and returns that.
/// Panics, naming `what`, when `limit` passes first: the limit only turns a
/// broken build's hang into a failure, it is not a timing assertion.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; see [`Env::server`]).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a free port");
    listener.local_addr().expect("its address").port()
}

/// A child process with its output in files. Dropping it kills it
/// (SIGKILL) and reaps it.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    exit: Option<ExitStatus>,
}

impl Proc {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its name in the test's logs (the worker id, for workers).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends `signal` (`TERM`, `KILL`, …) with the `kill` command.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -s {signal} {} failed", self.pid());
    }

    /// SIGKILLs it, as a crash or the OOM killer would, and reaps it.
    pub async fn crash(&mut self) {
        self.signal("KILL");
        let status = self.wait_exit(Duration::from_secs(30)).await;
        assert!(!status.success(), "{} survived SIGKILL", self.name);
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("checking a child");
        }
        self.exit
    }

    /// Waits for it to exit by itself (after a signal), up to `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let what = format!("{} (pid {}) to exit", self.name, self.pid());
        eventually(&what, limit, || std::future::ready(self.exited())).await
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A server process and a client for its API.
#[derive(Debug)]
pub struct Server {
    /// The process.
    pub proc: Proc,
    /// Its API.
    pub api: Api,
}

/// One test's world: a private PostgreSQL cluster with a migrated
/// database, a dataset store in a temporary directory, and a queue handle
/// to observe jobs with. Processes started through it write their output
/// into the temporary directory; if the test panics, the output is printed.
pub struct Env {
    /// The cluster; tests restart and kill it.
    pub cluster: LocalCluster,
    /// The database URL the processes use.
    pub database_url: String,
    /// The queue, for reading job state (never raw SQL on `jobs`).
    pub queue: Queue,
    /// The API key every server of this world accepts and every [`Api`]
    /// sends: minted by `crunch-server keys generate`, as an operator
    /// would, and given to the servers as `CRUNCH_BOOTSTRAP_KEY_SHA256`.
    pub key: String,
    key_sha256: String,
    dir: tempfile::TempDir,
    logs: Arc<Mutex<Vec<(String, PathBuf)>>>,
    /// Last, so the turn passes on only once the cluster and the directory
    /// are gone (fields drop in order, after [`Env`]'s own `drop`).
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// The database the processes share.
const DATABASE: &str = "crunch";

impl Env {
    /// Waits for the suite's turn (one case runs at a time: two would
    /// starve each other's processes of the machine), then starts a
    /// cluster (ephemeral: no fsync, but synchronous_commit on, so
    /// acknowledged commits survive PostgreSQL crashes) and migrates a
    /// database on it. Start an `Env` before the processes, agents and
    /// tasks of a case, so they end before the turn passes on.
    pub async fn start() -> Env {
        let turn = TURN.lock().await;
        let cluster = LocalCluster::start_temporary(ClusterOptions {
            ephemeral: true,
            ..ClusterOptions::default()
        })
        .await
        .expect("starting PostgreSQL");
        let database_url = cluster.url(DATABASE);
        let pool = crunch_db::connect_and_migrate(&database_url, 4)
            .await
            .expect("migrating the database");
        let queue = Queue::new(pool, crunch_worker::registry());
        let (key, key_sha256) = generate_key();
        Env {
            cluster,
            database_url,
            queue,
            key,
            key_sha256,
            dir: tempfile::tempdir().expect("a temporary directory"),
            logs: Arc::default(),
            _turn: turn,
        }
    }

    /// The dataset store, shared by every process.
    pub fn store_url(&self) -> String {
        format!("file://{}", self.dir.path().join("store").display())
    }

    fn spawn(&self, name: &str, program: &Path, args: &[&str], env: &[(&str, String)]) -> Proc {
        let log = self.dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("creating a log file");
        let err = out.try_clone().expect("cloning a log file");
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.database_url)
            .env("CRUNCH_STORE_URL", self.store_url())
            .env(
                "CRUNCH_LOG",
                std::env::var("CRUNCH_FAULT_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .env("CRUNCH_LEASE_SECONDS", "2")
            .env("CRUNCH_HEARTBEAT_SECONDS", "0.5")
            .env("CRUNCH_POLL_SECONDS", "0.5")
            .env("CRUNCH_ENGINE_THREADS", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        self.logs.lock().unwrap().push((name.to_owned(), log));
        Proc {
            name: name.to_owned(),
            child,
            exit: None,
        }
    }

    /// Starts a worker named `id` (its `CRUNCH_WORKER_ID`, and the
    /// `application_name` of its database sessions) with a 2 s lease, 0.5 s
    /// heartbeats and polling, and `env` on top (a shutdown grace, a memory
    /// limit).
    pub fn worker(&self, id: &str, env: &[(&str, String)]) -> Proc {
        let mut all = vec![
            (
                "DATABASE_URL",
                format!("{}?application_name={id}", self.database_url),
            ),
            ("CRUNCH_WORKER_ID", id.to_owned()),
            ("CRUNCH_SHUTDOWN_GRACE_SECONDS", "10".to_owned()),
        ];
        all.extend(env.iter().cloned());
        self.spawn(id, &binaries().worker, &[], &all)
    }

    /// Starts an API server without in-process workers on a free port and
    /// waits until it answers `/readyz`.
    pub async fn server(&self, name: &str) -> Server {
        for _ in 0..5 {
            let port = free_port();
            let mut proc = self.spawn(
                name,
                &binaries().server,
                &[],
                &[
                    ("CRUNCH_LISTEN", format!("127.0.0.1:{port}")),
                    ("CRUNCH_WORKERS", "0".to_owned()),
                    ("CRUNCH_DATA_DIR", self.dir.path().display().to_string()),
                    ("CRUNCH_BOOTSTRAP_KEY_SHA256", self.key_sha256.clone()),
                ],
            );
            let api = Api::new(format!("http://127.0.0.1:{port}"), &self.key);
            let up = eventually(
                &format!("{name} to answer /readyz or exit"),
                Duration::from_secs(120),
                || {
                    let api = &api;
                    let exited = proc.exited().is_some();
                    async move {
                        if exited {
                            return Some(false);
                        }
                        api.ready().await.then_some(true)
                    }
                },
            )
            .await;
            if up {
                return Server { proc, api };
            }
            // Most likely someone took the port meanwhile: try another.
            eprintln!("{name} exited at start; retrying on another port");
        }
        panic!("{name} did not start; see its log");
    }

    /// Runs `crunch-server migrate`, the one-shot schema step before a
    /// deploy, and returns how it exited.
    pub async fn migrate(&self) -> ExitStatus {
        let mut proc = self.spawn("migrate", &binaries().server, &["migrate"], &[]);
        proc.wait_exit(Duration::from_secs(120)).await
    }

    /// How many database sessions worker `id` has open.
    pub async fn sessions(&self, id: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
            .bind(id)
            .fetch_one(self.queue.pool())
            .await
            .expect("reading pg_stat_activity")
    }

    /// Waits until no database session of worker `id` is left: after that,
    /// nothing the worker sent (a claim in flight when it died) can still
    /// change a job.
    pub async fn disconnected(&self, id: &str) {
        eventually(
            &format!("the database sessions of {id} to end"),
            Duration::from_secs(60),
            || async { (self.sessions(id).await == 0).then_some(()) },
        )
        .await;
    }

    /// Reads a job through the queue.
    pub async fn job(&self, id: Uuid) -> Job {
        self.queue
            .get(TenantId::DEFAULT, JobId(id))
            .await
            .expect("reading a job")
            .unwrap_or_else(|| panic!("job {id} does not exist"))
    }

    /// The running jobs, through the queue.
    pub async fn running(&self) -> Vec<Job> {
        self.queue
            .list(
                TenantId::DEFAULT,
                &JobFilter {
                    states: vec![JobState::Running],
                    limit: 1000,
                    ..JobFilter::default()
                },
            )
            .await
            .expect("listing running jobs")
    }

    /// Every job, newest first (up to 10 000).
    pub async fn all_jobs(&self) -> Vec<Job> {
        self.queue
            .list(
                TenantId::DEFAULT,
                &JobFilter {
                    limit: 10_000,
                    ..JobFilter::default()
                },
            )
            .await
            .expect("listing jobs")
    }

    /// Waits until every job in `ids` is terminal and returns them.
    pub async fn all_terminal(&self, ids: &[Uuid], limit: Duration) -> Vec<Job> {
        eventually("every job to reach a terminal state", limit, || async {
            let mut jobs = Vec::with_capacity(ids.len());
            for id in ids {
                let job = self.job(*id).await;
                if !job.state.is_terminal() {
                    return None;
                }
                jobs.push(job);
            }
            Some(jobs)
        })
        .await
    }

    /// Prints every process's output: called when a test fails.
    fn print_logs(&self) {
        for (name, path) in self.logs.lock().unwrap().iter() {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!("----- {name} ({}) -----", path.display());
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
    }
}

/// A response: its status, content type and JSON body (`Null` if none).
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The `content-type` header.
    pub content_type: String,
    /// The body as JSON.
    pub body: Value,
}

impl Reply {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `id` field of a job body.
    pub fn id(&self) -> Uuid {
        self.body["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no job id in {}", self.body))
    }
}

/// A new key and its hex SHA-256, from `crunch-server keys generate`.
fn generate_key() -> (String, String) {
    let out = Command::new(&binaries().server)
        .args(["keys", "generate"])
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .expect("running crunch-server keys generate");
    assert!(out.status.success(), "crunch-server keys generate failed");
    let stdout = String::from_utf8(out.stdout).expect("keys generate prints text");
    let mut lines = stdout.lines();
    match (lines.next(), lines.next()) {
        (Some(key), Some(sha256)) => (key.to_owned(), sha256.to_owned()),
        _ => panic!("keys generate printed {stdout:?}, not a key and its hash"),
    }
}

/// A client for one server's API, sending one key with every request.
#[derive(Debug, Clone)]
pub struct Api {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    client: reqwest::Client,
}

impl Api {
    /// A client for the server at `base` that sends `key` as
    /// `Authorization: Bearer` with every request.
    pub fn new(base: String, key: &str) -> Api {
        let mut headers = reqwest::header::HeaderMap::new();
        let mut bearer = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
            .expect("a key is printable ASCII");
        bearer.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, bearer);
        Api {
            base,
            client: reqwest::Client::builder()
                .default_headers(headers)
                .timeout(Duration::from_secs(120))
                .build()
                .expect("an HTTP client"),
        }
    }

    async fn reply(response: reqwest::Response) -> Result<Reply, reqwest::Error> {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            content_type,
            body,
        })
    }

    /// `GET path`; `Err` when no complete response arrived.
    pub async fn get(&self, path: &str) -> Result<Reply, reqwest::Error> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await?;
        Self::reply(response).await
    }

    /// `POST path` with a JSON body; `Err` when no complete response arrived.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Reply, reqwest::Error> {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await?;
        Self::reply(response).await
    }

    /// Whether `/readyz` answers 2xx within a second.
    pub async fn ready(&self) -> bool {
        let probe = self
            .client
            .get(format!("{}/readyz", self.base))
            .timeout(Duration::from_secs(1))
            .send();
        matches!(probe.await, Ok(r) if r.status().is_success())
    }

    /// Uploads the numbers 0 to 2999 as a CSV dataset with one column `x`;
    /// returns its id.
    pub async fn numbers(&self) -> String {
        let mut csv = String::from("x\n");
        for x in 0..NUMBERS {
            csv.push_str(&format!("{x}\n"));
        }
        self.upload_csv("numbers", csv).await
    }

    /// Uploads a CSV dataset; returns its id.
    pub async fn upload_csv(&self, name: &str, csv: String) -> String {
        let response = self
            .client
            .post(format!("{}/v1/datasets?name={name}", self.base))
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .expect("uploading a dataset");
        let reply = Self::reply(response).await.expect("the upload's answer");
        assert_eq!(reply.status, 201, "upload failed: {}", reply.body);
        reply.body["dataset"]["id"]
            .as_str()
            .expect("a dataset id")
            .to_owned()
    }

    /// Submits an SQL job over `dataset` (as table `t`); `Err` when no
    /// complete response arrived.
    pub async fn submit(
        &self,
        dataset: &str,
        query: &str,
        max_attempts: u32,
    ) -> Result<Reply, reqwest::Error> {
        self.post("/v1/jobs", &sql_job(dataset, query, max_attempts))
            .await
    }

    /// Submits a job that must be accepted; returns its id.
    pub async fn submit_ok(&self, dataset: &str, query: &str, max_attempts: u32) -> Uuid {
        let reply = self
            .submit(dataset, query, max_attempts)
            .await
            .expect("submitting a job");
        assert_eq!(reply.status, 201, "submit failed: {}", reply.body);
        reply.id()
    }

    /// The rows of a succeeded job's result.
    pub async fn rows(&self, id: Uuid) -> Vec<Value> {
        let reply = self
            .get(&format!("/v1/jobs/{id}/result?format=json&limit=10000"))
            .await
            .expect("fetching a result");
        assert_eq!(reply.status, 200, "result of {id}: {}", reply.body);
        reply.body["rows"].as_array().expect("result rows").clone()
    }
}

/// The body of an SQL job over `dataset` as table `t`, with a one-hour
/// time limit per attempt.
pub fn sql_job(dataset: &str, query: &str, max_attempts: u32) -> Value {
    json!({
        "inputs": [{"table": "t", "dataset": dataset}],
        "analysis": {"type": "sql", "query": query},
        "max_attempts": max_attempts,
        "timeout_seconds": 3600,
    })
}

/// The attempt whose result file a succeeded job records
/// (`…/attempt-<n>.parquet`), if any.
pub fn result_attempt(job: &Job) -> Option<i32> {
    let path = job.result.as_ref()?.get("path")?.as_str()?;
    let name = path.rsplit('/').next()?;
    name.strip_prefix("attempt-")?
        .strip_suffix(".parquet")?
        .parse()
        .ok()
}

/// How many times a test injects a fault that the environment can raise:
/// `CRUNCH_FAULT_KILLS` (at least `default`).
pub fn kills(default: usize) -> usize {
    std::env::var("CRUNCH_FAULT_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(default, |n: usize| n.max(default))
}
