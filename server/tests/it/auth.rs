//! Keys and tenants over HTTP: every `/v1` operation refuses a request
//! without a valid key (401, with a challenge) or without the scope it
//! needs (403); another tenant's resources are 404 like missing ones; the
//! key API; revocation through the cache (the NOTIFY path and the TTL);
//! `last_used_at` written at most once an interval.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{TimeZone, Utc};
use crunch_server::auth::{self, AuthError, Scopes, Verifier, VerifierConfig};
use serde_json::{Value, json};

use crate::common::*;

/// The committed spec.
fn spec() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every operation of the spec: (method, path as the spec writes it).
fn operations(spec: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.push((method.clone(), path.clone()));
        }
    }
    out
}

/// The spec's path with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{id}", &uuid::Uuid::now_v7().to_string())
        .replace("{prefix}", "crk_AAAAAAAA")
}

/// Sends `method path` with `authorization` (none when `None`); returns
/// the status, the `WWW-Authenticate` header, the content type and the
/// JSON body.
async fn send(
    app: &App,
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> (u16, Option<String>, String, Value) {
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut request = app.http.anonymous().request(method, path);
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, challenge, content_type, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_v1_operation_refuses_a_missing_malformed_unknown_expired_or_revoked_key() {
    let app = spawn_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let expired = auth::keys::create(
        app.pool(),
        app.tenant,
        Scopes::all(),
        "expired",
        Some(Utc::now() - chrono::TimeDelta::seconds(1)),
    )
    .await
    .unwrap();
    let revoked = app.key_of(app.tenant, "read,write,admin").await;
    let prefix = auth::keys::prefix_of(&revoked).unwrap();
    let (status, _) = Http::send(app.http.delete(&format!("/v1/keys/{prefix}"))).await;
    assert_eq!(status, 204);
    let unknown = auth::keys::mint().unwrap().secret;
    let cases = [
        ("no key", None, None),
        (
            "not bearer",
            Some(format!("Basic {}", app.key)),
            Some("invalid_token"),
        ),
        (
            "not a crunch key",
            Some("Bearer abc".to_owned()),
            Some("invalid_token"),
        ),
        (
            "a truncated key",
            Some(format!("Bearer {}", &app.key[..20])),
            Some("invalid_token"),
        ),
        (
            "an unknown key",
            Some(format!("Bearer {unknown}")),
            Some("invalid_token"),
        ),
        (
            "an expired key",
            Some(format!("Bearer {}", expired.secret)),
            Some("invalid_token"),
        ),
        (
            "a revoked key",
            Some(format!("Bearer {revoked}")),
            Some("invalid_token"),
        ),
    ];
    let spec = spec();
    let mut v1 = 0;
    let mut failures = Vec::new();
    for (method, path) in operations(&spec) {
        let operation = &spec["paths"][&path][&method];
        if !path.starts_with("/v1/") {
            if operation.get("security").is_some() {
                failures.push(format!("{method} {path}: open, but declares security"));
            }
            continue;
        }
        v1 += 1;
        if operation["security"] != json!([{"bearerAuth": []}]) {
            failures.push(format!(
                "{method} {path}: security {}",
                operation["security"]
            ));
        }
        let documented = &operation["responses"]["401"];
        if documented["content"]
            .get("application/problem+json")
            .is_none()
            || documented["headers"].get("WWW-AUTHENTICATE").is_none()
        {
            failures.push(format!("{method} {path}: 401 undocumented: {documented}"));
        }
        if operation["responses"]["403"]["content"]
            .get("application/problem+json")
            .is_none()
        {
            failures.push(format!("{method} {path}: 403 undocumented"));
        }
        for (name, authorization, error) in &cases {
            let (status, challenge, content_type, body) =
                send(&app, &method, &concrete(&path), authorization.as_deref()).await;
            let expected = match error {
                None => "Bearer realm=\"crunch\"".to_owned(),
                Some(error) => format!("Bearer realm=\"crunch\", error=\"{error}\""),
            };
            if status != 401
                || challenge.as_deref() != Some(expected.as_str())
                || content_type != "application/problem+json"
                || body["status"] != 401
            {
                failures.push(format!(
                    "{method} {path}, {name}: {status} {challenge:?} {content_type} {body}"
                ));
            }
        }
    }
    assert!(v1 >= 15, "only {v1} /v1 operations in the spec");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    // The detail says what is wrong, naming a key by its prefix only.
    let (_, _, _, body) = send(
        &app,
        "get",
        "/v1/datasets",
        Some(&format!("Bearer {revoked}")),
    )
    .await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("revoked") && detail.contains(&prefix),
        "{body}"
    );
    assert!(!detail.contains(&revoked), "{body}");
    let (_, _, _, body) = send(
        &app,
        "get",
        "/v1/datasets",
        Some(&format!("Bearer {}", expired.secret)),
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );

    // The open operations need no key.
    for path in ["/healthz", "/readyz", "/docs", "/openapi.json"] {
        let (status, _, _, _) = send(&app, "get", path, None).await;
        assert_eq!(status, 200, "{path}");
    }
    // And nothing changed: the tenant still has no dataset.
    let (status, page) = app.get("/v1/datasets").await;
    assert_eq!((status, page["items"].clone()), (200, json!([])));
}

/// A request with a key that lacks a scope: (key, method, the operation's
/// path, query, JSON body, the scope needed).
type ScopeCase<'a> = (&'a str, &'a str, &'a str, &'a str, Option<Value>, &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_without_the_operations_scope_is_403() {
    let app = spawn_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let dataset = app.dataset("numbers", "n\n1\n2\n").await;
    let (status, job) = app
        .post(
            "/v1/jobs",
            json!({"inputs": [{"table": "t", "dataset": dataset}],
                   "analysis": {"type": "sql", "query": "SELECT n FROM t"}}),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let job = job["id"].as_str().unwrap().to_owned();
    let read = app.key_of(app.tenant, "read").await;
    let write = app.key_of(app.tenant, "write").await;
    let admin = app.key_of(app.tenant, "admin").await;
    let submit = json!({"inputs": [{"table": "t", "dataset": dataset}],
                        "analysis": {"type": "sql", "query": "SELECT 1"}});
    let cases: Vec<ScopeCase> = vec![
        (&read, "post", "/v1/datasets", "?name=x", None, "write"),
        (&read, "post", "/v1/datasets/{id}/parts", "", None, "write"),
        (&read, "delete", "/v1/datasets/{id}", "", None, "write"),
        (&read, "post", "/v1/jobs", "", Some(submit.clone()), "write"),
        (
            &read,
            "post",
            "/v1/job-batches",
            "",
            Some(json!({"jobs": [submit]})),
            "write",
        ),
        (&read, "post", "/v1/jobs/{id}/cancel", "", None, "write"),
        (&read, "get", "/v1/keys", "", None, "admin"),
        (
            &read,
            "post",
            "/v1/keys",
            "",
            Some(json!({"name": "x", "scopes": ["read"]})),
            "admin",
        ),
        (&read, "delete", "/v1/keys/{prefix}", "", None, "admin"),
        (&read, "get", "/v1/queue", "?fleet=true", None, "admin"),
        (&write, "get", "/v1/datasets", "", None, "read"),
        (&write, "get", "/v1/datasets/{id}", "", None, "read"),
        (&write, "get", "/v1/jobs", "", None, "read"),
        (&write, "get", "/v1/jobs/{id}", "", None, "read"),
        (&write, "get", "/v1/jobs/{id}/result", "", None, "read"),
        (&write, "get", "/v1/jobs/{id}/result.csv", "", None, "read"),
        (
            &write,
            "get",
            "/v1/jobs/{id}/result.parquet",
            "",
            None,
            "read",
        ),
        (&write, "get", "/v1/queue", "", None, "read"),
        (&write, "get", "/v1/keys", "", None, "admin"),
        (&admin, "get", "/v1/datasets", "", None, "read"),
        (&admin, "get", "/v1/queue", "", None, "read"),
        (&admin, "post", "/v1/jobs", "", Some(json!({})), "write"),
    ];
    let spec = spec();
    let mut failures = Vec::new();
    for (key, method, operation, query, body, needed) in &cases {
        let id = if operation.starts_with("/v1/datasets") {
            &dataset
        } else {
            &job
        };
        let path = format!(
            "{}{query}",
            operation
                .replace("{id}", id)
                .replace("{prefix}", "crk_AAAAAAAA")
        );
        let method_name = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut request = app.http.with_key(key).request(method_name, &path);
        request = match body {
            Some(body) => request.json(body),
            None => request.header("content-type", "text/csv").body("n\n3\n"),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let expected =
            format!("Bearer realm=\"crunch\", error=\"insufficient_scope\", scope=\"{needed}\"");
        let documented = &spec["paths"][operation][method]["responses"]["403"];
        if status != 403
            || challenge.as_deref() != Some(expected.as_str())
            || body["status"] != 403
            || !body["detail"].as_str().unwrap_or_default().contains(needed)
            || documented["content"]
                .get("application/problem+json")
                .is_none()
        {
            failures.push(format!("{method} {path}: {status} {challenge:?} {body}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    // Nothing was changed by the refused requests.
    let (_, detail) = app.get(&format!("/v1/datasets/{dataset}")).await;
    assert_eq!(detail["dataset"]["rows"], 2, "{detail}");
    let (_, jobs) = app.get("/v1/jobs").await;
    assert_eq!(jobs["items"].as_array().unwrap().len(), 1, "{jobs}");
    assert_eq!(jobs["items"][0]["state"], "queued", "{jobs}");
    // The scopes each key has do work.
    let (status, _) = Http::send(app.http.with_key(&read).get("/v1/datasets")).await;
    assert_eq!(status, 200);
    let (status, _) = Http::send(app.http.with_key(&admin).get("/v1/queue?fleet=true")).await;
    assert_eq!(status, 200);
    let (status, _) = Http::send(app.http.with_key(&admin).get("/v1/keys")).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_resources_are_404_like_missing_ones_and_stay_as_they_are() {
    let app = spawn_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let dataset = app.dataset("secret", "n\n1\n2\n").await;
    let (status, job) = app
        .post(
            "/v1/jobs",
            json!({"inputs": [{"table": "t", "dataset": dataset}],
                   "analysis": {"type": "sql", "query": "SELECT n FROM t"}}),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let job = job["id"].as_str().unwrap().to_owned();
    let (_, b_key) = app.tenant_with_key("tenant-b", "read,write,admin").await;
    let b = app.http.with_key(&b_key);
    let a_prefix = auth::keys::prefix_of(&app.key).unwrap();

    // What B asks for of A's is answered as if it did not exist: the same
    // status and the same detail as for an id that exists nowhere.
    let missing = uuid::Uuid::now_v7().to_string();
    for (method, path) in [
        ("GET", "/v1/datasets/{}"),
        ("DELETE", "/v1/datasets/{}"),
        ("POST", "/v1/datasets/{}/parts"),
        ("GET", "/v1/jobs/{}"),
        ("GET", "/v1/jobs/{}?wait=1"),
        ("POST", "/v1/jobs/{}/cancel"),
        ("GET", "/v1/jobs/{}/result"),
        ("GET", "/v1/jobs/{}/result.csv"),
        ("GET", "/v1/jobs/{}/result.parquet"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let id = if path.starts_with("/v1/datasets") {
            &dataset
        } else {
            &job
        };
        let theirs = b
            .request(method.clone(), &path.replace("{}", id))
            .header("content-type", "text/csv")
            .body("n\n3\n");
        let (status, body) = Http::send(theirs).await;
        let nowhere = b
            .request(method.clone(), &path.replace("{}", &missing))
            .header("content-type", "text/csv")
            .body("n\n3\n");
        let (nowhere_status, nowhere_body) = Http::send(nowhere).await;
        assert_eq!(
            (status, nowhere_status),
            (404, 404),
            "{method} {path}: {body}"
        );
        assert_eq!(
            body["detail"].as_str().unwrap().replace(id.as_str(), "ID"),
            nowhere_body["detail"]
                .as_str()
                .unwrap()
                .replace(&missing, "ID"),
            "{method} {path}"
        );
    }
    // Lists and statistics show B nothing of A's.
    let (_, page) = Http::send(b.get("/v1/datasets")).await;
    assert_eq!(page["items"], json!([]));
    let (_, page) = Http::send(b.get(&format!("/v1/jobs?dataset={dataset}"))).await;
    assert_eq!(page["items"], json!([]));
    let (_, stats) = Http::send(b.get("/v1/queue")).await;
    assert_eq!(
        (stats["queued"].clone(), stats["fleet"].clone()),
        (json!(0), json!(false)),
        "{stats}"
    );
    let (_, stats) = app.get("/v1/queue").await;
    assert_eq!(stats["queued"], 1, "{stats}");
    let (_, keys) = Http::send(b.get("/v1/keys")).await;
    assert_eq!(keys["items"].as_array().unwrap().len(), 1, "{keys}");
    assert_ne!(keys["items"][0]["prefix"], a_prefix.as_str());
    // B's jobs cannot read A's dataset.
    let (status, problem) = Http::send(b.post("/v1/jobs").json(&json!({
        "inputs": [{"table": "t", "dataset": dataset}],
        "analysis": {"type": "sql", "query": "SELECT n FROM t"},
    })))
    .await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{problem}"
    );
    // B cannot revoke A's key.
    let (status, _) = Http::send(b.delete(&format!("/v1/keys/{a_prefix}"))).await;
    assert_eq!(status, 404);

    // A's things are as they were, and A's key works.
    let (status, detail) = app.get(&format!("/v1/datasets/{dataset}")).await;
    assert_eq!(
        (status, detail["dataset"]["rows"].clone()),
        (200, json!(2)),
        "{detail}"
    );
    let (_, job) = app.get(&format!("/v1/jobs/{job}")).await;
    assert_eq!(job["state"], "queued", "{job}");
    assert_eq!(job["cancel_requested"], false, "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_created_shown_once_listed_without_secrets_and_revoked() {
    let app = spawn_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let expires = (Utc::now() + chrono::TimeDelta::days(90)).to_rfc3339();
    let (status, created) = app
        .post(
            "/v1/keys",
            json!({"name": "ci", "scopes": ["read", "write"], "expires_at": expires}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    let prefix = created["key"]["prefix"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with(&prefix) && prefix.starts_with("crk_"),
        "{created}"
    );
    assert_eq!(created["key"]["scopes"], json!(["read", "write"]));
    assert!(created["key"].get("revoked_at").is_none(), "{created}");

    // The new key and the old one work side by side (rotation).
    let new = app.http.with_key(&secret);
    let (status, _) = Http::send(new.get("/v1/datasets")).await;
    assert_eq!(status, 200);
    let (status, _) = app.get("/v1/datasets").await;
    assert_eq!(status, 200);

    // Listed, newest first, with no secret anywhere.
    let response = app.http.get("/v1/keys").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap();
    assert!(
        !text.contains(&secret) && !text.contains(&app.key),
        "{text}"
    );
    let list: Value = serde_json::from_str(&text).unwrap();
    let prefixes: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["prefix"].as_str().unwrap())
        .collect();
    assert_eq!(
        prefixes,
        [prefix.as_str(), &auth::keys::prefix_of(&app.key).unwrap()]
    );

    // Refused creations.
    for (body, status) in [
        (
            json!({"name": "old", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}),
            422,
        ),
        (json!({"name": "none", "scopes": []}), 400),
        (json!({"name": "", "scopes": ["read"]}), 400),
        (json!({"name": "x", "scopes": ["root"]}), 400),
        (
            json!({"name": "x", "scopes": ["read"], "tenant": "other"}),
            400,
        ),
    ] {
        let (answered, problem) = app.post("/v1/keys", body.clone()).await;
        assert_eq!(answered, status, "{body}: {problem}");
    }

    // Revoked: refused at once, still listed with its revocation time.
    let (status, _) = Http::send(app.http.delete(&format!("/v1/keys/{prefix}"))).await;
    assert_eq!(status, 204);
    let (status, problem) = Http::send(new.get("/v1/datasets")).await;
    assert_eq!(status, 401, "{problem}");
    let (status, _) = Http::send(app.http.delete(&format!("/v1/keys/{prefix}"))).await;
    assert_eq!(status, 204, "revoking twice changes nothing");
    let (_, list) = app.get("/v1/keys").await;
    assert!(list["items"][0]["revoked_at"].is_string(), "{list}");
    for unknown in ["crk_AAAAAAAA", "nope"] {
        let (status, _) = Http::send(app.http.delete(&format!("/v1/keys/{unknown}"))).await;
        assert_eq!(status, 404, "{unknown}");
    }
    // The old key still works.
    let (status, _) = app.get("/v1/datasets").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_every_cache_through_its_notification() {
    // A TTL longer than any test: only the notification can evict.
    let long = VerifierConfig {
        ttl: Duration::from_secs(3600),
        ..VerifierConfig::default()
    };
    let app = spawn_with(Options {
        workers: false,
        verifier: long.clone(),
        ..Options::default()
    })
    .await;
    // A second replica's cache over the same database.
    let replica = Verifier::start(app.pool().clone(), long);
    replica.listening().await;
    let key = app.key_of(app.tenant, "read").await;
    let prefix = auth::keys::prefix_of(&key).unwrap();
    let (status, _) = Http::send(app.http.with_key(&key).get("/v1/datasets")).await;
    assert_eq!(status, 200);
    replica.verify(&key).await.unwrap();

    // The key is cached: a revocation the caches are not told of (the
    // trigger off) leaves it working, which also shows that a cached key
    // costs no lookup.
    sqlx::query("ALTER TABLE api_keys DISABLE TRIGGER api_keys_changed")
        .execute(app.pool())
        .await
        .unwrap();
    assert!(auth::keys::revoke(app.pool(), None, &prefix).await.unwrap());
    let (status, _) = Http::send(app.http.with_key(&key).get("/v1/datasets")).await;
    assert_eq!(status, 200, "the cached key was read again");
    sqlx::query("ALTER TABLE api_keys ENABLE TRIGGER api_keys_changed")
        .execute(app.pool())
        .await
        .unwrap();

    // A change the trigger announces evicts it everywhere.
    let mut server_told = app.state.auth.verifier.notifications();
    let mut replica_told = replica.notifications();
    let (before_server, before_replica) = (*server_told.borrow(), *replica_told.borrow());
    sqlx::query("UPDATE api_keys SET expires_at = now() + interval '1 day' WHERE prefix = $1")
        .bind(&prefix)
        .execute(app.pool())
        .await
        .unwrap();
    let told = async {
        server_told.wait_for(|n| *n > before_server).await.unwrap();
        replica_told
            .wait_for(|n| *n > before_replica)
            .await
            .unwrap();
    };
    tokio::time::timeout(Duration::from_secs(10), told)
        .await
        .expect("a notification within 10 s");
    let (status, problem) = Http::send(app.http.with_key(&key).get("/v1/datasets")).await;
    assert_eq!(status, 401, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("revoked"),
        "{problem}"
    );
    assert!(matches!(
        replica.verify(&key).await,
        Err(AuthError::RevokedKey { .. })
    ));
    // The app's own key, never changed, still works.
    let (status, _) = app.get("/v1/datasets").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_key_is_read_again_after_the_ttl() {
    let app = spawn_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    // No listener: only the TTL can make it read the key again.
    let verifier = Verifier::new(
        app.pool().clone(),
        VerifierConfig {
            ttl: Duration::from_secs(5),
            ..VerifierConfig::default()
        },
    );
    let key = app.key_of(app.tenant, "read").await;
    let prefix = auth::keys::prefix_of(&key).unwrap();
    let t0 = Utc::now();
    let verified = verifier.verify_at(&key, t0).await.unwrap();
    assert_eq!(verified.tenant, app.tenant);
    assert_eq!(verified.prefix, prefix);
    assert!(auth::keys::revoke(app.pool(), None, &prefix).await.unwrap());
    let within = t0 + chrono::TimeDelta::milliseconds(4900);
    assert!(verifier.verify_at(&key, within).await.is_ok(), "cached");
    let after = t0 + chrono::TimeDelta::seconds(5);
    assert!(matches!(
        verifier.verify_at(&key, after).await,
        Err(AuthError::RevokedKey { .. })
    ));
    // An expiry passes without a lookup.
    let expiring = auth::keys::create(
        app.pool(),
        app.tenant,
        Scopes::all(),
        "short",
        Some(t0 + chrono::TimeDelta::seconds(2)),
    )
    .await
    .unwrap();
    assert!(verifier.verify_at(&expiring.secret, t0).await.is_ok());
    assert!(matches!(
        verifier
            .verify_at(&expiring.secret, t0 + chrono::TimeDelta::seconds(2))
            .await,
        Err(AuthError::ExpiredKey { .. })
    ));
}

/// The key's stored `last_used_at`.
async fn last_used(app: &App, key: &str) -> Option<chrono::DateTime<Utc>> {
    let prefix = auth::keys::prefix_of(key).unwrap();
    auth::keys::get(app.pool(), None, &prefix)
        .await
        .unwrap()
        .unwrap()
        .last_used_at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_used_at_is_written_at_most_once_an_interval_across_replicas() {
    let app = spawn_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let config = VerifierConfig::default();
    assert_eq!(config.last_used_interval, Duration::from_secs(60));
    // Two replicas, with no writer task: flushes happen when the test says.
    let one = Verifier::new(app.pool().clone(), config.clone());
    let two = Verifier::new(app.pool().clone(), config);
    let key = app.key_of(app.tenant, "read").await;
    let t0 = Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap();
    let at = |seconds: i64| t0 + chrono::TimeDelta::seconds(seconds);
    assert_eq!(last_used(&app, &key).await, None);

    // Many requests, one write.
    for s in 0..10 {
        one.verify_at(&key, at(s)).await.unwrap();
    }
    assert_eq!(
        last_used(&app, &key).await,
        None,
        "written on the request path"
    );
    assert_eq!(one.flush_last_used().await.unwrap(), 1);
    assert_eq!(last_used(&app, &key).await, Some(at(0)));
    // Within the interval: nothing to write on this replica...
    one.verify_at(&key, at(59)).await.unwrap();
    assert_eq!(one.flush_last_used().await.unwrap(), 0);
    // ... and another replica's write is skipped by the database.
    two.verify_at(&key, at(30)).await.unwrap();
    assert_eq!(two.flush_last_used().await.unwrap(), 0);
    assert_eq!(last_used(&app, &key).await, Some(at(0)));
    // A minute on, the next use is written.
    one.verify_at(&key, at(60)).await.unwrap();
    assert_eq!(one.flush_last_used().await.unwrap(), 1);
    assert_eq!(last_used(&app, &key).await, Some(at(60)));
    two.verify_at(&key, at(95)).await.unwrap();
    assert_eq!(two.flush_last_used().await.unwrap(), 0);
    assert_eq!(last_used(&app, &key).await, Some(at(60)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_records_last_used_off_the_request_path() {
    let app = spawn_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let key = app.key_of(app.tenant, "read").await;
    let mut recorded = app.state.auth.verifier.recorded();
    let before = *recorded.borrow();
    let started = Utc::now();
    let (status, _) = Http::send(app.http.with_key(&key).get("/v1/datasets")).await;
    assert_eq!(status, 200);
    // The writer task records the use after the answer.
    tokio::time::timeout(Duration::from_secs(10), recorded.wait_for(|n| *n > before))
        .await
        .expect("recorded within 10 s")
        .unwrap();
    let used = last_used(&app, &key).await;
    assert!(
        used.is_some_and(|t| t >= started - chrono::TimeDelta::seconds(1)),
        "{used:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_every_request_acts_for_the_open_tenant() {
    let app = spawn_with(Options {
        workers: false,
        open: true,
        ..Options::default()
    })
    .await;
    let open = app.http.anonymous();
    let (status, created) = Http::send(
        open.post("/v1/datasets?name=n")
            .header("content-type", "text/csv")
            .body("n\n1\n"),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    // It is the open tenant's: its key sees it.
    let (_, page) = app.get("/v1/datasets").await;
    assert_eq!(page["items"][0]["id"], created["dataset"]["id"], "{page}");
    let (status, _) = Http::send(open.get("/v1/keys")).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_past_the_storage_quota_is_409_and_stores_nothing() {
    let app = spawn_with(Options {
        workers: false,
        storage_quota: Some(16),
        ..Options::default()
    })
    .await;
    let (status, problem) = app.upload_csv("name=big", "n\n1\n2\n3\n").await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["type"], "/problems/quota-exceeded", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("quota of 16 bytes"),
        "{problem}"
    );
    assert!(app.stored_files().is_empty(), "{:?}", app.stored_files());
    let (_, page) = app.get("/v1/datasets").await;
    assert_eq!(page["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_past_the_tenants_queued_limit_is_429_with_retry_after() {
    let app = spawn_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let limits = crunch_queue::TenantLimits {
        max_running: None,
        max_queued: Some(1),
        storage_quota_bytes: None,
    };
    assert!(
        app.state
            .queue
            .set_tenant_limits(app.tenant, limits)
            .await
            .unwrap()
    );
    let dataset = app.dataset("numbers", "n\n1\n").await;
    let job = json!({"inputs": [{"table": "t", "dataset": dataset}],
                     "analysis": {"type": "sql", "query": "SELECT n FROM t"}});
    let (status, first) = app.post("/v1/jobs", job.clone()).await;
    assert_eq!(status, 201, "{first}");
    for (path, body) in [
        ("/v1/jobs", job.clone()),
        ("/v1/job-batches", json!({"jobs": [job.clone()]})),
    ] {
        let response = app.http.post(path).json(&body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 429, "{path}");
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry_after >= 1, "{path}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "/problems/too-many-requests", "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("at most 1 queued"),
            "{problem}"
        );
        let documented = &spec()["paths"][path]["post"]["responses"]["429"];
        assert!(
            documented["headers"].get("RETRY-AFTER").is_some(),
            "{path}: {documented}"
        );
    }
    // Nothing more was queued; another tenant is not held back.
    let (_, page) = app.get("/v1/jobs").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    let (tenant_b, b_key) = app.tenant_with_key("tenant-b", "read,write").await;
    assert_ne!(tenant_b, app.tenant);
    let b = app.http.with_key(&b_key);
    let (status, created) = Http::send(
        b.post("/v1/datasets?name=n")
            .header("content-type", "text/csv")
            .body("n\n1\n"),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let theirs = created["dataset"]["id"].as_str().unwrap();
    let (status, job) = Http::send(b.post("/v1/jobs").json(&json!({
        "inputs": [{"table": "t", "dataset": theirs}],
        "analysis": {"type": "sql", "query": "SELECT n FROM t"},
    })))
    .await;
    assert_eq!(status, 201, "{job}");
}
