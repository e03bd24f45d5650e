//! What the server's tests share: a real server on a loopback port, over a
//! fresh database and a temporary dataset store, with an in-process worker
//! (or none), and a tenant with a key of every scope; a client for it that
//! sends that key (or another, or none); and the queue with crunch's job
//! kinds.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::{net::SocketAddr, time::Duration};

use crunch_db::testing::{TestDb, test_db};
use crunch_engine::{Engine, EngineConfig};
use crunch_queue::{Queue, TenantId, WorkerConfig};
use crunch_server::{
    auth::{self, AuthMode, Scopes, VerifierConfig},
    state::{AppState, Limits},
};
use crunch_store::Store;
use crunch_worker::{
    ANALYSIS_KIND,
    handler::{Deps, WorkerOptions, run_worker},
};
use poem::{
    Server,
    listener::{Acceptor, Listener, TcpListener},
};
use serde_json::Value;
use tokio::sync::watch;

/// The queue on `db`, with crunch's job kinds (the one registry the
/// binaries use).
pub fn queue(db: &TestDb) -> Queue {
    Queue::new(db.pool().clone(), crunch_worker::registry())
}

/// A client for the server at one base URL: every request the tests send
/// goes through it, with its key as `Authorization: Bearer` (if it has
/// one).
#[derive(Clone)]
pub struct Http {
    base: String,
    client: reqwest::Client,
    key: Option<String>,
}

impl Http {
    /// A client for the server listening on `addr` that sends `key`.
    pub fn new(addr: SocketAddr, key: Option<String>) -> Http {
        Http {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            key,
        }
    }

    /// The same server, with `key` instead.
    pub fn with_key(&self, key: &str) -> Http {
        Http {
            key: Some(key.to_owned()),
            ..self.clone()
        }
    }

