//! Hostile and malformed input through the real HTTP API. Every case is
//! answered with its exact 4xx status, which the committed `openapi.json`
//! documents for that operation, and a problem body whose `status` is that
//! status and whose `detail` says what is wrong; and nothing is stored: the
//! datasets, the jobs and the files of the store are as they were.

#![allow(clippy::unwrap_used)]

use std::{
    io::{Read, Write},
    sync::Arc,
};

use crate::common::*;
use datafusion::{
    arrow::{
        array::{Int64Array, RecordBatch},
        datatypes::{DataType, Field, Schema},
    },
    parquet::arrow::ArrowWriter,
};
use serde_json::{Value, json};

/// The committed spec, to check that every answer is a documented one.
fn spec() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// One request and what it must be answered with.
struct Case {
    /// For failure messages.
    name: String,
    method: &'static str,
    /// The operation's path as the spec writes it (`/v1/jobs/{id}`).
    operation: &'static str,
    /// The path and query actually requested.
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    /// Lowercase text the problem's `detail` must contain.
    detail: Vec<String>,
}

impl Case {
    fn new(name: impl Into<String>, method: &'static str, operation: &'static str) -> Case {
        Case {
            name: name.into(),
            method,
            operation,
            path: operation.to_owned(),
            content_type: None,
            body: Vec::new(),
            status: 400,
            detail: Vec::new(),
        }
    }

    fn path(mut self, path: impl Into<String>) -> Case {
        self.path = path.into();
        self
    }

    fn body(mut self, content_type: &'static str, body: impl Into<Vec<u8>>) -> Case {
        self.content_type = Some(content_type);
        self.body = body.into();
        self
    }

    fn json(self, body: &Value) -> Case {
        self.body("application/json", serde_json::to_vec(body).unwrap())
    }

    fn expect(mut self, status: u16, detail: &[&str]) -> Case {
        self.status = status;
        self.detail = detail.iter().map(|d| d.to_lowercase()).collect();
        self
    }
}

/// A submit of one job.
fn submit(name: impl Into<String>, job: Value) -> Case {
    Case::new(name, "POST", "/v1/jobs").json(&job)
}

/// The same job submitted alone and as a batch of one, each to be answered
/// `status` with `detail`: a batch must refuse what a submit refuses.
fn alone_and_batched(name: &str, job: &Value, status: u16, detail: &[&str]) -> [Case; 2] {
    [
        submit(format!("job, {name}"), job.clone()).expect(status, detail),
        Case::new(format!("batch, {name}"), "POST", "/v1/job-batches")
            .json(&json!({"jobs": [job]}))
            .expect(status, detail),
    ]
}

/// A job over `inputs` running `analysis`.
fn job(inputs: Value, analysis: Value) -> Value {
    json!({"inputs": inputs, "analysis": analysis})
}

/// An SQL job over `inputs`.
fn sql(inputs: &Value, query: &str) -> Value {
    job(inputs.clone(), json!({"type": "sql", "query": query}))
}

/// What the service holds: it must not change under hostile input.
#[derive(Debug, PartialEq)]
struct Holdings {
    datasets: Value,
    jobs: Value,
    files: Vec<std::path::PathBuf>,
}

async fn holdings(app: &App) -> Holdings {
    let (status, datasets) = app.get("/v1/datasets?limit=1000").await;
    assert_eq!(status, 200, "{datasets}");
    let (status, jobs) = app.get("/v1/jobs?limit=1000").await;
    assert_eq!(status, 200, "{jobs}");
    let mut files = app.stored_files();
    files.sort();
    Holdings {
        datasets: datasets["items"].clone(),
        jobs: jobs["items"].clone(),
        files,
    }
}

/// Sends every case and checks its answer, then that nothing was stored.
async fn check(app: &App, cases: Vec<Case>) {
    assert!(!cases.is_empty());
    let spec = spec();
    let before = holdings(app).await;
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(why) = answer(app, &spec, case).await {
            failures.push(format!("{}: {why}", case.name));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_eq!(holdings(app).await, before, "something was stored");
}

async fn answer(app: &App, spec: &Value, case: &Case) -> Result<(), String> {
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
    let mut request = app.http.request(method, &case.path);
    if let Some(content_type) = case.content_type {
        request = request.header("content-type", content_type);
    }
    let response = request
        .body(case.body.clone())
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // A body refused before its end stays on the connection: the answer
    // must close it, or the client's next request on it would fail.
    let closes = response
        .headers()
        .get("connection")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    let text = response.text().await.unwrap_or_default();
    if status == 413 && !closes {
        return Err(format!("a 413 without `connection: close`: {text}"));
    }
    problem(spec, case, status, &content_type, &text)
}

/// Whether an answer is the case's documented problem.
fn problem(
    spec: &Value,
    case: &Case,
    status: u16,
    content_type: &str,
    text: &str,
) -> Result<(), String> {
    if status != case.status {
        return Err(format!("answered {status}, not {}: {text}", case.status));
    }
    if content_type != "application/problem+json" {
        return Err(format!("content type {content_type:?}: {text}"));
    }
    let body: Value = serde_json::from_str(text).map_err(|e| format!("{e}: {text}"))?;
    if body["status"] != status {
        return Err(format!("body status is not {status}: {body}"));
    }
    let detail = body["detail"].as_str().unwrap_or_default().to_lowercase();
    for needle in &case.detail {
        if !detail.contains(needle.as_str()) {
            return Err(format!("detail lacks {needle:?}: {body}"));
        }
    }
    let responses = &spec["paths"][case.operation][case.method.to_lowercase()]["responses"];
    if responses[status.to_string()]["content"]
        .get("application/problem+json")
        .is_none()
    {
        return Err(format!(
            "{status} is not documented for {} {}",
            case.method, case.operation
        ));
    }
    Ok(())
}

/// A small valid Parquet file: one int64 column `n`.
fn parquet_file() -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
    )
    .unwrap();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    out
}

