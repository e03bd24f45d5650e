//! Tenant isolation, against every operation of the committed
//! `openapi.json`.
//!
//! Tenant A gets real resources of every kind (a dataset of two parts, a
//! succeeded job with a result, a queued job, a batch, keys made through
//! the key API, one of them revoked, queue numbers). Then every operation
//! the spec lists is sent, built by the table in [`cases`] and aimed at
//! A's resources, with tenant B's all-scopes key, with a read-only key of
//! A and with no key (or a key that does not authenticate). An operation of
//! the spec that the table does not cover fails the test by its
//! operationId, and so does a table entry whose operation left the spec:
//! a new operation cannot be forgotten.
//!
//! What must hold: B is answered exactly as for an id that exists nowhere
//! (404 in a path, 422 as a job's input, docs/guarantees.md), and B's own
//! listings, statistics and creations name nothing of A's; the read-only
//! key is refused 403 by every operation but the GETs that need only
//! `read`; without a valid key every `/v1` operation is 401 with a
//! challenge, and only the open operations answer 2xx. Afterwards A's
//! datasets, parts, jobs, results, keys, queue numbers and stored files
//! are as they were.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    time::Duration,
};

use crunch_engine::{Engine, EngineConfig};
use crunch_queue::WorkerConfig;
use crunch_server::auth::{self, Scope};
use crunch_worker::{
    ANALYSIS_KIND,
    handler::{Deps, WorkerOptions, run_worker},
};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::common::*;

/// A's rows: words that appear in no id, key or timestamp, so that any
/// answer to B containing one of them shows A's data.
const A_UPLOAD: &str = "region,amount\nzanzibar,7919\nyukon,6007\n";
const A_APPEND: &str = "region,amount\nxinjiang,5003\n";
const A_WORDS: [&str; 3] = ["zanzibar", "yukon", "xinjiang"];

/// Rows B sends, in A's dataset's schema.
const B_ROWS: &str = "region,amount\nalpha,1\n";

/// The paths served without a key that the spec does not list.
const OPEN_UNLISTED: [&str; 2] = ["/docs", "/openapi.json"];

/// What the requests are aimed at: A's resources, by id or prefix.
struct Fixture {
    /// A's dataset (two parts).
    dataset: String,
    /// The absolute path of the dataset's first part's file.
    part_file: String,
    /// A's job that succeeded, with a result.
    succeeded_job: String,
    /// A's job that stays queued (no worker runs once it is submitted).
    queued_job: String,
    /// The prefix of a live key of A, created through the key API.
    key: String,
    /// The prefix of a key of A revoked through the key API.
    revoked_key: String,
    /// B's own dataset, for B's jobs that try to reach A's by SQL.
    b_dataset: String,
}

/// Which of A's resources a request names, in its path (`{id}`,
/// `{prefix}`), its query (`{target}`) or its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Nothing,
    Dataset,
    PartFile,
    SucceededJob,
    QueuedJob,
    Key,
    RevokedKey,
}

impl Target {
    /// The resource's id, prefix or path.
    fn of(self, f: &Fixture) -> String {
        match self {
            Target::Nothing => String::new(),
            Target::Dataset => f.dataset.clone(),
            Target::PartFile => f.part_file.clone(),
            Target::SucceededJob => f.succeeded_job.clone(),
            Target::QueuedJob => f.queued_job.clone(),
            Target::Key => f.key.clone(),
            Target::RevokedKey => f.revoked_key.clone(),
        }
    }

    /// A value of the same kind that names nothing at all: what B's answer
    /// is compared with.
    fn missing(self, f: &Fixture) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        match self {
            Target::Nothing => String::new(),
            Target::Dataset | Target::SucceededJob | Target::QueuedJob => id,
            Target::PartFile => f.part_file.replace(&f.dataset, &id),
            Target::Key | Target::RevokedKey => {
                auth::keys::prefix_of(&auth::keys::mint().unwrap().secret).unwrap()
            }
        }
    }

    /// The path parameter the target fills, if it is named in a path.
    fn path_param(self) -> Option<&'static str> {
        match self {
            Target::Dataset | Target::SucceededJob | Target::QueuedJob => Some("id"),
            Target::Key | Target::RevokedKey => Some("prefix"),
            Target::Nothing | Target::PartFile => None,
        }
    }
}

/// A request's body, before the spec's media type is put on it.
enum Body {
    Empty,
    Csv(&'static str),
    Json(Value),
}

/// What B's all-scopes key gets.
#[derive(Debug, Clone, Copy)]
enum Other {
    /// This status, and exactly the answer to the same request naming
    /// nothing (the target replaced by [`Target::missing`]).
    Hidden(u16),
    /// This 2xx status, for B's own data: the answer names nothing of A's.
    Own(u16),
}

/// Who may call an operation.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// Anyone, without a key: 2xx.
    Open,
    /// A key with `needs`; B's key gets `other`.
    Key { needs: Scope, other: Other },
}

