//! A zero-downtime deploy: new server and worker start beside the old
//! ones, the load balancer moves clients to the new server once it is
//! ready, and the old ones get SIGTERM while clients keep submitting and
//! reading. No client request fails and every job succeeds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering},
    },
    time::Duration,
};

use crunch_faults::{Api, Env, NUMBERS, Reply, SECONDS_QUERY, eventually, quick_query};
use crunch_queue::JobState;
use futures_util::future::join_all;
use serde_json::json;
use uuid::Uuid;

/// Clients submitting and reading in a loop.
const CLIENTS: usize = 4;

/// Long-polls open on the old server when it is told to stop.
const LONG_POLLS: usize = 8;

/// The load balancer: the target every new request goes to.
struct Balancer {
    target: Mutex<(usize, Api)>,
}

impl Balancer {
    fn pick(&self) -> (usize, Api) {
        self.target.lock().unwrap().clone()
    }
}

/// What the clients did.
#[derive(Default)]
struct Traffic {
    acked: Mutex<Vec<(Uuid, u32)>>,
    requests: AtomicUsize,
    failures: Mutex<Vec<String>>,
    stop: AtomicBool,
    next: AtomicU32,
}

impl Traffic {
    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    fn check(&self, what: &str, reply: Result<Reply, reqwest::Error>) -> Option<Reply> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        match reply {
            Ok(reply) if reply.ok() => Some(reply),
            Ok(reply) => {
                let failure = format!("{what}: {} {}", reply.status, reply.body);
                self.failures.lock().unwrap().push(failure);
                None
            }
            Err(e) => {
                self.failures.lock().unwrap().push(format!("{what}: {e}"));
                None
            }
        }
    }
}

/// One client: submit a job, wait for it (a long-poll), list recent jobs;
/// again and again, each request to the balancer's current target. `generation`
/// records the target of the latest request it started.
async fn client(
    traffic: Arc<Traffic>,
    balancer: Arc<Balancer>,
    generation: Arc<AtomicUsize>,
    dataset: String,
) {
    while !traffic.stop.load(Ordering::SeqCst) {
        let k = traffic.next.fetch_add(1, Ordering::SeqCst) % NUMBERS;
        let (g, api) = balancer.pick();
        generation.store(g, Ordering::SeqCst);
        let submitted = api.submit(&dataset, &quick_query(k), 3).await;
        let Some(reply) = traffic.check("submit", submitted) else {
            continue;
        };
        let id = reply.id();
        traffic.acked.lock().unwrap().push((id, k));
        let (g, api) = balancer.pick();
        generation.store(g, Ordering::SeqCst);
        traffic.check("get", api.get(&format!("/v1/jobs/{id}?wait=10")).await);
        let (g, api) = balancer.pick();
        generation.store(g, Ordering::SeqCst);
        traffic.check("list", api.get("/v1/jobs?limit=5").await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_beside_the_old_processes_loses_no_request_and_no_job() {
    let env = Env::start().await;
    let mut old_server = env.server("old-server").await;
    let mut old_worker = env.worker(
        "old-worker",
        &[("CRUNCH_SHUTDOWN_GRACE_SECONDS", "100".to_owned())],
    );
    let dataset = old_server.api.numbers().await;

    let balancer = Arc::new(Balancer {
        target: Mutex::new((1, old_server.api.clone())),
    });
    let traffic = Arc::new(Traffic::default());
    let generations: Vec<Arc<AtomicUsize>> = (0..CLIENTS)
        .map(|_| Arc::new(AtomicUsize::new(1)))
        .collect();
    let clients: Vec<_> = generations
        .iter()
        .map(|g| {
            tokio::spawn(client(
                traffic.clone(),
                balancer.clone(),
                g.clone(),
                dataset.clone(),
            ))
        })
        .collect();
    let more_acked = |n: usize| {
        let traffic = traffic.clone();
        let target = traffic.acked() + n;
        async move {
            eventually(
                &format!("{target} acknowledged submits"),
                Duration::from_secs(120),
                || std::future::ready((traffic.acked() >= target).then_some(())),
            )
            .await;
        }
    };
    more_acked(10).await;

    // The new version: the schema step, then a server beside the old one.
    let migrated = env.migrate().await;
    assert!(
        migrated.success(),
        "crunch-server migrate exited with {migrated}"
    );
    let new_server = env.server("new-server").await;

    // A job of seconds that the old worker is running when it is told to
    // stop, and long-polls on it that the old server is serving then.
    let long = old_server.api.submit_ok(&dataset, SECONDS_QUERY, 3).await;
    eventually(
        "the old worker to run the long job",
        Duration::from_secs(60),
        || async { (env.job(long).await.state == JobState::Running).then_some(()) },
    )
    .await;
    let _new_worker = env.worker("new-worker", &[]);
    let polls: Vec<_> = (0..LONG_POLLS)
        .map(|_| {
            let api = old_server.api.clone();
            tokio::spawn(async move { api.get(&format!("/v1/jobs/{long}?wait=30")).await })
        })
        .collect();

    // The new server is ready: the balancer sends new requests to it. Once
    // every client has moved, the old server only has the long-polls left.
    assert!(new_server.api.ready().await);
    *balancer.target.lock().unwrap() = (2, new_server.api.clone());
    eventually(
        "every client to move to the new server",
        Duration::from_secs(60),
        || {
            let moved = generations.iter().all(|g| g.load(Ordering::SeqCst) == 2);
            std::future::ready(moved.then_some(()))
        },
    )
    .await;
    let served = old_server
        .api
        .get("/healthz")
        .await
        .expect("the old server");
    assert_eq!(served.status, 200);
    let running = env.job(long).await;
    assert_eq!(running.state, JobState::Running, "{running:?}");
    assert_eq!(
        running.worker_id.as_deref(),
        Some("old-worker"),
        "{running:?}"
    );
    old_server.proc.signal("TERM");
    old_worker.signal("TERM");

    let mut saw_the_end = 0;
    for poll in join_all(polls).await {
        let reply = poll.expect("a long-poll task");
        if let Some(reply) = traffic.check("long-poll", reply) {
            saw_the_end += usize::from(reply.body["state"] == "succeeded");
        }
    }
    let status = old_server.proc.wait_exit(Duration::from_secs(60)).await;
    assert!(status.success(), "the old server exited with {status}");
    let status = old_worker.wait_exit(Duration::from_secs(120)).await;
    assert!(status.success(), "the old worker exited with {status}");
    more_acked(10).await;

    traffic.stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.expect("a client task");
    }
    let failures = traffic.failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    let acked = traffic.acked.lock().unwrap().clone();
    eprintln!(
        "{} requests, {} jobs submitted, none failed; {saw_the_end} of {LONG_POLLS} long-polls saw the job finish",
        traffic.requests.load(Ordering::SeqCst),
        acked.len()
    );

    // The old worker finished what it had; every job succeeded.
    let long_job = &env.all_terminal(&[long], Duration::from_secs(60)).await[0];
    assert_eq!(long_job.state, JobState::Succeeded, "{long_job:?}");
    assert_eq!(long_job.attempt, 1, "{long_job:?}");
    assert_eq!(long_job.worker_id.as_deref(), Some("old-worker"));
    let ids: Vec<Uuid> = acked.iter().map(|(id, _)| *id).collect();
    let jobs = env.all_terminal(&ids, Duration::from_secs(120)).await;
    for ((id, k), job) in acked.iter().zip(&jobs) {
        assert_eq!(job.state, JobState::Succeeded, "{job:?}");
        assert_eq!(new_server.api.rows(*id).await, vec![json!({ "n": k })]);
    }
}