fn no_workers() -> Options {
    Options {
        workers: false,
        ..Options::default()
    }
}

/// An upload of a new dataset.
fn upload(name: &str, query: &str, content_type: &'static str, body: impl Into<Vec<u8>>) -> Case {
    Case::new(name, "POST", "/v1/datasets")
        .path(format!("/v1/datasets?name=hostile&{query}"))
        .body(content_type, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_mistyped_and_wrongly_encoded_uploads_name_the_fault() {
    let app = spawn_with(no_workers()).await;
    let existing = app.dataset("numbers", "n\n1\n2\n").await;
    let parquet = parquet_file();
    let append = |name: &str, content_type: &'static str, body: &[u8]| {
        Case::new(name, "POST", "/v1/datasets/{id}/parts")
            .path(format!("/v1/datasets/{existing}/parts"))
            .body(content_type, body.to_vec())
    };
    let cases = vec![
        upload("csv, unterminated quote", "", "text/csv", "a,b\n1,\"open\n").expect(422, &["line"]),
        upload(
            "csv, text in an int64 column",
            "schema=a:int64,b:string",
            "text/csv",
            "a,b\n1,x\nnope,y\n",
        )
        .expect(422, &["line 3", "column a"]),
        upload(
            "csv, a float in an int64 column",
            "schema=a:int64",
            "text/csv",
            "a\n1\n2.5\n",
        )
        .expect(422, &["line 3", "column a"]),
        upload(
            "csv, a bad date",
            "schema=d:date",
            "text/csv",
            "d\n2024-01-01\n2024-13-45\n",
        )
        .expect(422, &["line 3", "column d"]),
        upload("csv, too many fields", "", "text/csv", "a,b\n1,2\n3,4,5\n")
            .expect(422, &["line 3"]),
        upload(
            "csv, Latin-1 bytes",
            "",
            "text/csv",
            b"a,b\n1,x\n2,caf\xe9\n".to_vec(),
        )
        .expect(422, &["line 3"]),
        upload(
            "csv, UTF-16",
            "",
            "text/csv",
            b"\xff\xfea\x00,\x00b\x00\n\x001\x00,\x002\x00\n\x00".to_vec(),
        )
        .expect(422, &[]),
        upload("csv, empty body", "", "text/csv", "").expect(422, &[]),
        upload("csv, header only", "", "text/csv", "a,b\n").expect(422, &[]),
        upload(
            "ndjson, truncated object",
            "",
            "application/x-ndjson",
            "{\"a\": 1}\n{\"a\": 2",
        )
        .expect(422, &["line 2"]),
        upload(
            "ndjson, not an object",
            "",
            "application/x-ndjson",
            "{\"a\": 1}\n[1, 2]\n",
        )
        .expect(422, &["line 2"]),
        upload(
            "ndjson, text in an int64 field",
            "schema=a:int64",
            "application/x-ndjson",
            "{\"a\": 1}\n{\"a\": \"x\"}\n",
        )
        .expect(422, &["line 2", "column a"]),
        upload(
            "ndjson, a field not declared",
            "schema=a:int64",
            "application/x-ndjson",
            "{\"a\": 1}\n{\"a\": 2, \"zz\": 3}\n",
        )
        .expect(422, &["line 2", "zz"]),
        upload(
            "ndjson, invalid UTF-8",
            "",
            "application/x-ndjson",
            b"{\"a\": \"x\"}\n{\"a\": \"\xff\xfe\"}\n".to_vec(),
        )
        .expect(422, &["line 2"]),
        upload(
            "parquet, truncated",
            "",
            "application/vnd.apache.parquet",
            parquet[..parquet.len() / 2].to_vec(),
        )
        .expect(422, &[]),
        upload(
            "parquet, not parquet",
            "",
            "application/vnd.apache.parquet",
            "n\n1\n2\n",
        )
        .expect(422, &[]),
        upload(
            "parquet, magic bytes around garbage",
            "",
            "application/vnd.apache.parquet",
            b"PAR1garbage-garbagePAR1".to_vec(),
        )
        .expect(422, &[]),
        upload("parquet, empty", "", "application/vnd.apache.parquet", "").expect(422, &[]),
        append("append, text in an int64 column", "text/csv", b"n\n3\nx\n")
            .expect(422, &["line 3", "column n"]),
        append("append, other columns", "text/csv", b"m\n3\n").expect(422, &["schema"]),
        append(
            "append, truncated parquet",
            "application/vnd.apache.parquet",
            &parquet[..parquet.len() - 10],
        )
        .expect(422, &[]),
        upload(
            "bad declared schema",
            "schema=a:int128",
            "text/csv",
            "a\n1\n",
        )
        .expect(400, &["int128"]),
        upload(
            "two-character delimiter",
            "delimiter=%3B%3B",
            "text/csv",
            "a\n1\n",
        )
        .expect(400, &["delimiter"]),
        upload("empty name", "", "text/csv", "a\n1\n")
            .path("/v1/datasets?name=")
            .expect(400, &[]),
    ];
    check(&app, cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_longer_than_the_limit_is_refused_by_line() {
    // The test server allows lines of 64 KiB.
    let app = spawn_with(no_workers()).await;
    let long = "x".repeat(70 * 1024);
    let cases = vec![
        upload(
            "csv",
            "",
            "text/csv",
            format!("a,b\n1,short\n2,{long}\n3,short\n"),
        )
        .expect(422, &["line 3", "longer than"]),
        upload(
            "csv, no newline at all",
            "",
            "text/csv",
            format!("a,{long}"),
        )
        .expect(422, &["line 1", "longer than"]),
        upload(
            "ndjson",
            "",
            "application/x-ndjson",
            format!("{{\"a\": 1}}\n{{\"a\": \"{long}\"}}\n"),
        )
        .expect(422, &["line 2", "longer than"]),
    ];
    check(&app, cases).await;
}

/// Sends a request with a chunked body (no Content-Length, so the size is
/// known only by reading it) and `key` over a raw connection; returns the
/// status, content type and body of the answer.
fn send_chunked(
    base: &str,
    key: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String, String) {
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: {content_type}\r\n\
         authorization: Bearer {key}\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    for chunk in body.chunks(64 * 1024) {
        // The server may answer and close before the whole body is sent.
        if stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .and_then(|()| stream.write_all(chunk))
            .and_then(|()| stream.write_all(b"\r\n"))
            .is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    // A chunked answer: the problem is the line that is a JSON object.
    let body = body
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or(body)
        .to_owned();
    (status, content_type, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_size_limits_are_413() {
    let app = spawn_with(Options {
        max_upload_bytes: 1024,
        ..no_workers()
    })
    .await;
    let existing = app.dataset("numbers", "n\n1\n2\n").await;
    let csv = format!("n\n{}", "12345\n".repeat(400));
    let ndjson = "{\"n\": 12345}\n".repeat(200);
    let parquet = {
        let mut big = parquet_file();
        big.resize(4096, 0);
        big
    };
    // A job that would be valid but for its size: its query carries a
    // 1 MiB comment.
    let huge_query = format!("SELECT 1 -- {}", "x".repeat(1 << 20));
    let inputs = json!([{"table": "n", "dataset": existing}]);
    let over = "the JSON body is over the limit of 1048576 bytes";
    let cases = vec![
        upload("csv", "", "text/csv", csv.clone()).expect(413, &["limit of 1024 bytes"]),
        upload("ndjson", "", "application/x-ndjson", ndjson).expect(413, &["limit of 1024 bytes"]),
        upload("parquet", "", "application/vnd.apache.parquet", parquet)
            .expect(413, &["limit of 1024 bytes"]),
        Case::new("append", "POST", "/v1/datasets/{id}/parts")
            .path(format!("/v1/datasets/{existing}/parts"))
            .body("text/csv", csv.clone())
            .expect(413, &["limit of 1024 bytes"]),
        submit("a job over 1 MiB", sql(&inputs, &huge_query)).expect(413, &[over]),
        Case::new("a batch over 1 MiB", "POST", "/v1/job-batches")
            .json(&json!({"jobs": [sql(&inputs, &huge_query)]}))
            .expect(413, &[over]),
    ];
    check(&app, cases).await;
    // A body read whole keeps the connection open.
    let kept = app
        .http
        .post("/v1/datasets?name=small")
        .header("content-type", "text/csv")
        .body("n\n1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.status(), 201);
    assert_eq!(kept.headers().get("connection"), None);

    // Without a Content-Length the limits hold while reading.
    let before = holdings(&app).await;
    let spec = spec();
    let chunked = [
        (
            upload("chunked csv", "", "text/csv", Vec::new()).expect(413, &["limit of 1024 bytes"]),
            csv.into_bytes(),
        ),
        (
            submit("chunked job", json!(null)).expect(413, &[over]),
            serde_json::to_vec(&sql(&inputs, &huge_query)).unwrap(),
        ),
    ];
    for (case, body) in chunked {
        let base = app.http.base().to_owned();
        let key = app.key.clone();
        let path = case.path.clone();
        let content_type = case.content_type.unwrap();
        let (status, content_type, text) = tokio::task::spawn_blocking(move || {
            send_chunked(&base, &key, &path, content_type, &body)
        })
        .await
        .unwrap();
        if let Err(why) = problem(&spec, &case, status, &content_type, &text) {
            panic!("{}: {why}", case.name);
        }
    }
    assert_eq!(holdings(&app).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_content_type_is_415() {
    let app = spawn_with(no_workers()).await;
    let existing = app.dataset("numbers", "n\n1\n2\n").await;
    let job = serde_json::to_vec(&sql(
        &json!([{"table": "n", "dataset": existing}]),
        "SELECT 1",
    ))
    .unwrap();
    let cases = vec![
        upload("xml upload", "", "application/xml", "<n>1</n>").expect(415, &[]),
        upload("json upload", "", "application/json", "{\"n\": 1}").expect(415, &[]),
        upload("no content type", "", "text/csv", "n\n1\n").expect(415, &[]),
        upload(
            "format says ndjson, body is csv",
            "format=ndjson",
            "text/csv",
            "n\n1\n",
        )
        .expect(415, &["disagree"]),
        upload(
            "format says parquet, body is ndjson",
            "format=parquet",
            "application/x-ndjson",
            "{\"n\": 1}\n",
        )
        .expect(415, &["disagree"]),
        Case::new("append as xml", "POST", "/v1/datasets/{id}/parts")
            .path(format!("/v1/datasets/{existing}/parts"))
            .body("application/xml", "<n>1</n>")
            .expect(415, &[]),
        Case::new("job as text", "POST", "/v1/jobs")
            .body("text/plain", job.clone())
            .expect(415, &[]),
        Case::new("job as csv", "POST", "/v1/jobs")
            .body("text/csv", job.clone())
            .expect(415, &[]),
        Case::new("job without a content type", "POST", "/v1/jobs")
            .body("text/csv", job.clone())
            .expect(415, &[]),
        Case::new("batch as form", "POST", "/v1/job-batches")
            .body("application/x-www-form-urlencoded", "jobs=1")
            .expect(415, &[]),
    ];
    // The "no content type" cases: a body with no content-type header.
    let cases = cases
        .into_iter()
        .map(|mut c| {
            if c.name.contains("no content type") || c.name.contains("without a content type") {
                c.content_type = None;
            }
            c
        })
        .collect();
    check(&app, cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_is_400() {
    let app = spawn_with(no_workers()).await;
    let existing = app.dataset("numbers", "n\n1\n2\n").await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", b"{\"inputs\": [".to_vec()),
        ("not json", b"SELECT 1".to_vec()),
        ("empty", Vec::new()),
        ("null", b"null".to_vec()),
        ("an array", b"[1, 2]".to_vec()),
        ("a string", b"\"job\"".to_vec()),
        ("trailing garbage", format!("{{\"inputs\": [{{\"table\": \"n\", \"dataset\": \"{existing}\"}}], \"analysis\": {{\"type\": \"sql\", \"query\": \"SELECT 1\"}}}} x").into_bytes()),
        ("invalid UTF-8", b"{\"inputs\": [], \"analysis\": {\"type\": \"sql\", \"query\": \"\xff\"}}".to_vec()),
        ("nested 100000 deep", deep.into_bytes()),
        ("missing analysis", b"{\"inputs\": []}".to_vec()),
        ("inputs not a list", b"{\"inputs\": \"n\", \"analysis\": {\"type\": \"sql\", \"query\": \"SELECT 1\"}}".to_vec()),
        ("dataset not a uuid", b"{\"inputs\": [{\"table\": \"n\", \"dataset\": \"nope\"}], \"analysis\": {\"type\": \"sql\", \"query\": \"SELECT 1\"}}".to_vec()),
        ("unknown analysis type", b"{\"inputs\": [], \"analysis\": {\"type\": \"shell\", \"command\": \"rm -rf /\"}}".to_vec()),
        ("analysis without a type", b"{\"inputs\": [], \"analysis\": {\"query\": \"SELECT 1\"}}".to_vec()),
        ("query a list", b"{\"inputs\": [], \"analysis\": {\"type\": \"sql\", \"query\": [1]}}".to_vec()),
    ];
    let mut cases = Vec::new();
    for (name, body) in bodies {
        cases.push(
            Case::new(format!("job, {name}"), "POST", "/v1/jobs")
                .body("application/json", body.clone())
                .expect(400, &[]),
        );
        let mut batch = b"{\"jobs\": [".to_vec();
        batch.extend_from_slice(&body);
        batch.extend_from_slice(b"]}");
        cases.push(
            Case::new(format!("batch, {name}"), "POST", "/v1/job-batches")
                .body("application/json", batch)
                .expect(400, &[]),
        );
    }
    // A number or a boolean where the spec says string is refused as such,
    // not read as its text.
    let inputs = json!([{"table": "n", "dataset": existing}]);
    let mistyped = [
        (
            "query a number",
            job(inputs.clone(), json!({"type": "sql", "query": 1})),
        ),
        (
            "table a boolean",
            job(
                json!([{"table": true, "dataset": existing}]),
                json!({"type": "sql", "query": "SELECT 1"}),
            ),
        ),
        (
            "group-by key a number",
            job(
                inputs.clone(),
                json!({"type": "group_by", "table": "n", "keys": [7], "aggregates": [{"function": "count"}]}),
            ),
        ),
        ("idempotency key a number", {
            let mut j = sql(&inputs, "SELECT n FROM n");
            j["idempotency_key"] = json!(42);
            j
        }),
    ];
    for (name, body) in mistyped {
        cases.extend(alone_and_batched(
            name,
            &body,
            400,
            &["expected input type \"string\""],
        ));
    }
    check(&app, cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_are_400_and_named() {
    let app = spawn_with(no_workers()).await;
    let existing = app.dataset("numbers", "n\n1\n2\n").await;
    let inputs = json!([{"table": "n", "dataset": existing}]);
    let group_by = |aggregate: Value, filter: Value| {
        job(
            inputs.clone(),
            json!({"type": "group_by", "table": "n", "keys": ["n"],
                   "aggregates": [aggregate], "filters": [filter]}),
        )
    };
    let count = json!({"function": "count"});
    let filter = json!({"column": "n", "op": "gt", "value": 0});
    let mut with_extra = sql(&inputs, "SELECT 1");
    with_extra["colour"] = json!("red");
    let jobs = [
        ("in the job", "colour", with_extra),
        (
            "in an input",
            "schema",
            sql(
                &json!([{"table": "n", "dataset": existing, "schema": "public"}]),
                "SELECT 1",
            ),
        ),
        (
            "in an sql analysis",
            "timeout",
            job(
                inputs.clone(),
                json!({"type": "sql", "query": "SELECT 1", "timeout": 5}),
            ),
        ),
        (
            "in a summary",
            "colums",
            job(
                inputs.clone(),
                json!({"type": "summary", "table": "n", "colums": ["n"]}),
            ),
        ),
        (
            "in a histogram",
            "bin",
            job(
                inputs.clone(),
                json!({"type": "histogram", "table": "n", "column": "n", "bins": 3, "bin": 4}),
            ),
        ),
        (
            "in an aggregate",
            "distinct",
            group_by(
                json!({"function": "count", "column": "n", "distinct": true}),
                filter.clone(),
            ),
        ),
        (
            "in a filter",
            "negate",
            group_by(
                count.clone(),
                json!({"column": "n", "op": "gt", "value": 0, "negate": true}),
            ),
        ),
    ];
    let mut cases = Vec::new();
    for (name, field, body) in jobs {
        cases.extend(alone_and_batched(name, &body, 400, &[field]));
    }
    cases.push(
        Case::new("batch, beside the jobs", "POST", "/v1/job-batches")
            .json(&json!({"jobs": [sql(&inputs, "SELECT 1")], "atomic": false}))
            .expect(400, &["atomic"]),
    );
    check(&app, cases).await;

    // The same jobs without the extra field are accepted: the 400s above
    // are the unknown fields' doing.
    for body in [
        sql(&inputs, "SELECT 1"),
        group_by(count, filter),
        job(
            inputs.clone(),
            json!({"type": "summary", "table": "n", "columns": ["n"]}),
        ),
    ] {
        let (status, answer) = app.post("/v1/jobs", body).await;
        assert_eq!(status, 201, "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_numbers_and_page_sizes_are_400() {
    let app = spawn_with(no_workers()).await;
    let existing = app.dataset("numbers", "n\n1\n2\n").await;
    let inputs = json!([{"table": "n", "dataset": existing}]);
    let job_id = uuid::Uuid::now_v7();
    let mut cases = Vec::new();
    for (operation, path) in [
        ("/v1/datasets", "/v1/datasets".to_owned()),
        ("/v1/jobs", "/v1/jobs".to_owned()),
        ("/v1/jobs/{id}/result", format!("/v1/jobs/{job_id}/result")),
    ] {
        for limit in ["0", "-1", "10001", "99999999999999999999", "1.5", "ten"] {
            cases.push(
                Case::new(format!("{operation} limit={limit}"), "GET", operation)
                    .path(format!("{path}?limit={limit}"))
                    .expect(400, &["limit"]),
            );
        }
    }
    for limit in ["1001"] {
        for operation in ["/v1/datasets", "/v1/jobs"] {
            cases.push(
                Case::new(format!("{operation} limit={limit}"), "GET", operation)
                    .path(format!("{operation}?limit={limit}"))
                    .expect(400, &["limit"]),
            );
        }
    }
    for cursor in ["nope", "-1"] {
        cases.push(
            Case::new(format!("datasets cursor={cursor}"), "GET", "/v1/datasets")
                .path(format!("/v1/datasets?cursor={cursor}"))
                .expect(400, &["cursor"]),
        );
        cases.push(
            Case::new(format!("jobs cursor={cursor}"), "GET", "/v1/jobs")
                .path(format!("/v1/jobs?cursor={cursor}"))
                .expect(400, &["cursor"]),
        );
    }
    for wait in ["61", "-1", "4294967296"] {
        cases.push(
            Case::new(format!("get wait={wait}"), "GET", "/v1/jobs/{id}")
                .path(format!("/v1/jobs/{job_id}?wait={wait}"))
                .expect(400, &["wait"]),
        );
        cases.push(
            submit(format!("submit wait={wait}"), sql(&inputs, "SELECT 1"))
                .path(format!("/v1/jobs?wait={wait}"))
                .expect(400, &["wait"]),
        );
    }
    cases.push(
        Case::new("jobs state=done", "GET", "/v1/jobs")
            .path("/v1/jobs?state=done")
            .expect(400, &["state"]),
    );
    cases.push(
        Case::new("result format=xlsx", "GET", "/v1/jobs/{id}/result")
            .path(format!("/v1/jobs/{job_id}/result?format=xlsx"))
            .expect(400, &["format"]),
    );
    let with = |field: &str, value: Value| {
        let mut body = sql(&inputs, "SELECT 1");
        body[field] = value;
        body
    };
    // A value of the right type out of its range is named by field; one
    // that does not fit the field's type at all is named by that type.
    let fields = [
        ("priority", json!(101), "priority"),
        ("priority", json!(-101), "priority"),
        ("priority", json!(40000), "from -32768 to 32767"),
        ("priority", json!(1.5), "int16"),
        ("max_attempts", json!(0), "max_attempts"),
        ("max_attempts", json!(101), "max_attempts"),
        ("timeout_seconds", json!(0), "timeout_seconds"),
        ("timeout_seconds", json!(86401), "timeout_seconds"),
        ("timeout_seconds", json!(-5), "uint32"),
        ("timeout_seconds", json!(1e300), "uint32"),
        ("idempotency_key", json!(""), "idempotency_key"),
        ("idempotency_key", json!("k".repeat(256)), "idempotency_key"),
    ];
    for (field, value, named) in fields {
        cases.push(
            submit(format!("{field} = {value}"), with(field, value.clone())).expect(400, &[named]),
        );
    }
    let analyses = [
        (
            "bins",
            json!({"type": "histogram", "table": "n", "column": "n", "bins": 0}),
        ),
        (
            "bins",
            json!({"type": "histogram", "table": "n", "column": "n", "bins": 1001}),
        ),
        (
            "uint32",
            json!({"type": "histogram", "table": "n", "column": "n", "bins": 1e20}),
        ),
        (
            "uint64",
            json!({"type": "group_by", "table": "n", "keys": [], "aggregates": [{"function": "count"}], "min_group_size": -1}),
        ),
        (
            "columns",
            json!({"type": "correlation", "table": "n", "columns": ["n"]}),
        ),
    ];
    for (named, analysis) in analyses {
        cases.push(
            submit(
                format!("analysis {analysis}"),
                job(inputs.clone(), analysis),
            )
            .expect(400, &[named]),
        );
    }
    for number in ["18446744073709551616", "1e400", "-0.5"] {
        cases.push(
            Case::new(format!("bins = {number}"), "POST", "/v1/jobs")
                .body(
                    "application/json",
                    format!(
                        r#"{{"inputs": {inputs}, "analysis": {{"type": "histogram", "table": "n", "column": "n", "bins": {number}}}}}"#
                    ),
                )
                .expect(400, &[]),
        );
    }
    cases.push(
        Case::new("an empty batch", "POST", "/v1/job-batches")
            .json(&json!({"jobs": []}))
            .expect(400, &["jobs"]),
    );
    cases.push(
        Case::new("a batch of 1001", "POST", "/v1/job-batches")
            .json(&json!({"jobs": vec![sql(&inputs, "SELECT 1"); 1001]}))
            .expect(400, &["jobs"]),
    );
    check(&app, cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_that_writes_reaches_out_or_reads_other_datasets_is_refused_at_submit() {
    let app = spawn_with(no_workers()).await;
    let mine = app.dataset("mine", "n\n1\n2\n").await;
    let theirs = app.dataset("theirs", "secret\n42\n").await;
    let inputs = json!([{"table": "mine", "dataset": mine}]);
    let part = {
        let (_, detail) = app.get(&format!("/v1/datasets/{theirs}")).await;
        detail["parts"][0]["id"].as_str().unwrap().to_owned()
    };
    let path = format!(
        "tenants/{}/datasets/{theirs}/parts/{part}.parquet",
        app.tenant
    );
    let stored = app
        .stored_files()
        .into_iter()
        .find(|f| f.to_string_lossy().contains(&theirs))
        .unwrap();
    let queries = [
        // DDL
        (
            "CREATE TABLE t AS SELECT * FROM mine",
            "create table".to_owned(),
        ),
        ("DROP TABLE mine", "drop table".to_owned()),
        (
            "ALTER TABLE mine ADD COLUMN x INT",
            "alter table".to_owned(),
        ),
        ("CREATE VIEW v AS SELECT 1", "create view".to_owned()),
        (
            "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'",
            "create external table".to_owned(),
        ),
        // DML
        ("INSERT INTO mine VALUES (3)", "insert".to_owned()),
        ("UPDATE mine SET n = 0", "update".to_owned()),
        ("DELETE FROM mine", "delete".to_owned()),
        ("SELECT * INTO copy FROM mine", "select into".to_owned()),
        // COPY, files and URLs
        (
            "COPY mine TO '/tmp/stolen.csv' STORED AS CSV",
            "copy".to_owned(),
        ),
        (
            "COPY (SELECT * FROM mine) TO 'file:///tmp/stolen.parquet'",
            "copy".to_owned(),
        ),
        ("SELECT * FROM '/etc/passwd'", "/etc/passwd".to_owned()),
        (
            "SELECT * FROM 'file:///etc/passwd'",
            "/etc/passwd".to_owned(),
        ),
        (
            "SELECT * FROM 'https://example.com/data.parquet'",
            "example.com".to_owned(),
        ),
        (
            "SELECT * FROM read_parquet('/etc/passwd')",
            "read_parquet".to_owned(),
        ),
        (
            "SELECT * FROM read_csv('/etc/passwd')",
            "read_csv".to_owned(),
        ),
        // Statements that change the session or describe the system.
        (
            "SET datafusion.execution.target_partitions = 64",
            "set".to_owned(),
        ),
        ("EXPLAIN ANALYZE SELECT * FROM mine", "explain".to_owned()),
        ("SHOW TABLES", "show".to_owned()),
        (
            "SELECT * FROM information_schema.tables",
            "information_schema".to_owned(),
        ),
        // Another dataset, by every name it might go by.
        ("SELECT * FROM theirs", "theirs".to_owned()),
        (
            "SELECT * FROM mine JOIN theirs ON true",
            "theirs".to_owned(),
        ),
        (
            "SELECT * FROM (SELECT * FROM theirs) t",
            "theirs".to_owned(),
        ),
        (
            "WITH x AS (SELECT * FROM theirs) SELECT * FROM x",
            "theirs".to_owned(),
        ),
        (
            "SELECT * FROM mine WHERE n IN (SELECT secret FROM theirs)",
            "theirs".to_owned(),
        ),
        (
            "SELECT * FROM other_schema.mine",
            "other_schema.mine".to_owned(),
        ),
    ];
    let mut cases: Vec<Case> = queries
        .iter()
        .map(|(query, named)| submit(*query, sql(&inputs, query)).expect(422, &[named]))
        .collect();
    for (name, query) in [
        ("by id", format!("SELECT * FROM \"{theirs}\"")),
        ("by object path", format!("SELECT * FROM '{path}'")),
        (
            "by file path",
            format!("SELECT * FROM '{}'", stored.display()),
        ),
    ] {
        cases.push(
            submit(format!("their dataset {name}"), sql(&inputs, &query))
                .expect(422, &["not one of the job's inputs"]),
        );
    }
    // A named analysis of a table the job was not given.
    cases.push(
        submit(
            "a summary of another table",
            job(
                inputs.clone(),
                json!({"type": "summary", "table": "theirs"}),
            ),
        )
        .expect(422, &["theirs", "not one of the job's inputs"]),
    );
    // A dataset that does not exist (or is not this tenant's).
    cases.push(
        submit(
            "an input that does not exist",
            sql(
                &json!([{"table": "x", "dataset": uuid::Uuid::now_v7()}]),
                "SELECT * FROM x",
            ),
        )
        .expect(422, &["does not exist"]),
    );
    // In a batch, the whole batch is refused and the culprit named.
    cases.push(
        Case::new("a batch with one bad query", "POST", "/v1/job-batches")
            .json(&json!({"jobs": [sql(&inputs, "SELECT 1"), sql(&inputs, "DROP TABLE mine")]}))
            .expect(422, &["jobs[1]", "drop table"]),
    );
    check(&app, cases).await;
    assert!(!std::path::Path::new("/tmp/stolen.csv").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pathological_sql_is_refused_at_submit() {
    let app = spawn_with(no_workers()).await;
    let mine = app.dataset("mine", "n\n1\n2\n").await;
    let inputs = json!([{"table": "mine", "dataset": mine}]);
    let parens = |depth: usize| {
        format!(
            "SELECT {}n{} FROM mine",
            "(".repeat(depth),
            ")".repeat(depth)
        )
    };
    let subqueries = |depth: usize| {
        let mut q = "SELECT n FROM mine".to_owned();
        for _ in 0..depth {
            q = format!("SELECT n FROM ({q}) s");
        }
        q
    };
    let queries = [
        (
            "parentheses 1000 deep",
            parens(1000),
            "nests more than 50 levels",
        ),
        (
            "parentheses 20000 deep",
            parens(20_000),
            "nests more than 50 levels",
        ),
        (
            "subqueries 200 deep",
            subqueries(200),
            "nests more than 50 levels",
        ),
        (
            "a chain of 1001 additions",
            format!("SELECT n{} FROM mine", " + 1".repeat(1001)),
            "nested more than 1000",
        ),
        (
            "a chain of 10000 ORs",
            format!(
                "SELECT n FROM mine WHERE {}",
                vec!["n = 1"; 10_000].join(" OR ")
            ),
            "nested more than 1000",
        ),
        (
            "a query of 100 kB and one byte",
            format!("SELECT n FROM mine WHERE n IN ({}1)", "1,".repeat(51_200)),
            "at most 102400",
        ),
        (
            "two statements",
            "SELECT 1; SELECT 2".to_owned(),
            "exactly one statement",
        ),
        ("empty", "   ".to_owned(), "empty"),
        ("a comment", "-- nothing".to_owned(), "empty"),
        ("not SQL", "ls -la /".to_owned(), "invalid query"),
    ];
    let cases = queries
        .iter()
        .map(|(name, query, detail)| submit(*name, sql(&inputs, query)).expect(422, &[detail]))
        .collect();
    check(&app, cases).await;

    // Deep but legal: 40 levels of parentheses and a 500-term chain pass.
    for query in [
        parens(40),
        format!("SELECT n{} FROM mine", " + 1".repeat(500)),
    ] {
        let (status, answer) = app.post("/v1/jobs", sql(&inputs, &query)).await;
        assert_eq!(status, 201, "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_with_a_nul_or_bytes_that_are_not_utf8_is_400_and_named() {
    let app = spawn_with(no_workers()).await;
    let existing = app.dataset("numbers", "n\n1\n2\n").await;
    let inputs = json!([{"table": "n", "dataset": existing}]);
    let mut keyed = sql(&inputs, "SELECT 1");
    keyed["idempotency_key"] = json!("k\u{0}z");
    let jobs = [
        ("an idempotency key", "/idempotency_key", keyed),
        ("SQL text", "/analysis/query", sql(&inputs, "SELECT 1\u{0}")),
        (
            "an input's table name",
            "/inputs/0/table",
            sql(
                &json!([{"table": "n\u{0}", "dataset": existing}]),
                "SELECT 1",
            ),
        ),
        (
            "a summary column",
            "/analysis/columns/0",
            job(
                inputs.clone(),
                json!({"type": "summary", "table": "n", "columns": ["n\u{0}"]}),
            ),
        ),
    ];
    let mut cases: Vec<Case> = Vec::new();
    for (name, pointer, job) in &jobs {
        // In a batch, the job sits one level deeper.
        cases.push(
            submit(format!("job, {name}"), job.clone())
                .expect(400, &[&format!("`{pointer}`"), "nul"]),
        );
        cases.push(
            Case::new(format!("batch, {name}"), "POST", "/v1/job-batches")
                .json(&json!({"jobs": [job]}))
                .expect(400, &[&format!("`/jobs/0{pointer}`"), "nul"]),
        );
    }
    cases.extend([
        upload(
            "a NUL in a CSV header",
            "",
            "text/csv",
            b"a\0b,c\n1,2\n".to_vec(),
        )
        .expect(422, &["nul", "line 1"]),
        upload(
            "a NUL in an NDJSON key",
            "",
            "application/x-ndjson",
            b"{\"a\\u0000b\": 1}\n".to_vec(),
        )
        .expect(422, &["nul"]),
        Case::new("a name that is not UTF-8", "POST", "/v1/datasets")
            .path("/v1/datasets?name=%ff%fe")
            .body("text/csv", b"a\n1\n".to_vec())
            .expect(400, &["`name`", "not utf-8"]),
        Case::new("a NUL in a name", "POST", "/v1/datasets")
            .path("/v1/datasets?name=a%00b")
            .body("text/csv", b"a\n1\n".to_vec())
            .expect(400, &["`name`", "nul"]),
        Case::new("a NUL in a null marker", "POST", "/v1/datasets")
            .path("/v1/datasets?name=ok&null=%00")
            .body("text/csv", b"a\n1\n".to_vec())
            .expect(400, &["`null`", "nul"]),
        Case::new("a cursor that is not UTF-8", "GET", "/v1/jobs")
            .path("/v1/jobs?cursor=%c3%28")
            .expect(400, &["`cursor`", "not utf-8"]),
        Case::new("an idempotency filter with a NUL", "GET", "/v1/jobs")
            .path("/v1/jobs?type=sql%00")
            .expect(400, &["`type`", "nul"]),
    ]);
    check(&app, cases).await;

    // A header value that is not UTF-8 (obs-text, which HTTP allows).
    let response = app
        .http
        .post("/v1/datasets?name=latin")
        .header(
            "content-type",
            reqwest::header::HeaderValue::from_bytes(b"text/csv; charset=\xe9").unwrap(),
        )
        .body("a\n1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(text.contains("content-type header is not UTF-8"), "{text}");
    assert_eq!(
        holdings(&app).await.datasets.as_array().map(Vec::len),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifiers_that_do_not_exist_are_404_and_malformed_ones_400() {
    let app = spawn_with(no_workers()).await;
    // Not an empty service: the ids asked for are still not there.
    app.dataset("numbers", "n\n1\n2\n").await;
    let id = uuid::Uuid::now_v7();
    let nil = uuid::Uuid::nil();
    let mut cases = Vec::new();
    for id in [id, nil] {
        cases.extend([
            Case::new(format!("get dataset {id}"), "GET", "/v1/datasets/{id}")
                .path(format!("/v1/datasets/{id}"))
                .expect(404, &[&id.to_string()]),
            Case::new(
                format!("delete dataset {id}"),
                "DELETE",
                "/v1/datasets/{id}",
            )
            .path(format!("/v1/datasets/{id}"))
            .expect(404, &[&id.to_string()]),
            Case::new(
                format!("append to dataset {id}"),
                "POST",
                "/v1/datasets/{id}/parts",
            )
            .path(format!("/v1/datasets/{id}/parts"))
            .body("text/csv", "n\n3\n")
            .expect(404, &["dataset"]),
            Case::new(format!("get job {id}"), "GET", "/v1/jobs/{id}")
                .path(format!("/v1/jobs/{id}"))
                .expect(404, &[&id.to_string()]),
            Case::new(format!("wait for job {id}"), "GET", "/v1/jobs/{id}")
                .path(format!("/v1/jobs/{id}?wait=1"))
                .expect(404, &[&id.to_string()]),
            Case::new(format!("cancel job {id}"), "POST", "/v1/jobs/{id}/cancel")
                .path(format!("/v1/jobs/{id}/cancel"))
                .expect(404, &[&id.to_string()]),
            Case::new(format!("result of job {id}"), "GET", "/v1/jobs/{id}/result")
                .path(format!("/v1/jobs/{id}/result"))
                .expect(404, &[&id.to_string()]),
        ]);
    }
    for bad in [
        "nope",
        "1",
        "00000000-0000-0000-0000-00000000000g",
        "..%2F..%2Fetc%2Fpasswd",
    ] {
        cases.extend([
            Case::new(format!("get dataset {bad}"), "GET", "/v1/datasets/{id}")
                .path(format!("/v1/datasets/{bad}"))
                .expect(400, &[]),
            Case::new(format!("get job {bad}"), "GET", "/v1/jobs/{id}")
                .path(format!("/v1/jobs/{bad}"))
                .expect(400, &[]),
            Case::new(format!("cancel job {bad}"), "POST", "/v1/jobs/{id}/cancel")
                .path(format!("/v1/jobs/{bad}/cancel"))
                .expect(400, &[]),
            Case::new(
                format!("delete dataset {bad}"),
                "DELETE",
                "/v1/datasets/{id}",
            )
            .path(format!("/v1/datasets/{bad}"))
            .expect(400, &[]),
        ]);
    }
    check(&app, cases).await;
}