/// A check of an answer's JSON: why it is wrong, if it is.
type Check = fn(&Value) -> Result<(), String>;

/// One request of the table: an operation of the spec, aimed at A.
struct Case {
    /// The spec's operationId.
    operation: &'static str,
    /// The method and path as the spec writes them.
    method: &'static str,
    path: &'static str,
    /// The query string, `{target}` standing for the target's value.
    query: &'static str,
    target: Target,
    /// The body, from the fixture and the target's value.
    body: fn(&Fixture, &str) -> Body,
    access: Access,
    /// An extra check of B's answer (of an [`Other::Own`] case).
    check: Option<Check>,
}

fn no_body(_: &Fixture, _: &str) -> Body {
    Body::Empty
}

impl Case {
    fn new(
        operation: &'static str,
        method: &'static str,
        path: &'static str,
        needs: Scope,
        other: Other,
    ) -> Case {
        Case {
            operation,
            method,
            path,
            query: "",
            target: Target::Nothing,
            body: no_body,
            access: Access::Key { needs, other },
            check: None,
        }
    }

    fn open(operation: &'static str, method: &'static str, path: &'static str) -> Case {
        Case {
            access: Access::Open,
            ..Case::new(operation, method, path, Scope::Read, Other::Own(200))
        }
    }

    fn query(self, query: &'static str) -> Case {
        Case { query, ..self }
    }

    fn target(self, target: Target) -> Case {
        Case { target, ..self }
    }

    fn body(self, body: fn(&Fixture, &str) -> Body) -> Case {
        Case { body, ..self }
    }

    fn check(self, check: Check) -> Case {
        Case {
            check: Some(check),
            ..self
        }
    }
}

/// A job reading `dataset` as table `t`.
fn job_on(dataset: &str, query: &str) -> Value {
    json!({"inputs": [{"table": "t", "dataset": dataset}],
           "analysis": {"type": "sql", "query": query}})
}

