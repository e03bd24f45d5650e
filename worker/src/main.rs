//! The crunch worker process: runs analysis jobs from the queue until
//! SIGTERM, then drains (see `CRUNCH_SHUTDOWN_GRACE_SECONDS`) and exits 0.

use std::sync::Arc;

use anyhow::Context;
use crunch_engine::Engine;
use crunch_queue::{Maintenance, Queue};
use crunch_store::Store;
use crunch_worker::{
    config::{Config, Setting},
    handler::{Deps, run_worker},
    protection::{AgentProtection, ProtectionConfig},
    settings::{WORKER_SETTINGS, shutdown_signal, worker_options},
};

const LOG: Setting = Setting {
    env: "CRUNCH_LOG",
    flag: "log",
    default: "info",
    help: "log filter (tracing env-filter syntax)",
};

/// Only the worker binary holds protection: it is the ECS service that
/// scales on the backlog. (The server's in-process workers share a task
/// with the API, whose task count is not the workers'.)
const ECS_AGENT: Setting = Setting {
    env: "ECS_AGENT_URI",
    flag: "ecs-agent-uri",
    default: "",
    help: "set by ECS: the container agent, through which the worker holds scale-in protection while it holds a job",
};

fn main() -> anyhow::Result<()> {
    let mut settings = WORKER_SETTINGS.to_vec();
    settings.push(LOG);
    settings.push(ECS_AGENT);
    let Some(config) = Config::load("crunch-worker", &settings)? else {
        return Ok(());
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            config.text("CRUNCH_LOG").unwrap_or("info"),
        ))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    let url = config
        .text("DATABASE_URL")
        .context("DATABASE_URL (or --database-url) is required")?
        .to_owned();
    let store_url = config
        .text("CRUNCH_STORE_URL")
        .context("CRUNCH_STORE_URL (or --store-url) is required")?
        .to_owned();
    let (mut options, engine) = worker_options(&config)?;
    match config.text("ECS_AGENT_URI") {
        Some(agent) => {
            let protection = AgentProtection::new(agent, ProtectionConfig::default())
                .context("ECS_AGENT_URI")?;
            options.queue = options.queue.protection(Arc::new(protection));
            tracing::info!(agent, "holding ECS scale-in protection while a job runs");
        }
        None => tracing::info!("scale-in protection off: ECS_AGENT_URI is not set (not on ECS)"),
    }
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        // Claims and result writes fail fast during an outage and are
        // retried; they need not hold a task for sqlx's default 30 s.
        .acquire_timeout(crunch_db::ACQUIRE_TIMEOUT)
        .connect_lazy(&url)
        .context("DATABASE_URL")?;
    let queue = Queue::new(pool.clone(), crunch_worker::registry());
    let store = Store::open(pool, &store_url)?;
    let engine = Engine::new(engine)?;
    tracing::info!(
        worker = options.queue.worker_id(),
        memory_limit = engine.memory_limit(),
        "worker starting"
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let maintenance = {
        let queue = queue.clone();
        let mut stopped = stopped.clone();
        // Rescue only: pruning is the server's, by its retention setting.
        let rescue_only = Maintenance {
            retention: None,
            ..Maintenance::default()
        };
        tokio::spawn(rescue_only.run(queue, async move {
            let _ = stopped.wait_for(|s| *s).await;
        }))
    };
    let mut stopped_worker = stopped.clone();
    run_worker(queue, Deps { store, engine }, options, async move {
        let _ = stopped_worker.wait_for(|s| *s).await;
    })
    .await?;
    maintenance.await?;
    tracing::info!("worker stopped");
    Ok(())
}
