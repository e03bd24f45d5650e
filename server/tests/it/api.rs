//! The service end to end over HTTP: upload, run analyses, fetch results,
//! with values checked against answers worked out by hand.

#![allow(clippy::unwrap_used)]

use crate::common::*;
use serde_json::{Value, json};

const PRICES: &str = "city,price,day
oslo,10,2024-01-01
oslo,20,2024-01-01
bergen,NA,2024-01-02
bergen,40,2024-01-02
oslo,30,2024-01-03
";

fn close(actual: &Value, expected: f64) -> bool {
    actual.as_f64().is_some_and(|a| (a - expected).abs() < 1e-6)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_csv_is_summarised_and_queried_with_hand_checked_answers() {
    let app = spawn_app().await;
    let dataset = app.dataset("prices", PRICES).await;
    let (status, detail) = app.get(&format!("/v1/datasets/{dataset}")).await;
    assert_eq!(status, 200);
    assert_eq!(detail["dataset"]["rows"], 5);
    assert_eq!(detail["parts"].as_array().unwrap().len(), 1);

    let inputs = json!([{"table": "prices", "dataset": dataset}]);
    let job = app
        .run(
            inputs.clone(),
            json!({"type": "summary", "table": "prices", "columns": ["price"]}),
        )
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["result"]["rows"], 1);
    let rows = app.rows(job["id"].as_str().unwrap()).await;
    let price = &rows[0];
    // price: 10, 20, null, 40, 30
    assert_eq!(price["column"], "price");
    assert_eq!(price["count"], 4);
    assert_eq!(price["nulls"], 1);
    assert_eq!(price["min"], "10");
    assert_eq!(price["max"], "40");
    assert!(close(&price["mean"], 25.0), "{price}");
    // sample stddev: sqrt((15² + 5² + 15² + 5²) / 3)
    assert!(close(&price["stddev"], (500.0f64 / 3.0).sqrt()), "{price}");

    let job = app
        .run(
            inputs.clone(),
            json!({"type": "sql", "query": "SELECT city, sum(price) AS total, count(*) AS n FROM prices GROUP BY city ORDER BY city"}),
        )
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let rows = app.rows(job["id"].as_str().unwrap()).await;
    assert_eq!(
        rows,
        vec![
            json!({"city": "bergen", "total": 40, "n": 2}),
            json!({"city": "oslo", "total": 60, "n": 3}),
        ]
    );

    // Mean price per city, only for cities with at least 3 prices.
    let job = app
        .run(
            inputs,
            json!({"type": "group_by", "table": "prices", "keys": ["city"],
                   "aggregates": [{"function": "mean", "column": "price", "alias": "avg_price"}],
                   "min_group_size": 3}),
        )
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let mut rows = app.rows(job["id"].as_str().unwrap()).await;
    rows.sort_by_key(|r| r["city"].as_str().unwrap_or_default().to_owned());
    assert_eq!(rows[0]["city"], "bergen");
    assert!(
        rows[0]["avg_price"].is_null(),
        "2 prices is below the minimum: {rows:?}"
    );
    assert!(close(&rows[1]["avg_price"], 20.0), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_comes_as_csv_and_as_parquet() {
    let app = spawn_app().await;
    let dataset = app.dataset("prices", PRICES).await;
    let job = app
        .run(
            json!([{"table": "p", "dataset": dataset}]),
            json!({"type": "sql", "query": "SELECT city, price FROM p WHERE price >= 30 ORDER BY price"}),
        )
        .await;
    let id = job["id"].as_str().unwrap();
    let csv = app
        .http
        .get(&format!("/v1/jobs/{id}/result?format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv");
    assert_eq!(
        csv.text().await.unwrap(),
        "city,price\noslo,30\nbergen,40\n"
    );
    let parquet = app
        .http
        .get(&format!("/v1/jobs/{id}/result?format=parquet"))
        .send()
        .await
        .unwrap();
    let bytes = parquet.bytes().await.unwrap();
    assert_eq!(&bytes[..4], b"PAR1");
    assert_eq!(bytes.len() as u64, job["result"]["bytes"].as_u64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_results_page_with_a_cursor() {
    let app = spawn_app().await;
    let dataset = app.dataset("prices", PRICES).await;
    let job = app
        .run(
            json!([{"table": "p", "dataset": dataset}]),
            json!({"type": "sql", "query": "SELECT day FROM p ORDER BY day, city"}),
        )
        .await;
    let id = job["id"].as_str().unwrap();
    let (_, first) = app.get(&format!("/v1/jobs/{id}/result?limit=3")).await;
    assert_eq!(first["rows"].as_array().unwrap().len(), 3);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .get(&format!("/v1/jobs/{id}/result?limit=3&cursor={cursor}"))
        .await;
    assert_eq!(second["rows"].as_array().unwrap().len(), 2);
    // Nulls are explicit: every row has every column.
    let job = app
        .run(
            json!([{"table": "p", "dataset": dataset}]),
            json!({"type": "sql", "query": "SELECT city, price FROM p WHERE price IS NULL"}),
        )
        .await;
    let rows = app.rows(job["id"].as_str().unwrap()).await;
    assert_eq!(rows, vec![json!({"city": "bergen", "price": null})]);
    assert!(second.get("next_cursor").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_upload_names_line_and_column_and_leaves_nothing_behind() {
    let app = spawn_app().await;
    let csv = "city,price\noslo,10\nbergen,abc\n";
    let (status, problem) = app
        .upload_csv("name=bad&schema=city:string,price:int64", csv)
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["status"], 422);
    assert_eq!(problem["errors"][0]["line"], 3, "{problem}");
    assert_eq!(problem["errors"][0]["column"], "price");
    let (_, page) = app.get("/v1/datasets").await;
    assert_eq!(page["items"], json!([]));
    assert!(app.stored_files().is_empty(), "{:?}", app.stored_files());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_upload_is_413_and_a_wrong_media_type_is_415() {
    let app = spawn_with(Options {
        max_upload_bytes: 64,
        ..Options::default()
    })
    .await;
    let big = format!("a,b\n{}", "1,2\n".repeat(100));
    let (status, problem) = app.upload_csv("name=big", &big).await;
    assert_eq!(status, 413, "{problem}");
    let response = app
        .http
        .post("/v1/datasets?name=x")
        .header("content-type", "application/xml")
        .body("<a/>")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(app.stored_files().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_with_a_used_idempotency_key_returns_the_same_job() {
    let app = spawn_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let dataset = app.dataset("prices", PRICES).await;
    let job = json!({
        "inputs": [{"table": "p", "dataset": dataset}],
        "analysis": {"type": "sql", "query": "SELECT 1"},
        "idempotency_key": "nightly-2024-01-01",
    });
    let (first_status, first) = app.post("/v1/jobs", job.clone()).await;
    let (second_status, second) = app.post("/v1/jobs", job).await;
    assert_eq!(
        (first_status, second_status),
        (201, 200),
        "{first} {second}"
    );
    assert_eq!(first["id"], second["id"]);
    let (_, page) = app.get("/v1/jobs").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_naming_an_unknown_dataset_or_with_unknown_fields_is_rejected() {
    let app = spawn_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let (status, problem) = app
        .post(
            "/v1/jobs",
            json!({"inputs": [{"table": "t", "dataset": uuid::Uuid::now_v7()}],
                   "analysis": {"type": "sql", "query": "SELECT 1"}}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    let (status, problem) = app
        .post(
            "/v1/jobs",
            json!({"inputs": [], "analysis": {"type": "sql", "query": "SELECT 1"}, "colour": "red"}),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["title"], "Bad request");
    let (status, _) = app.get(&format!("/v1/jobs/{}", uuid::Uuid::now_v7())).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_query_stops_it() {
    let app = spawn_app().await;
    let mut csv = String::from("x\n");
    for i in 0..3000 {
        csv.push_str(&format!("{i}\n"));
    }
    let dataset = app.dataset("numbers", &csv).await;
    // 2.7e10 combinations: runs far longer than this test.
    let (status, job) = app
        .post(
            "/v1/jobs",
            json!({"inputs": [{"table": "t", "dataset": dataset}],
                   "analysis": {"type": "sql", "query": "SELECT count(*) FROM t a, t b, t c WHERE a.x + b.x + c.x = -1"}}),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let mut state = String::new();
    for _ in 0..300 {
        let (_, job) = app.get(&format!("/v1/jobs/{id}")).await;
        state = job["state"].as_str().unwrap().to_owned();
        if state == "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(state, "running");
    let (status, job) = app
        .post(&format!("/v1/jobs/{id}/cancel"), json!(null))
        .await;
    assert_eq!(status, 202, "{job}");
    let job = app.finished(&id).await;
    assert_eq!(job["state"], "cancelled", "{job}");
    let (status, _) = app.get(&format!("/v1/jobs/{id}/result")).await;
    assert_eq!(status, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_answer_with_problem_details() {
    let app = spawn_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let response = app.http.get("/v1/nope").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let (status, body) = app.get("/readyz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    // Metrics are not on the API's address, only on the metrics endpoint.
    let (status, _) = app.get("/metrics").await;
    assert_eq!(status, 404);
    let metrics = app
        .serve_metrics()
        .await
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("crunch_jobs{state=\"queued\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("crunch_http_request_duration_seconds_count"),
        "{metrics}"
    );
}

fn example(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_tour_answers_the_freight_rates_question() {
    let app = spawn_app().await;
    let prices = app.dataset("prices", &example("prices.csv")).await;
    let ports = app.dataset("ports", &example("ports.csv")).await;
    let regions = app.dataset("regions", &example("regions.csv")).await;
    let job = app
        .run(
            json!([
                {"table": "prices", "dataset": prices},
                {"table": "ports", "dataset": ports},
                {"table": "regions", "dataset": regions},
            ]),
            json!({"type": "sql", "query": example("freight_rates.sql")}),
        )
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    // china_main (with nested china_south_main) to north_europe_main (with
    // nested baltic): 2016-01-01 has 4 prices averaging 1250; 2016-01-02
    // has 2, too few; 2016-01-03 has 3 (one NA) averaging 1200.
    let rows = app.rows(job["id"].as_str().unwrap()).await;
    assert_eq!(
        rows,
        vec![
            json!({"day": "2016-01-01", "average_price": 1250.0}),
            json!({"day": "2016-01-02", "average_price": null}),
            json!({"day": "2016-01-03", "average_price": 1200.0}),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_limited_aggregation_spills_and_still_succeeds() {
    let app = spawn_with(Options {
        memory_limit: Some(16 << 20),
        ..Options::default()
    })
    .await;
    let rows = 1_000_000;
    let mut csv = String::with_capacity(rows * 16);
    csv.push_str("k,v\n");
    for i in 0..rows {
        csv.push_str(&format!("key-{i},{}\n", i % 7));
    }
    let dataset = app.dataset("wide", &csv).await;
    let job = app
        .run(
            json!([{"table": "t", "dataset": dataset}]),
            json!({"type": "group_by", "table": "t", "keys": ["k"],
                   "aggregates": [{"function": "sum", "column": "v", "alias": "total"}]}),
        )
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["result"]["rows"], rows);
    let spilled = app.engine.as_ref().unwrap().spill_totals();
    assert!(
        spilled.files > 0,
        "the aggregation did not spill: {spilled:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_cannot_plan_is_refused_at_submit_and_one_that_can_runs() {
    let app = spawn_app().await;
    let dataset = app.dataset("numbers", "x\n1\n2\n4\n").await;
    let inputs = json!([{"table": "t", "dataset": dataset}]);
    for (query, said) in [
        ("SELECT nope FROM t", "unknown column nope"),
        ("SELECT x + 'a' FROM t", "invalid query"),
        ("SELECT frobnicate(x) FROM t", "frobnicate"),
    ] {
        let (status, problem) = app
            .post(
                "/v1/jobs",
                json!({"inputs": inputs, "analysis": {"type": "sql", "query": query}}),
            )
            .await;
        assert_eq!(status, 422, "{query}: {problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(said), "{query}: {problem}");
        assert_eq!(
            problem["errors"][0]["column"], "analysis.query",
            "{problem}"
        );
    }
    // In a batch, the culprit is named and nothing is queued.
    let good = json!({"inputs": inputs, "analysis": {"type": "sql", "query": "SELECT x FROM t"}});
    let bad = json!({"inputs": inputs, "analysis": {"type": "sql", "query": "SELECT y FROM t"}});
    let (status, problem) = app
        .post("/v1/job-batches", json!({"jobs": [good, bad]}))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().starts_with("jobs[1]: "),
        "{problem}"
    );
    let (_, page) = app.get("/v1/jobs").await;
    assert_eq!(page["items"], json!([]), "{page}");

    // Two aggregates DataFusion alone would name alike (a cast does not show
    // in a name): accepted, and both are the mean, 7 / 3.
    let job = app
        .run(
            inputs,
            json!({"type": "sql", "query": "SELECT avg(x) AS avg_x, avg(CAST(x AS DOUBLE)) AS avg_double FROM t"}),
        )
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let rows = app.rows(job["id"].as_str().unwrap()).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(close(&rows[0]["avg_x"], 7.0 / 3.0), "{rows:?}");
    assert!(close(&rows[0]["avg_double"], 7.0 / 3.0), "{rows:?}");
}