    /// The same server, with no key.
    pub fn anonymous(&self) -> Http {
        Http {
            key: None,
            ..self.clone()
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of `path` (with its query) on the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path`, to add headers and a body to and send.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// A `GET` of `path`.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, path)
    }

    /// A `POST` to `path`.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, path)
    }

    /// A `DELETE` of `path`.
    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::DELETE, path)
    }

    /// Sends `request`; returns the status and the JSON body (`Null` when
    /// the body is not JSON).
    pub async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// A running server and what it runs on; dropping it stops the server and
/// its worker.
pub struct App {
    /// The test's database, dropped with the app.
    _db: TestDb,
    /// The dataset store's directory.
    pub store_dir: tempfile::TempDir,
    /// A client for the server, with [`App::key`].
    pub http: Http,
    /// The server's state (its queue, store and key verifier).
    pub state: AppState,
    /// The tenant the app's key acts for.
    pub tenant: TenantId,
    /// A key of [`App::tenant`] with every scope.
    pub key: String,
    /// The in-process worker's engine, when workers run.
    pub engine: Option<Engine>,
    stop: watch::Sender<bool>,
}

/// How [`spawn_with`] sets the server up.
pub struct Options {
    /// Whether an in-process worker runs jobs.
    pub workers: bool,
    /// The worker engine's memory limit.
    pub memory_limit: Option<usize>,
    /// The largest upload body, in bytes.
    pub max_upload_bytes: u64,
    /// Whether requests act for the app's tenant without a key
    /// ([`AuthMode::Open`]) rather than need one.
    pub open: bool,
    /// The key verifier's cache and `last_used_at` settings.
    pub verifier: VerifierConfig,
    /// The storage quota of every tenant, in bytes.
    pub storage_quota: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: true,
            memory_limit: None,
            max_upload_bytes: 1 << 30,
            open: false,
            verifier: VerifierConfig::default(),
            storage_quota: None,
        }
    }
}

/// A server with an in-process worker and the default options.
pub async fn spawn_app() -> App {
    spawn_with(Options::default()).await
}

/// A server on a free loopback port over a fresh database and store, set
/// up as `options` say.
pub async fn spawn_with(options: Options) -> App {
    let db = test_db().await;
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        db.pool().clone(),
        &format!("file://{}", store_dir.path().display()),
    )
    .unwrap()
    .with_default_storage_quota(options.storage_quota);
    let queue = queue(&db);
    let limits = Limits {
        max_upload_bytes: options.max_upload_bytes,
        max_line_bytes: 64 * 1024,
        ..Limits::default()
    };
    let tenant = auth::tenants::create(db.pool(), "tenant-a").await.unwrap();
    let key = auth::keys::create(db.pool(), tenant, Scopes::all(), "test", None)
        .await
        .unwrap()
        .secret;
    let mode = if options.open {
        AuthMode::Open { tenant }
    } else {
        AuthMode::Keys
    };
    let state = AppState::new(queue.clone(), store.clone(), limits)
        .with_verifier(options.verifier)
        .with_auth(mode);
    // Revocations announced from now on reach this server's cache.
    state.auth.verifier.listening().await;
    let (stop, stopped) = watch::channel(false);
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr: SocketAddr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
    {
        let mut stopped = stopped.clone();
        let state = state.clone();
        tokio::spawn(async move {
            Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    crunch_server::app(state),
                    async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    },
                    Some(Duration::from_secs(5)),
                )
                .await
        });
    }
    let mut engine_handle = None;
    if options.workers {
        let engine = Engine::new(EngineConfig {
            memory_limit: options.memory_limit,
            threads: 2,
            ..EngineConfig::default()
        })
        .unwrap();
        engine_handle = Some(engine.clone());
        let worker = WorkerOptions {
            queue: WorkerConfig::new("test-worker")
                .kinds([ANALYSIS_KIND])
                .heartbeat_interval(Duration::from_millis(200))
                .poll_interval(Duration::from_millis(200)),
            grace: Duration::from_secs(5),
        };
        let mut stopped = stopped.clone();
        tokio::spawn(run_worker(
            queue.clone(),
            Deps { store, engine },
            worker,
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        ));
    }
    App {
        _db: db,
        store_dir,
        http: Http::new(addr, Some(key.clone())),
        state,
        tenant,
        key,
        engine: engine_handle,
        stop,
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl App {
    /// The database pool.
    pub fn pool(&self) -> &sqlx::PgPool {
        self.state.queue.pool()
    }

    /// A new tenant named `name` and a key of it with `scopes`.
    pub async fn tenant_with_key(&self, name: &str, scopes: &str) -> (TenantId, String) {
        let tenant = auth::tenants::create(self.pool(), name).await.unwrap();
        (tenant, self.key_of(tenant, scopes).await)
    }

    /// A new key of `tenant` with `scopes` (`read,write`).
    pub async fn key_of(&self, tenant: TenantId, scopes: &str) -> String {
        let scopes = Scopes::parse_list(scopes).unwrap();
        auth::keys::create(self.pool(), tenant, scopes, "test", None)
            .await
            .unwrap()
            .secret
    }

    /// Serves [`crunch_server::metrics_app`] on a loopback port of its own,
    /// until the app stops; returns a client for it (with no key).
    pub async fn serve_metrics(&self) -> Http {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let addr: SocketAddr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
        let mut stopped = self.stop.subscribe();
        let endpoint = crunch_server::metrics_app(self.state.clone());
        tokio::spawn(async move {
            Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    endpoint,
                    async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    },
                    Some(Duration::from_secs(5)),
                )
                .await
        });
        Http::new(addr, None)
    }

    /// Uploads a CSV body; returns (status, body).
    pub async fn upload_csv(&self, query: &str, csv: &str) -> (u16, Value) {
        let request = self
            .http
            .post(&format!("/v1/datasets?{query}"))
            .header("content-type", "text/csv")
            .body(csv.to_owned());
        Http::send(request).await
    }

    /// Uploads a CSV dataset that must succeed; returns its id.
    pub async fn dataset(&self, name: &str, csv: &str) -> String {
        let (status, body) = self.upload_csv(&format!("name={name}&null=NA"), csv).await;
        assert_eq!(status, 201, "{body}");
        body["dataset"]["id"].as_str().unwrap().to_owned()
    }

    /// `POST path` with a JSON body; returns (status, body).
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        Http::send(self.http.post(path).json(&body)).await
    }

    /// `GET path`; returns (status, body).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        Http::send(self.http.get(path)).await
    }

    /// Submits a job and long-polls it to the end.
    pub async fn run(&self, inputs: Value, analysis: Value) -> Value {
        let (status, job) = self
            .post(
                "/v1/jobs?wait=30",
                serde_json::json!({"inputs": inputs, "analysis": analysis}),
            )
            .await;
        assert_eq!(status, 201, "{job}");
        self.finished(job["id"].as_str().unwrap()).await
    }

    /// Long-polls a job until it is terminal.
    pub async fn finished(&self, id: &str) -> Value {
        for _ in 0..20 {
            let (status, job) = self.get(&format!("/v1/jobs/{id}?wait=30")).await;
            assert_eq!(status, 200, "{job}");
            if ["succeeded", "failed", "cancelled"].contains(&job["state"].as_str().unwrap()) {
                return job;
            }
        }
        panic!("job {id} did not finish");
    }

    /// All rows of a succeeded job's result, as JSON objects.
    pub async fn rows(&self, id: &str) -> Vec<Value> {
        let (status, page) = self
            .get(&format!("/v1/jobs/{id}/result?format=json&limit=10000"))
            .await;
        assert_eq!(status, 200, "{page}");
        page["rows"].as_array().unwrap().clone()
    }

    /// Files under the dataset store.
    pub fn stored_files(&self) -> Vec<std::path::PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p, out);
                    } else {
                        out.push(p);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self.store_dir.path(), &mut out);
        out
    }
}