/// How to aim every operation of the spec at A's resources. Several rows
/// may exercise one operation (a long-poll, a filter, another target).
fn cases() -> Vec<Case> {
    use Other::{Hidden, Own};
    use Scope::{Admin, Read, Write};
    use Target::*;
    vec![
        Case::open("getLiveness", "get", "/healthz"),
        Case::open("getReadiness", "get", "/readyz"),
        Case::new("listDatasets", "get", "/v1/datasets", Read, Own(200)),
        Case::new("listDatasets", "get", "/v1/datasets", Read, Own(200)).query("limit=1000"),
        // B's upload of a dataset named like A's ("sales") is B's own.
        Case::new("createDataset", "post", "/v1/datasets", Write, Own(201))
            .query("name=sales&format=csv")
            .body(|_, _| Body::Csv(B_ROWS)),
        Case::new("getDataset", "get", "/v1/datasets/{id}", Read, Hidden(404)).target(Dataset),
        Case::new(
            "appendDatasetPart",
            "post",
            "/v1/datasets/{id}/parts",
            Write,
            Hidden(404),
        )
        .target(Dataset)
        .query("format=csv")
        .body(|_, _| Body::Csv(B_ROWS)),
        Case::new(
            "deleteDataset",
            "delete",
            "/v1/datasets/{id}",
            Write,
            Hidden(404),
        )
        .target(Dataset),
        Case::new("submitJob", "post", "/v1/jobs", Write, Hidden(422))
            .target(Dataset)
            .body(|_, dataset| Body::Json(job_on(dataset, "SELECT region FROM t"))),
        Case::new("submitJob", "post", "/v1/jobs", Write, Hidden(422))
            .target(Dataset)
            .query("wait=2")
            .body(|_, dataset| Body::Json(job_on(dataset, "SELECT region FROM t"))),
        // SQL over B's own dataset cannot name A's, by id or by file.
        Case::new("submitJob", "post", "/v1/jobs", Write, Hidden(422))
            .target(Dataset)
            .body(|f, dataset| {
                Body::Json(job_on(
                    &f.b_dataset,
                    &format!("SELECT region FROM \"{dataset}\""),
                ))
            }),
        Case::new("submitJob", "post", "/v1/jobs", Write, Hidden(422))
            .target(PartFile)
            .body(|f, file| {
                Body::Json(job_on(
                    &f.b_dataset,
                    &format!("SELECT region FROM '{file}'"),
                ))
            }),
        Case::new(
            "submitJobBatch",
            "post",
            "/v1/job-batches",
            Write,
            Hidden(422),
        )
        .target(Dataset)
        .body(|_, dataset| Body::Json(json!({"jobs": [job_on(dataset, "SELECT region FROM t")]}))),
        // A batch of one good job of B's and one naming A's dataset is
        // refused whole.
        Case::new(
            "submitJobBatch",
            "post",
            "/v1/job-batches",
            Write,
            Hidden(422),
        )
        .target(Dataset)
        .body(|f, dataset| {
            Body::Json(json!({"jobs": [
                job_on(&f.b_dataset, "SELECT region FROM t"),
                job_on(dataset, "SELECT region FROM t"),
            ]}))
        }),
        Case::new("listJobs", "get", "/v1/jobs", Read, Own(200)).check(no_items),
        Case::new("listJobs", "get", "/v1/jobs", Read, Own(200))
            .target(Dataset)
            .query("dataset={target}")
            .check(no_items),
        Case::new("listJobs", "get", "/v1/jobs", Read, Own(200))
            .query("state=succeeded")
            .check(no_items),
        Case::new("listJobs", "get", "/v1/jobs", Read, Own(200))
            .query("state=queued&type=sql")
            .check(no_items),
        Case::new("getJob", "get", "/v1/jobs/{id}", Read, Hidden(404)).target(SucceededJob),
        // A long-poll of A's queued job.
        Case::new("getJob", "get", "/v1/jobs/{id}", Read, Hidden(404))
            .target(QueuedJob)
            .query("wait=2"),
        Case::new(
            "cancelJob",
            "post",
            "/v1/jobs/{id}/cancel",
            Write,
            Hidden(404),
        )
        .target(QueuedJob),
        Case::new(
            "cancelJob",
            "post",
            "/v1/jobs/{id}/cancel",
            Write,
            Hidden(404),
        )
        .target(SucceededJob),
        Case::new(
            "getJobResult",
            "get",
            "/v1/jobs/{id}/result",
            Read,
            Hidden(404),
        )
        .target(SucceededJob),
        Case::new(
            "getJobResult",
            "get",
            "/v1/jobs/{id}/result",
            Read,
            Hidden(404),
        )
        .target(SucceededJob)
        .query("format=csv"),
        Case::new(
            "getJobResult",
            "get",
            "/v1/jobs/{id}/result",
            Read,
            Hidden(404),
        )
        .target(SucceededJob)
        .query("format=parquet"),
        Case::new(
            "downloadJobResultCsv",
            "get",
            "/v1/jobs/{id}/result.csv",
            Read,
            Hidden(404),
        )
        .target(SucceededJob),
        Case::new(
            "downloadJobResultParquet",
            "get",
            "/v1/jobs/{id}/result.parquet",
            Read,
            Hidden(404),
        )
        .target(SucceededJob),
        Case::new("listApiKeys", "get", "/v1/keys", Admin, Own(200)),
        Case::new("createApiKey", "post", "/v1/keys", Admin, Own(201))
            .body(|_, _| Body::Json(json!({"name": "b-ci", "scopes": ["read"]}))),
        Case::new(
            "revokeApiKey",
            "delete",
            "/v1/keys/{prefix}",
            Admin,
            Hidden(404),
        )
        .target(Key),
        // A's revoked key: revoking it again as A would be 204.
        Case::new(
            "revokeApiKey",
            "delete",
            "/v1/keys/{prefix}",
            Admin,
            Hidden(404),
        )
        .target(RevokedKey),
        Case::new("getQueueStats", "get", "/v1/queue", Read, Own(200)).check(nothing_queued),
        // The fleet view is the whole service's by design; it still names
        // nothing of A's.
        Case::new("getQueueStats", "get", "/v1/queue", Admin, Own(200))
            .query("fleet=true")
            .check(|stats| {
                if stats["fleet"] == json!(true) {
                    Ok(())
                } else {
                    Err(format!("not the fleet view: {stats}"))
                }
            }),
    ]
}

/// B has no job: every list of jobs is empty.
fn no_items(page: &Value) -> Result<(), String> {
    if page["items"] == json!([]) {
        Ok(())
    } else {
        Err(format!("B has no job, yet: {page}"))
    }
}

/// B's own queue numbers: B has no job.
fn nothing_queued(stats: &Value) -> Result<(), String> {
    let counts = [
        "queued",
        "waiting",
        "running",
        "runnable",
        "backlog",
        "oldest_queued_ms",
        "succeeded_last_minute",
        "failed_last_minute",
        "cancelled_last_minute",
    ];
    if stats["fleet"] == json!(false)
        && stats["workers"] == json!([])
        && stats.get("scaling").is_none_or(Value::is_null)
        && counts.iter().all(|c| stats[c] == json!(0))
    {
        Ok(())
    } else {
        Err(format!("B has no job, yet: {stats}"))
    }
}

