//! PostgreSQL restarts (`pg_ctl restart`) and crashes (an immediate stop)
//! while clients submit and workers work. Every submit that got a 2xx
//! exists and finishes; the server and workers reconnect by themselves;
//! while the database is down the API answers 503 with a problem body and
//! `/readyz` fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use crunch_faults::{Api, Env, NUMBERS, Reply, eventually, quick_query};
use crunch_queue::JobState;
use serde_json::json;
use uuid::Uuid;

/// Concurrent submitting clients.
const CLIENTS: usize = 4;

/// What the clients saw.
#[derive(Default)]
struct Load {
    /// Jobs acknowledged with a 2xx, with the count each must report.
    acked: Mutex<Vec<(Uuid, u32)>>,
    /// 503 answers with a problem body.
    unavailable: AtomicUsize,
    /// Anything else that was not a 2xx.
    unexpected: Mutex<Vec<String>>,
    stop: AtomicBool,
    next: AtomicU32,
}

impl Load {
    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Submits jobs until told to stop.
    async fn submit(self: Arc<Self>, api: Api, dataset: String) {
        while !self.stop.load(Ordering::SeqCst) {
            let k = self.next.fetch_add(1, Ordering::SeqCst) % NUMBERS;
            // Attempts to spare: an outage longer than a lease costs the
            // running jobs theirs.
            match api.submit(&dataset, &quick_query(k), 10).await {
                Ok(reply) if reply.ok() => self.acked.lock().unwrap().push((reply.id(), k)),
                Ok(reply) if is_unavailable(&reply) => {
                    self.unavailable.fetch_add(1, Ordering::SeqCst);
                }
                Ok(reply) => self.unexpected.lock().unwrap().push(format!(
                    "{} {} {}",
                    reply.status, reply.content_type, reply.body
                )),
                Err(e) => self
                    .unexpected
                    .lock()
                    .unwrap()
                    .push(format!("no answer: {e}")),
            }
        }
    }
}

fn is_unavailable(reply: &Reply) -> bool {
    reply.status == 503
        && reply.content_type == "application/problem+json"
        && reply.body["status"] == 503
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_jobs_survive_postgres_restarts_and_crashes_and_everything_reconnects_by_itself()
 {
    let env = Env::start().await;
    let mut server = env.server("server").await;
    let api = &server.api;
    let dataset = api.numbers().await;
    let mut workers = [env.worker("w1", &[]), env.worker("w2", &[])];
    let pids: Vec<u32> = workers.iter().map(|w| w.pid()).collect();
    let server_pid = server.proc.pid();

    let load = Arc::new(Load::default());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(load.clone().submit(api.clone(), dataset.clone())))
        .collect();
    let more_acked = |n: usize| {
        let load = load.clone();
        let target = load.acked() + n;
        async move {
            eventually(
                &format!("{target} acknowledged submits"),
                Duration::from_secs(120),
                || std::future::ready((load.acked() >= target).then_some(())),
            )
            .await;
        }
    };
    more_acked(10).await;

    // A clean restart, as `pg_ctl restart` does it.
    tokio::task::block_in_place(|| env.cluster.restart()).expect("restarting PostgreSQL");
    more_acked(10).await;

    // A crash. While it is down, the API answers 503 with a problem body,
    // and readiness fails.
    tokio::task::block_in_place(|| env.cluster.kill()).expect("killing PostgreSQL");
    let asked = Instant::now();
    let (ready, queue) = tokio::join!(api.get("/readyz"), api.get("/v1/queue"));
    // The pool gives up after its acquire timeout: an outage is a prompt
    // 503, not a request that hangs.
    let waited = asked.elapsed();
    assert!(
        waited < crunch_db::ACQUIRE_TIMEOUT + Duration::from_secs(5),
        "the answers during the outage took {waited:?}"
    );
    let ready = ready.expect("an answer from /readyz");
    assert!(
        !ready.ok(),
        "/readyz answered {} while the database was down",
        ready.status
    );
    let queue = queue.expect("an answer from /v1/queue");
    assert!(is_unavailable(&queue), "{queue:?}");
    eventually(
        "a client's submit to be answered 503",
        Duration::from_secs(120),
        || std::future::ready((load.unavailable.load(Ordering::SeqCst) > 0).then_some(())),
    )
    .await;
    tokio::task::block_in_place(|| env.cluster.start_again()).expect("starting PostgreSQL");
    more_acked(10).await;

    load.stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.expect("a client task");
    }
    let acked = load.acked.lock().unwrap().clone();
    let unexpected = load.unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "answers other than 2xx and 503: {unexpected:?}"
    );
    eprintln!(
        "{} submits acknowledged, {} answered 503",
        acked.len(),
        load.unavailable.load(Ordering::SeqCst)
    );

    // Every acknowledged job exists and succeeds, with the right answer.
    let ids: Vec<Uuid> = acked.iter().map(|(id, _)| *id).collect();
    let jobs = env.all_terminal(&ids, Duration::from_secs(180)).await;
    for ((id, k), job) in acked.iter().zip(&jobs) {
        assert_eq!(job.state, JobState::Succeeded, "{job:?}");
        assert_eq!(api.rows(*id).await, vec![json!({ "n": k })]);
    }
    // By the processes that were there all along.
    assert!(server.proc.exited().is_none(), "the server exited");
    assert_eq!(server.proc.pid(), server_pid);
    for (worker, pid) in workers.iter_mut().zip(pids) {
        assert!(worker.exited().is_none(), "{} exited", worker.name());
        assert_eq!(worker.pid(), pid);
    }
    assert!(api.ready().await);
}
