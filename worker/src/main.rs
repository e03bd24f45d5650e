//! The crunch worker process: runs analysis jobs from the queue until
//! SIGTERM, then drains (see `CRUNCH_SHUTDOWN_GRACE_SECONDS`) and exits 0.

use std::sync::Arc;

use anyhow::Context;
use crunch_engine::Engine;
use crunch_queue::{Maintenance, Queue, TenantDefaults};
use crunch_store::Store;
use crunch_worker::{
    handler::{Deps, run_worker},
    protection::{AgentProtection, ProtectionConfig},
    settings::{WorkerCli, from_process, shutdown_signal},
};

fn main() -> anyhow::Result<()> {
    let cli: WorkerCli = from_process();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.worker.log))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: WorkerCli) -> anyhow::Result<()> {
    // Both are required arguments: clap has refused to start without them.
    let url = cli
        .worker
        .database_url
        .as_deref()
        .context("DATABASE_URL (or --database-url) is required")?;
    let store_url = cli
        .worker
        .store_url
        .as_deref()
        .context("CRUNCH_STORE_URL (or --store-url) is required")?;
    let (mut options, engine) = cli.worker.worker_options();
    match cli.ecs_agent_uri.as_deref() {
        Some(agent) => {
            let protection = AgentProtection::new(agent, ProtectionConfig::default())
                .context("ECS_AGENT_URI")?;
            options.queue = options.queue.protection(Arc::new(protection));
            tracing::info!(agent, "holding ECS scale-in protection while a job runs");
        }
        None => tracing::info!("scale-in protection off: ECS_AGENT_URI is not set (not on ECS)"),
    }
    // Claims and result writes fail fast during an outage (the pool's
    // acquire timeout) and are retried. The sessions are named after the
    // worker, and so are those of the backend's I/O thread, which copies
    // these options, so `pg_stat_activity` tells which worker holds them.
    let pool =
        crunch_db::connect_lazy_as(url, 4, options.queue.worker_id()).context("DATABASE_URL")?;
    // The claim holds tenants to this default; enqueue limits are the
    // server's.
    let queue =
        Queue::new(pool.clone(), crunch_worker::registry()).with_tenant_defaults(TenantDefaults {
            max_running: cli.worker.tenant_max_running,
            max_queued: None,
        });
    let store = Store::open(pool, store_url)?;
    let engine = Engine::new(engine)?;
    tracing::info!(
        worker = options.queue.worker_id(),
        memory_limit = engine.memory_limit(),
        tenant_max_running = ?cli.worker.tenant_max_running,
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
