//! The crunch server. With no `DATABASE_URL` it runs standalone: a private
//! PostgreSQL cluster in the data directory (reused next time), a local
//! dataset store, and in-process workers. `crunch-server migrate` applies
//! the schema and exits.

use std::time::Duration;

use anyhow::Context;
use crunch_db::{ClusterOptions, LocalCluster};
use crunch_engine::Engine;
use crunch_queue::{Maintenance, Queue};
use crunch_server::{
    scaling::{AwsClients, Publisher, WorkerService},
    settings::{ServerCli, ServerCommand},
    state::{AppState, Limits},
};
use crunch_store::{Store, Sweep};
use crunch_worker::{
    handler::{Deps, run_worker},
    settings::{from_process, shutdown_signal},
};
use poem::{Server, listener::TcpListener};
use tokio::sync::watch;

fn main() -> anyhow::Result<()> {
    let cli: ServerCli = from_process();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.worker.log))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: ServerCli) -> anyhow::Result<()> {
    let data_dir = std::path::absolute(&cli.data_dir).context("CRUNCH_DATA_DIR")?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;

    // Standalone: no DATABASE_URL means a private cluster of our own.
    let (url, cluster) = match &cli.worker.database_url {
        Some(url) => (url.clone(), None),
        None => {
            let dir = data_dir.join("postgres");
            tracing::info!(
                "no DATABASE_URL: running a private PostgreSQL in {}",
                dir.display()
            );
            let cluster = LocalCluster::start(&dir, ClusterOptions::default())
                .await
                .context("starting the private PostgreSQL cluster")?;
            (cluster.url("crunch"), Some(cluster))
        }
    };
    let pool = crunch_db::connect_and_migrate(&url, cli.db_max_connections)
        .await
        .context("connecting to PostgreSQL and applying the schema")?;
    if cli.command == Some(ServerCommand::Migrate) {
        tracing::info!("schema is up to date");
        return Ok(());
    }

    let store_url = cli.store_url(&data_dir);
    let store = Store::open(pool.clone(), &store_url).context("opening the dataset store")?;
    let queue = Queue::new(pool, crunch_worker::registry());
    let limits = Limits {
        max_upload_bytes: cli.max_upload_bytes,
        max_columns: cli.max_columns,
        ..Limits::default()
    };
    let state = AppState::new(queue.clone(), store.clone(), limits);

    let (stop, stopped) = watch::channel(false);
    let when_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let waiters = state.waiters.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        // Long-polls answer now, with the job as it is, so the graceful
        // shutdown below does not wait out their timeouts.
        waiters.close();
        let _ = stop.send(true);
    });

    let maintenance = tokio::spawn(
        Maintenance {
            retention: Some(cli.retention),
            ..Maintenance::default()
        }
        .run(queue.clone(), when_stopped()),
    );
    // Objects nothing refers to (results of pruned jobs and of attempts
    // that did not count, parts orphaned by a crash) are deleted hourly.
    let sweep = tokio::spawn(Sweep::default().run(store.clone(), queue.clone(), when_stopped()));

    let publisher = match (&cli.ecs_cluster, &cli.worker_service) {
        (Some(cluster), Some(service)) => {
            let service = WorkerService {
                cluster: cluster.clone(),
                service: service.clone(),
            };
            tracing::info!(
                cluster = service.cluster,
                service = service.service,
                "publishing the worker-scaling metric every minute"
            );
            let publisher = Publisher {
                queue: queue.clone(),
                aws: AwsClients::from_env().await,
                service,
                status: state.scaling.clone(),
            };
            Some(tokio::spawn(publisher.run(when_stopped())))
        }
        (None, None) => {
            tracing::info!(
                "worker-scaling metric publisher off: CRUNCH_ECS_CLUSTER and CRUNCH_WORKER_SERVICE are not set (not on AWS)"
            );
            None
        }
        _ => anyhow::bail!("set both CRUNCH_ECS_CLUSTER and CRUNCH_WORKER_SERVICE, or neither"),
    };

    let workers = cli.workers;
    let mut worker_tasks = Vec::new();
    if workers > 0 {
        let (options, engine_config) = cli.worker.worker_options();
        let engine = Engine::new(engine_config)?;
        for n in 0..workers {
            let mut options = options.clone();
            let id = format!("{}-{n}", options.queue.worker_id());
            options.queue = options.queue.with_worker_id(id);
            let deps = Deps {
                store: store.clone(),
                engine: engine.clone(),
            };
            worker_tasks.push(tokio::spawn(run_worker(
                queue.clone(),
                deps,
                options,
                when_stopped(),
            )));
        }
        tracing::info!("{workers} in-process worker(s) running");
    }

    let listen = cli.listen;
    let listener = TcpListener::bind(listen);
    println!("crunch API:     http://{listen}/v1/datasets");
    println!("API docs (UI):  http://{listen}/docs");
    println!("OpenAPI spec:   http://{listen}/openapi.json");
    Server::new(listener)
        .run_with_graceful_shutdown(
            crunch_server::app(state),
            when_stopped(),
            Some(Duration::from_secs(30)),
        )
        .await?;

    for task in worker_tasks {
        if let Err(e) = task.await? {
            tracing::warn!("a worker stopped with an error: {e}");
        }
    }
    maintenance.await?;
    sweep.await?;
    if let Some(publisher) = publisher {
        publisher.await?;
    }
    if let Some(cluster) = cluster {
        cluster.stop()?;
    }
    Ok(())
}
