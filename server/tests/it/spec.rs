//! The committed `openapi.json` is the spec the server serves. Set
//! `UPDATE_OPENAPI=1` to rewrite it after changing the API on purpose.

use crate::common::{Options, spawn_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_openapi_json_matches_the_served_spec() {
    let app = spawn_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let served = app
        .http
        .get("/openapi.json")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut served: serde_json::Value = serde_json::from_str(&served).unwrap();
    // Keys sorted whatever serde_json's features in this build (another
    // crate may turn on `preserve_order`), so the file does not churn.
    sort_keys(&mut served);
    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == pretty,
        "openapi.json is out of date; run `UPDATE_OPENAPI=1 cargo test -p crunch-server --test it spec::` and commit it"
    );
}

fn sort_keys(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.sort_keys();
            map.values_mut().for_each(sort_keys);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}