/// An operation as the committed spec declares it.
struct Operation {
    method: String,
    path: String,
    id: String,
    path_params: Vec<String>,
    /// Query parameters and whether each is required.
    query_params: Vec<(String, bool)>,
    /// The first media type of the request body, if it has one.
    body_type: Option<String>,
    /// The statuses it documents.
    responses: BTreeSet<u16>,
}

/// Every operation of the committed `openapi.json`.
fn spec_operations() -> Vec<Operation> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.json");
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let methods = ["get", "put", "post", "delete", "patch", "head", "options"];
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !methods.contains(&method.as_str()) {
                continue;
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let named = |place: &str| {
                params
                    .iter()
                    .filter(|p| p["in"] == place)
                    .map(|p| {
                        (
                            p["name"].as_str().unwrap().to_owned(),
                            p["required"] == json!(true),
                        )
                    })
                    .collect::<Vec<_>>()
            };
            out.push(Operation {
                method: method.clone(),
                path: path.clone(),
                id: op["operationId"].as_str().unwrap_or_default().to_owned(),
                path_params: named("path").into_iter().map(|(n, _)| n).collect(),
                query_params: named("query"),
                body_type: op["requestBody"]["content"]
                    .as_object()
                    .and_then(|c| c.keys().next().cloned()),
                responses: op["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .filter_map(|s| s.parse().ok())
                    .collect(),
            });
        }
    }
    out
}

/// A request ready to send.
struct Built {
    method: reqwest::Method,
    /// The path and query.
    path: String,
    body: Option<(String, Vec<u8>)>,
}

/// The request `case` describes, for `op`, naming `value` where the case
/// names its target; an error says where the table and the spec disagree.
fn build(case: &Case, op: &Operation, fixture: &Fixture, value: &str) -> Result<Built, String> {
    let mut path = op.path.clone();
    for param in &op.path_params {
        if case.target.path_param() != Some(param.as_str()) {
            return Err(format!(
                "the spec's path parameter {{{param}}}, which {:?} does not fill",
                case.target
            ));
        }
        path = path.replace(&format!("{{{param}}}"), value);
    }
    let query = case.query.replace("{target}", value);
    let given: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split('=').next().unwrap_or_default())
        .collect();
    for name in &given {
        if !op.query_params.iter().any(|(n, _)| n == name) {
            return Err(format!("query parameter {name:?} is not in the spec"));
        }
    }
    for (name, required) in &op.query_params {
        if *required && !given.contains(&name.as_str()) {
            return Err(format!("the required query parameter {name:?} is missing"));
        }
    }
    if !query.is_empty() {
        path = format!("{path}?{query}");
    }
    let body = match ((case.body)(fixture, value), &op.body_type) {
        (Body::Empty, None) => None,
        (Body::Csv(csv), Some(media)) if !media.contains("json") => {
            Some((media.clone(), csv.as_bytes().to_vec()))
        }
        (Body::Json(json), Some(media)) if media.contains("json") => {
            Some((media.clone(), serde_json::to_vec(&json).unwrap()))
        }
        (_, media) => {
            return Err(format!(
                "the table's body does not fit the spec's request body {media:?}"
            ));
        }
    };
    // A request aimed at a resource names it (in its path, query or body).
    let named = path.contains(value)
        || body
            .as_ref()
            .is_some_and(|(_, bytes)| String::from_utf8_lossy(bytes).contains(value));
    if case.target != Target::Nothing && !named {
        return Err(format!(
            "the request does not name its target {:?}",
            case.target
        ));
    }
    Ok(Built {
        method: reqwest::Method::from_bytes(op.method.to_uppercase().as_bytes()).unwrap(),
        path,
        body,
    })
}

/// An answer, as read.
struct Answer {
    status: u16,
    challenge: Option<String>,
    content_type: String,
    text: String,
}

