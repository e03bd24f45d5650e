//! The crunch server. With no `DATABASE_URL` it runs standalone: a private
//! PostgreSQL cluster in the data directory (reused next time), a local
//! dataset store, and in-process workers. `crunch-server migrate` applies
//! the schema and exits.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use crunch_db::{ClusterOptions, LocalCluster};
use crunch_engine::Engine;
use crunch_queue::{Maintenance, Queue};
use crunch_server::{
    metrics::Metrics,
    scaling::{AwsClients, Publisher, ScalingStatus, WorkerService},
    state::{AppState, Limits},
    waiters::Waiters,
};
use crunch_store::{Store, Sweep};
use crunch_worker::{
    config::{Config, Setting},
    handler::{Deps, run_worker},
    settings::{WORKER_SETTINGS, shutdown_signal, worker_options},
};
use poem::{Server, listener::TcpListener};
use tokio::sync::watch;

const SERVER_SETTINGS: &[Setting] = &[
    Setting {
        env: "CRUNCH_LISTEN",
        flag: "listen",
        default: "127.0.0.1:8080",
        help: "address the API listens on",
    },
    Setting {
        env: "CRUNCH_DATA_DIR",
        flag: "data-dir",
        default: ".crunch",
        help: "home of the private PostgreSQL cluster and the default local store",
    },
    Setting {
        env: "CRUNCH_WORKERS",
        flag: "workers",
        default: "1",
        help: "in-process workers (0 when separate worker processes run)",
    },
    Setting {
        env: "CRUNCH_MAX_UPLOAD_BYTES",
        flag: "max-upload-bytes",
        default: "1073741824",
        help: "largest dataset upload",
    },
    Setting {
        env: "CRUNCH_MAX_COLUMNS",
        flag: "max-columns",
        default: "10000",
        help: "most columns an upload may have",
    },
    Setting {
        env: "CRUNCH_RETENTION_HOURS",
        flag: "retention-hours",
        default: "168",
        help: "finished jobs are pruned after this long",
    },
    Setting {
        env: "CRUNCH_DB_MAX_CONNECTIONS",
        flag: "db-max-connections",
        default: "20",
        help: "the server's database pool size",
    },
    Setting {
        env: "CRUNCH_ECS_CLUSTER",
        flag: "ecs-cluster",
        default: "",
        help: "ECS cluster of the worker service; with CRUNCH_WORKER_SERVICE, turns on the worker-scaling metric publisher",
    },
    Setting {
        env: "CRUNCH_WORKER_SERVICE",
        flag: "worker-service",
        default: "",
        help: "ECS service of the workers, whose BacklogPerTask metric this server publishes",
    },
    Setting {
        env: "CRUNCH_LOG",
        flag: "log",
        default: "info",
        help: "log filter (tracing env-filter syntax)",
    },
];

fn settings() -> Vec<Setting> {
    SERVER_SETTINGS
        .iter()
        .chain(WORKER_SETTINGS)
        .copied()
        .collect()
}

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let migrate_only = args.first().is_some_and(|a| a == "migrate");
    if migrate_only {
        args.remove(0);
    }
    let settings = settings();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "{}",
            crunch_worker::config::help("crunch-server [migrate]", &settings)
        );
        return Ok(());
    }
    let config = Config::from_parts(&settings, &args, |name| std::env::var(name).ok())?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            config.text("CRUNCH_LOG").unwrap_or("info"),
        ))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(config, migrate_only))
}

async fn run(config: Config, migrate_only: bool) -> anyhow::Result<()> {
    let data_dir = PathBuf::from(config.text("CRUNCH_DATA_DIR").unwrap_or(".crunch"));
    let data_dir = std::path::absolute(&data_dir).context("CRUNCH_DATA_DIR")?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;

    // Standalone: no DATABASE_URL means a private cluster of our own.
    let (url, cluster) = match config.text("DATABASE_URL") {
        Some(url) => (url.to_owned(), None),
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
    let max_connections = config.parse("CRUNCH_DB_MAX_CONNECTIONS")?.unwrap_or(20);
    let pool = crunch_db::connect_and_migrate(&url, max_connections)
        .await
        .context("connecting to PostgreSQL and applying the schema")?;
    if migrate_only {
        tracing::info!("schema is up to date");
        return Ok(());
    }

    let store_url = match config.text("CRUNCH_STORE_URL") {
        Some(url) => url.to_owned(),
        None => format!("file://{}", data_dir.join("store").display()),
    };
    let store = Store::open(pool.clone(), &store_url).context("opening the dataset store")?;
    let queue = Queue::new(pool, crunch_worker::registry());
    let limits = Limits {
        max_upload_bytes: config.parse("CRUNCH_MAX_UPLOAD_BYTES")?.unwrap_or(1 << 30),
        max_columns: config
            .parse("CRUNCH_MAX_COLUMNS")?
            .unwrap_or(crunch_store::DEFAULT_MAX_COLUMNS),
        ..Limits::default()
    };
    let state = AppState {
        queue: queue.clone(),
        store: store.clone(),
        waiters: Waiters::start(queue.clone()),
        limits,
        metrics: Metrics::default(),
        scaling: ScalingStatus::default(),
    };

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

    let retention = Duration::from_secs(
        config
            .parse::<u64>("CRUNCH_RETENTION_HOURS")?
            .unwrap_or(168)
            * 3600,
    );
    let maintenance = tokio::spawn(
        Maintenance {
            retention: Some(retention),
            ..Maintenance::default()
        }
        .run(queue.clone(), when_stopped()),
    );
    // Objects nothing refers to (results of pruned jobs and of attempts
    // that did not count, parts orphaned by a crash) are deleted hourly.
    let sweep = tokio::spawn(Sweep::default().run(store.clone(), queue.clone(), when_stopped()));

    let publisher = match (
        config.text("CRUNCH_ECS_CLUSTER"),
        config.text("CRUNCH_WORKER_SERVICE"),
    ) {
        (Some(cluster), Some(service)) => {
            let service = WorkerService {
                cluster: cluster.to_owned(),
                service: service.to_owned(),
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

    let workers: usize = config.parse("CRUNCH_WORKERS")?.unwrap_or(1);
    let mut worker_tasks = Vec::new();
    if workers > 0 {
        let (options, engine_config) = worker_options(&config)?;
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

    let listen: SocketAddr = config
        .parse("CRUNCH_LISTEN")?
        .context("CRUNCH_LISTEN must be an address such as 127.0.0.1:8080")?;
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