impl Answer {
    /// The body with `value` replaced by a placeholder, as JSON when it is.
    fn naming(&self, value: &str) -> Value {
        let text = if value.is_empty() {
            self.text.clone()
        } else {
            self.text.replace(value, "TARGET")
        };
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn brief(&self) -> String {
        let mut text = self.text.clone();
        if text.len() > 300 {
            let mut end = 300;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        format!("{} {:?} {}", self.status, self.challenge, text)
    }
}

/// Sends `built` with `http`'s key (or none).
async fn send(http: &Http, built: &Built) -> Answer {
    let mut request = http.request(built.method.clone(), &built.path);
    if let Some((media, bytes)) = &built.body {
        request = request.header("content-type", media).body(bytes.clone());
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (challenge, content_type) = (
        header("www-authenticate"),
        header("content-type").unwrap_or_default(),
    );
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    Answer {
        status,
        challenge,
        content_type,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// `GET path` with `http`'s key, which must answer 200; the JSON body.
async fn get_ok(http: &Http, path: &str) -> Value {
    let (status, body) = Http::send(http.get(path)).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// Everything of A's the API shows A: datasets with their parts, jobs
/// (states, attempts, results) and their result rows, keys (prefixes,
/// scopes, expiry and revocation), and the queue numbers. What moves with
/// the clock alone is left out: a queued job's `queue_wait_ms`, the queue's
/// oldest age and last-minute counts, and keys' `last_used_at` (written by
/// A's own requests, this snapshot's among them).
async fn snapshot(a: &Http) -> Value {
    let datasets = get_ok(a, "/v1/datasets?limit=1000").await;
    assert!(datasets.get("next_cursor").is_none(), "{datasets}");
    let mut details = Vec::new();
    for dataset in datasets["items"].as_array().unwrap() {
        let id = dataset["id"].as_str().unwrap();
        details.push(get_ok(a, &format!("/v1/datasets/{id}")).await);
    }
    let mut jobs = get_ok(a, "/v1/jobs?limit=1000").await;
    assert!(jobs.get("next_cursor").is_none(), "{jobs}");
    let mut results = BTreeMap::new();
    for job in jobs["items"].as_array_mut().unwrap() {
        let id = job["id"].as_str().unwrap().to_owned();
        match job["state"].as_str().unwrap() {
            "queued" => {
                job.as_object_mut().unwrap().remove("queue_wait_ms");
            }
            "succeeded" => {
                let page = get_ok(a, &format!("/v1/jobs/{id}/result?limit=10000")).await;
                results.insert(id, page);
            }
            _ => {}
        }
    }
    let mut keys = get_ok(a, "/v1/keys").await;
    for key in keys["items"].as_array_mut().unwrap() {
        key.as_object_mut().unwrap().remove("last_used_at");
    }
    let stats = get_ok(a, "/v1/queue").await;
    let queue: BTreeMap<&str, Value> = ["fleet", "queued", "waiting", "running", "runnable"]
        .into_iter()
        .chain(["backlog"])
        .map(|k| (k, stats[k].clone()))
        .collect();
    json!({
        "datasets": details,
        "jobs": jobs["items"],
        "results": results,
        "keys": keys["items"],
        "queue": queue,
    })
}

/// The files under the store's `tenants/<tenant>/`, with their bytes.
fn files_of(app: &App, tenant: crunch_queue::TenantId) -> BTreeMap<String, Vec<u8>> {
    let root = app.store_dir.path();
    let prefix = format!("tenants/{tenant}/");
    app.stored_files()
        .into_iter()
        .map(|p| {
            let relative = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            (relative, p)
        })
        .filter(|(relative, _)| relative.starts_with(&prefix))
        .map(|(relative, p)| (relative, std::fs::read(p).unwrap()))
        .collect()
}

/// What no answer to B may contain: A's ids, part ids, job ids, key
/// prefixes and secrets, tenant id and row values.
fn a_tokens(app: &App, snapshot: &Value, read_only: &str) -> Vec<String> {
    let mut tokens: Vec<String> = A_WORDS.iter().map(|w| (*w).to_owned()).collect();
    tokens.extend([
        app.tenant.to_string(),
        app.key.clone(),
        read_only.to_owned(),
    ]);
    for detail in snapshot["datasets"].as_array().unwrap() {
        tokens.push(detail["dataset"]["id"].as_str().unwrap().to_owned());
        for part in detail["parts"].as_array().unwrap() {
            tokens.push(part["id"].as_str().unwrap().to_owned());
        }
    }
    for job in snapshot["jobs"].as_array().unwrap() {
        tokens.push(job["id"].as_str().unwrap().to_owned());
    }
    for key in snapshot["keys"].as_array().unwrap() {
        tokens.push(key["prefix"].as_str().unwrap().to_owned());
    }
    tokens
}

/// The keys the test calls with, besides A's all-scopes one.
struct Keys {
    /// A's read-only key.
    read_only: String,
    /// A's key revoked through the key API.
    revoked: String,
    /// B's all-scopes key.
    b: String,
    /// B's tenant.
    b_tenant: crunch_queue::TenantId,
}

/// Sets up A's resources (see the module's doc) and B; returns the
/// fixture and the keys.
async fn set_up(app: &App) -> (Fixture, Keys) {
    // A worker of the test's own, stopped before the job that must stay
    // queued is submitted.
    let (stop_worker, stopped) = watch::channel(false);
    let engine = Engine::new(EngineConfig {
        threads: 2,
        ..EngineConfig::default()
    })
    .unwrap();
    let worker = tokio::spawn(run_worker(
        app.state.queue.clone(),
        Deps {
            store: app.state.store.clone(),
            engine,
        },
        WorkerOptions {
            queue: WorkerConfig::new("isolation-worker")
                .kinds([ANALYSIS_KIND])
                .heartbeat_interval(Duration::from_millis(200))
                .poll_interval(Duration::from_millis(200)),
            grace: Duration::from_secs(5),
        },
        async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|s| *s).await;
        },
    ));

    // A dataset of two parts: an upload and an append.
    let dataset = app.dataset("sales", A_UPLOAD).await;
    let (status, part) = Http::send(
        app.http
            .post(&format!("/v1/datasets/{dataset}/parts"))
            .header("content-type", "text/csv")
            .body(A_APPEND),
    )
    .await;
    assert_eq!(status, 201, "{part}");
    let detail = get_ok(&app.http, &format!("/v1/datasets/{dataset}")).await;
    assert_eq!(
        (
            detail["dataset"]["rows"].clone(),
            detail["dataset"]["parts"].clone()
        ),
        (json!(3), json!(2)),
        "{detail}"
    );
    let first_part = detail["parts"][0]["id"].as_str().unwrap();
    let part_file = app
        .store_dir
        .path()
        .join(format!(
            "tenants/{}/datasets/{dataset}/parts/{first_part}.parquet",
            app.tenant
        ))
        .to_string_lossy()
        .into_owned();
    assert!(Path::new(&part_file).is_file(), "{part_file}");

    // A job that succeeds, and a batch, run by the worker; waited for by
    // long-polls.
    let succeeded = app
        .run(
            json!([{"table": "sales", "dataset": dataset}]),
            json!({"type": "sql", "query": "SELECT region, amount FROM sales ORDER BY region"}),
        )
        .await;
    assert_eq!(succeeded["state"], "succeeded", "{succeeded}");
    let succeeded_job = succeeded["id"].as_str().unwrap().to_owned();
    let rows = app.rows(&succeeded_job).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    let (status, batch) = app
        .post(
            "/v1/job-batches",
            json!({"jobs": [
                job_on(&dataset, "SELECT count(*) AS n FROM t"),
                {"inputs": [{"table": "t", "dataset": dataset}],
                 "analysis": {"type": "summary", "table": "t"},
                 "idempotency_key": "a-nightly"},
            ]}),
        )
        .await;
    assert_eq!(status, 201, "{batch}");
    for job in batch["jobs"].as_array().unwrap() {
        let done = app.finished(job["id"].as_str().unwrap()).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
    stop_worker.send(true).unwrap();
    worker.await.unwrap().unwrap();

    // A job that stays queued: no worker runs any more.
    let (status, queued) = app
        .post(
            "/v1/jobs",
            job_on(&dataset, "SELECT max(amount) AS top FROM t"),
        )
        .await;
    assert_eq!(
        (status, queued["state"].clone()),
        (201, json!("queued")),
        "{queued}"
    );
    let queued_job = queued["id"].as_str().unwrap().to_owned();
    let stats = get_ok(&app.http, "/v1/queue").await;
    assert_eq!(stats["queued"], 1, "{stats}");

    // Keys made through the key API: a live one, a revoked one, and the
    // read-only key the test calls with.
    let mut created = Vec::new();
    for (name, scopes) in [
        ("ci", json!(["read", "write"])),
        ("old", json!(["read"])),
        ("reader", json!(["read"])),
    ] {
        let (status, key) = app
            .post("/v1/keys", json!({"name": name, "scopes": scopes}))
            .await;
        assert_eq!(status, 201, "{key}");
        created.push(key);
    }
    let prefix = |key: &Value| key["key"]["prefix"].as_str().unwrap().to_owned();
    let revoked_key = prefix(&created[1]);
    let (status, _) = Http::send(app.http.delete(&format!("/v1/keys/{revoked_key}"))).await;
    assert_eq!(status, 204);
    let secret = |key: &Value| key["secret"].as_str().unwrap().to_owned();

    // B: its own tenant, key and dataset.
    let (tenant_b, b_key) = app.tenant_with_key("tenant-b", "read,write,admin").await;
    assert_ne!(tenant_b, app.tenant);
    let (status, b_dataset) = Http::send(
        app.http
            .with_key(&b_key)
            .post("/v1/datasets?name=b-own")
            .header("content-type", "text/csv")
            .body(B_ROWS),
    )
    .await;
    assert_eq!(status, 201, "{b_dataset}");

    let fixture = Fixture {
        dataset,
        part_file,
        succeeded_job,
        queued_job,
        key: prefix(&created[0]),
        revoked_key,
        b_dataset: b_dataset["dataset"]["id"].as_str().unwrap().to_owned(),
    };
    let keys = Keys {
        read_only: secret(&created[2]),
        revoked: secret(&created[1]),
        b: b_key,
        b_tenant: tenant_b,
    };
    (fixture, keys)
}

/// Whether `answer` is a 401 problem with the challenge for `error`.
fn unauthorized(answer: &Answer, error: Option<&str>) -> bool {
    let expected = match error {
        None => "Bearer realm=\"crunch\"".to_owned(),
        Some(error) => format!("Bearer realm=\"crunch\", error=\"{error}\""),
    };
    answer.status == 401
        && answer.challenge.as_deref() == Some(expected.as_str())
        && answer.content_type == "application/problem+json"
        && answer.json()["status"] == 401
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_of_the_spec_keeps_tenants_apart() {
    let app = spawn_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let (fixture, keys) = set_up(&app).await;
    let a = app.http.clone();
    let b = a.with_key(&keys.b);
    let reader = a.with_key(&keys.read_only);
    let revoked = a.with_key(&keys.revoked);
    let unknown = a.with_key(&auth::keys::mint().unwrap().secret);
    let without_key = [
        ("no key", a.anonymous(), None),
        ("an unknown key", unknown, Some("invalid_token")),
        ("a revoked key of A", revoked, Some("invalid_token")),
    ];

    let before = snapshot(&a).await;
    let files_before = files_of(&app, app.tenant);
    // The dataset's two parts and the three results, at least.
    assert!(files_before.len() >= 2 + 3, "{:?}", files_before.keys());
    let all_files_before: BTreeSet<_> = app.stored_files().into_iter().collect();
    let tokens = a_tokens(&app, &before, &keys.read_only);

    let operations = spec_operations();
    let cases = cases();
    let mut failures = Vec::new();

    // The table and the spec name the same operations.
    for op in &operations {
        if !cases.iter().any(|c| c.operation == op.id) {
            failures.push(format!(
                "{} ({} {}): no case in the table",
                op.id, op.method, op.path
            ));
        }
    }
    // The spec's open operations are the two probes (`/docs` and
    // `/openapi.json` are not operations of the spec).
    let open: BTreeSet<&str> = operations
        .iter()
        .filter(|op| !op.path.starts_with("/v1/"))
        .map(|op| op.path.as_str())
        .collect();
    if open != BTreeSet::from(["/healthz", "/readyz"]) {
        failures.push(format!("the spec's operations outside /v1: {open:?}"));
    }

    let mut b_created = Vec::new();
    for case in &cases {
        let Some(op) = operations.iter().find(|op| op.id == case.operation) else {
            failures.push(format!("{}: in the table, not in the spec", case.operation));
            continue;
        };
        if (op.method.as_str(), op.path.as_str()) != (case.method, case.path) {
            failures.push(format!(
                "{}: the spec has it at {} {}, the table at {} {}",
                op.id, op.method, op.path, case.method, case.path
            ));
            continue;
        }
        let value = case.target.of(&fixture);
        let built = match build(case, op, &fixture, &value) {
            Ok(built) => built,
            Err(e) => {
                failures.push(format!("{}: {e}", op.id));
                continue;
            }
        };
        let label = format!("{} {} {}", op.id, built.method, built.path);
        let mut record = |who: &str, answer: &Answer, ok: bool, why: &str| {
            if !op.responses.contains(&answer.status) {
                failures.push(format!(
                    "{label} [{who}]: status {} is not documented",
                    answer.status
                ));
            }
            if !ok {
                failures.push(format!("{label} [{who}]: {why}: {}", answer.brief()));
            }
        };

        let Access::Key { needs, other } = case.access else {
            let answer = send(&a.anonymous(), &built).await;
            record(
                "no key",
                &answer,
                answer.success(),
                "an open operation, not 2xx",
            );
            continue;
        };

        // Without a valid key: 401 with a challenge, never 2xx.
        for (who, http, error) in &without_key {
            let answer = send(http, &built).await;
            record(who, &answer, unauthorized(&answer, *error), "expected 401");
        }

        // A's read-only key: the GETs that need `read` work; the rest 403.
        let answer = send(&reader, &built).await;
        if op.method == "get" && needs == Scope::Read {
            record(
                "A's read-only key",
                &answer,
                answer.success(),
                "expected 2xx",
            );
        } else {
            let challenge =
                format!("Bearer realm=\"crunch\", error=\"insufficient_scope\", scope=\"{needs}\"");
            let ok = answer.status == 403
                && answer.challenge.as_deref() == Some(challenge.as_str())
                && answer.content_type == "application/problem+json";
            record("A's read-only key", &answer, ok, "expected 403");
        }

        // B's key.
        let answer = send(&b, &built).await;
        match other {
            Other::Hidden(status) => {
                let missing = case.target.missing(&fixture);
                let twin = build(case, op, &fixture, &missing).unwrap();
                let nowhere = send(&b, &twin).await;
                let ok = answer.status == status
                    && answer.content_type == "application/problem+json"
                    && (
                        nowhere.status,
                        &nowhere.content_type,
                        nowhere.naming(&missing),
                    ) == (answer.status, &answer.content_type, answer.naming(&value));
                record(
                    "B's key",
                    &answer,
                    ok,
                    &format!(
                        "expected {status}, as for {} which names nothing: {}",
                        twin.path,
                        nowhere.brief()
                    ),
                );
            }
            Other::Own(status) => {
                let leaked: Vec<&String> = tokens
                    .iter()
                    .filter(|t| answer.text.contains(t.as_str()))
                    .collect();
                let checked = match (answer.status == status, case.check) {
                    (false, _) => Err(format!("expected {status}")),
                    (true, Some(check)) => check(&answer.json()),
                    (true, None) => Ok(()),
                };
                let why = match (&checked, leaked.is_empty()) {
                    (Err(e), _) => e.clone(),
                    (Ok(()), false) => format!("names A's {leaked:?}"),
                    (Ok(()), true) => String::new(),
                };
                record(
                    "B's key",
                    &answer,
                    checked.is_ok() && leaked.is_empty(),
                    &why,
                );
                if answer.success() && built.method != reqwest::Method::GET {
                    b_created.push((op.id.clone(), answer.json()));
                }
            }
        }
    }

    // Operations the table misses still answer nothing without a key.
    for op in operations.iter().filter(|op| op.path.starts_with("/v1/")) {
        if cases.iter().any(|c| c.operation == op.id) {
            continue;
        }
        let mut path = op.path.clone();
        for param in &op.path_params {
            path = path.replace(&format!("{{{param}}}"), &uuid::Uuid::now_v7().to_string());
        }
        let method = reqwest::Method::from_bytes(op.method.to_uppercase().as_bytes()).unwrap();
        let built = Built {
            method,
            path,
            body: None,
        };
        let answer = send(&a.anonymous(), &built).await;
        if !unauthorized(&answer, None) {
            failures.push(format!("{} without a key: {}", op.id, answer.brief()));
        }
    }
    // The open paths the spec does not list.
    for path in OPEN_UNLISTED {
        assert!(
            !operations.iter().any(|op| op.path == path),
            "{path} is in the spec"
        );
        let (status, _) = Http::send(a.anonymous().get(path)).await;
        if !(200..300).contains(&status) {
            failures.push(format!("GET {path} without a key: {status}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    // A's things are as they were: nothing of B's calls changed them or
    // shows among them.
    let after = snapshot(&a).await;
    assert!(
        before == after,
        "A's state changed:\nbefore: {before:#}\nafter: {after:#}"
    );
    assert_eq!(files_of(&app, app.tenant), files_before, "A's stored files");
    let b_files = format!("tenants/{}/", keys.b_tenant);
    for file in app.stored_files() {
        if !all_files_before.contains(&file) {
            let relative = file.strip_prefix(app.store_dir.path()).unwrap();
            assert!(
                relative.to_string_lossy().starts_with(&b_files),
                "B's call stored {relative:?} outside B's files"
            );
        }
    }
    // What B created is B's: A does not see it.
    let kinds: Vec<&str> = b_created.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(kinds, ["createDataset", "createApiKey"], "{b_created:?}");
    for (id, created) in &b_created {
        match id.as_str() {
            "createDataset" => {
                let theirs = created["dataset"]["id"].as_str().unwrap();
                let (status, _) = app.get(&format!("/v1/datasets/{theirs}")).await;
                assert_eq!(status, 404, "A sees B's dataset");
                let (status, _) = Http::send(b.get(&format!("/v1/datasets/{theirs}"))).await;
                assert_eq!(status, 200, "B's dataset is B's");
            }
            _ => {
                let prefix = created["key"]["prefix"].as_str().unwrap();
                let keys = get_ok(&b, "/v1/keys").await;
                assert!(keys.to_string().contains(prefix), "{keys}");
                assert!(!after["keys"].to_string().contains(prefix));
            }
        }
    }
}
