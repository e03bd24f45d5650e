//! The crunch server. With no `DATABASE_URL` it runs standalone: a private
//! PostgreSQL cluster in the data directory (reused next time), a local
//! dataset store, in-process workers, and on first start an API key in
//! `<data-dir>/api-key`. `crunch-server migrate` applies the schema and
//! exits; `crunch-server tenants|keys …` manage tenants and API keys.

use std::{
    fs::OpenOptions,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use chrono::{DateTime, Utc};
use crunch_db::{ClusterOptions, LocalCluster};
use crunch_engine::Engine;
use crunch_queue::{Maintenance, Queue, TenantDefaults, TenantId};
use crunch_server::{
    auth::{AuthMode, CreatedKey, Scopes, Tenant, keys, tenants},
    scaling::{AwsClients, Publisher, WorkerService},
    settings::{AuthSetting, KeysCommand, ServerCli, ServerCommand, TenantsCommand},
    state::{AppState, Limits},
};
use crunch_store::{Store, Sweep};
use crunch_worker::{
    handler::{Deps, run_worker},
    settings::{from_process, shutdown_signal},
};
use poem::{
    EndpointExt, Server,
    listener::{Listener, TcpListener},
};
use sqlx::PgPool;
use tokio::sync::watch;

use crunch_server::exposure::{AllowedHosts, Cors, HostCheck};

/// The file in the data directory holding the standalone server's first
/// key, readable by its owner only.
const API_KEY_FILE: &str = "api-key";

/// The `application_name` of the sessions of `tenants` and `keys`
/// commands, told apart from the serving processes in `pg_stat_activity`.
const CLI_APPLICATION_NAME: &str = "crunch-server-cli";

/// The name of the key made from CRUNCH_BOOTSTRAP_KEY_SHA256.
const BOOTSTRAP_KEY_NAME: &str = "bootstrap";

/// The name of the key a standalone server creates on first start.
const STANDALONE_KEY_NAME: &str = "standalone";

fn main() -> anyhow::Result<()> {
    let cli: ServerCli = from_process();
    let filter = tracing_subscriber::EnvFilter::new(&cli.worker.log);
    if cli.command.is_some() {
        // A command's output on stdout is what scripts read
        // (`KEY=$(crunch-server keys create …)`): logs go to stderr.
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    if cli.command == Some(ServerCommand::Keys(KeysCommand::Generate)) {
        return generate_key();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: ServerCli) -> anyhow::Result<()> {
    let data_dir = std::path::absolute(&cli.data_dir).context("CRUNCH_DATA_DIR")?;
    // Refused before anything starts.
    let auth = auth_mode(&cli)?;

    // Standalone: no DATABASE_URL means a private cluster of our own.
    let (url, cluster) = match &cli.worker.database_url {
        Some(url) => (url.clone(), None),
        None => {
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            let dir = data_dir.join("postgres");
            tracing::info!(
                "no DATABASE_URL: running a private PostgreSQL in {}",
                dir.display()
            );
            // A server running in the data directory keeps its cluster: a
            // command stops only a cluster it started.
            let was_running = dir.join("postmaster.pid").exists();
            let cluster = LocalCluster::start(&dir, ClusterOptions::default())
                .await
                .context("starting the private PostgreSQL cluster")?;
            (cluster.url("crunch"), Some((cluster, was_running)))
        }
    };

    if let Some(command) = cli.command.clone() {
        let outcome = one_shot(command, &url).await;
        if let Some((cluster, false)) = cluster {
            cluster.stop()?;
        }
        return outcome;
    }

    let pool = crunch_db::connect_and_migrate_as(
        &url,
        cli.db_max_connections,
        crunch_db::SERVER_APPLICATION_NAME,
    )
    .await
    .context("connecting to PostgreSQL and applying the schema")?;
    let cluster = cluster.map(|(cluster, _)| cluster);
    serve(cli, pool, auth, &data_dir, cluster).await
}

/// The authentication the settings ask for. No keys only on a loopback
/// listener, where nobody but this machine's users can reach the API.
fn auth_mode(cli: &ServerCli) -> anyhow::Result<AuthMode> {
    match cli.auth {
        AuthSetting::Keys => Ok(AuthMode::Keys),
        // Commands serve nothing.
        AuthSetting::Off if cli.command.is_some() => Ok(AuthMode::Keys),
        AuthSetting::Off => {
            anyhow::ensure!(
                cli.listen.ip().is_loopback(),
                "CRUNCH_AUTH=off is allowed only on a loopback address, and CRUNCH_LISTEN is {}: \
                 anyone who can reach it would act for the default tenant",
                cli.listen
            );
            anyhow::ensure!(
                !cli.cors_origins.iter().any(|o| o == "*"),
                "CRUNCH_AUTH=off with CRUNCH_CORS_ORIGINS=* would let every web page read and \
                 change the default tenant's data: name the origins, or keep keys on"
            );
            Ok(AuthMode::Open {
                tenant: TenantId::DEFAULT,
            })
        }
    }
}

/// Runs a one-shot command against the database at `url`.
async fn one_shot(command: ServerCommand, url: &str) -> anyhow::Result<()> {
    let name = match command {
        ServerCommand::Migrate => crunch_db::SERVER_APPLICATION_NAME,
        _ => CLI_APPLICATION_NAME,
    };
    let pool = crunch_db::connect_and_migrate_as(url, 2, name)
        .await
        .context("connecting to PostgreSQL and applying the schema")?;
    let outcome = match command {
        ServerCommand::Migrate => {
            tracing::info!("schema is up to date");
            Ok(())
        }
        ServerCommand::Tenants(command) => tenants_command(command, &pool).await,
        ServerCommand::Keys(command) => keys_command(command, &pool).await,
    };
    pool.close().await;
    outcome
}

async fn tenants_command(command: TenantsCommand, pool: &PgPool) -> anyhow::Result<()> {
    match command {
        TenantsCommand::Create { name } => {
            let id = tenants::create(pool, &name).await?;
            println!("{id}");
            eprintln!("created tenant {name:?}");
        }
        TenantsCommand::List => {
            let rows = tenants::list(pool)
                .await?
                .into_iter()
                .map(|t| vec![t.name, t.id.to_string(), minute(t.created_at)])
                .collect();
            print_table(&["NAME", "ID", "CREATED (UTC)"], rows);
        }
    }
    Ok(())
}

async fn keys_command(command: KeysCommand, pool: &PgPool) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            tenant,
            scope,
            expires_in,
            name,
        } => {
            let tenant = tenant_named(pool, &tenant).await?;
            let expires_at = match expires_in {
                Some(after) => Some(Utc::now() + chrono::Duration::from_std(after)?),
                None => None,
            };
            let CreatedKey { secret, info } =
                keys::create(pool, tenant.id, scope, &name, expires_at).await?;
            println!("{secret}");
            let expiry = info.expires_at.map_or_else(
                || "never expires".to_owned(),
                |at| format!("expires {}", minute(at)),
            );
            eprintln!(
                "created key {} ({name}) of tenant {:?} with scopes {}; it {expiry}. \
                 This is the only time the key is shown.",
                info.prefix, tenant.name, info.scopes
            );
        }
        KeysCommand::List { tenant } => {
            let tenant = match tenant {
                Some(name) => Some(tenant_named(pool, &name).await?.id),
                None => None,
            };
            let names: std::collections::HashMap<TenantId, String> = tenants::list(pool)
                .await?
                .into_iter()
                .map(|t| (t.id, t.name))
                .collect();
            let now = Utc::now();
            let rows = keys::list(pool, tenant)
                .await?
                .into_iter()
                .map(|k| {
                    let state = match (k.revoked_at, k.expires_at) {
                        (Some(at), _) => format!("revoked {}", minute(at)),
                        (None, Some(at)) if at <= now => format!("expired {}", minute(at)),
                        (None, Some(at)) => format!("expires {}", minute(at)),
                        (None, None) => "active".to_owned(),
                    };
                    vec![
                        k.prefix,
                        names
                            .get(&k.tenant)
                            .cloned()
                            .unwrap_or_else(|| k.tenant.to_string()),
                        k.scopes.to_string(),
                        k.name,
                        minute(k.created_at),
                        k.last_used_at.map_or_else(|| "never".to_owned(), minute),
                        state,
                    ]
                })
                .collect();
            print_table(
                &[
                    "PREFIX",
                    "TENANT",
                    "SCOPES",
                    "NAME",
                    "CREATED (UTC)",
                    "LAST USED",
                    "STATE",
                ],
                rows,
            );
        }
        KeysCommand::Revoke { prefix } => {
            anyhow::ensure!(
                keys::is_prefix(&prefix),
                "{prefix:?} is not a key's display prefix ({}, then {} letters or digits, as `keys list` shows it)",
                keys::KEY_PREFIX,
                keys::DISPLAY_CHARS
            );
            anyhow::ensure!(keys::revoke(pool, None, &prefix).await?, "no key {prefix}");
            eprintln!("revoked {prefix}: every server refuses it within seconds");
        }
        KeysCommand::Generate => generate_key()?,
    }
    Ok(())
}

async fn tenant_named(pool: &PgPool, name: &str) -> anyhow::Result<Tenant> {
    tenants::by_name(pool, name)
        .await?
        .with_context(|| format!("no tenant named {name:?} (`crunch-server tenants list`)"))
}

/// `keys generate`: a new key and its SHA-256, for the operator to keep
/// the one and give the server the other.
fn generate_key() -> anyhow::Result<()> {
    let minted = keys::mint()?;
    println!("{}", minted.secret);
    println!("{}", hex(&minted.sha256));
    eprintln!(
        "the first line is the key: keep it secret, give it to its client. The second is its \
         SHA-256, for CRUNCH_BOOTSTRAP_KEY_SHA256; the server will list the key as {}",
        bootstrap_prefix(&minted.sha256)
    );
    Ok(())
}

/// The display prefix of a key known only by its hash: the server never
/// sees the key, so the prefix comes from the hash (`crk_` and its first
/// 8 hex digits), which `keys list` shows and `keys revoke` takes.
fn bootstrap_prefix(sha256: &[u8; 32]) -> String {
    format!(
        "{}{}",
        keys::KEY_PREFIX,
        hex(&sha256[..keys::DISPLAY_CHARS / 2])
    )
}

/// Bytes as lower-case hexadecimal digits, as `sha256sum` prints them.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A time to the minute, as listings show it.
fn minute(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}

/// Prints rows under headers, in columns padded to their widest cell.
fn print_table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Makes CRUNCH_BOOTSTRAP_KEY_SHA256 an all-scopes key of the default
/// tenant, unless it is stored already (then it is left as it is, so a
/// revoked bootstrap key stays revoked).
async fn bootstrap_key(pool: &PgPool, sha256: [u8; 32]) -> anyhow::Result<()> {
    let prefix = bootstrap_prefix(&sha256);
    let info = keys::insert_hashed(
        pool,
        TenantId::DEFAULT,
        sha256,
        &prefix,
        Scopes::all(),
        BOOTSTRAP_KEY_NAME,
    )
    .await
    .context("CRUNCH_BOOTSTRAP_KEY_SHA256")?;
    if info.revoked_at.is_some() {
        tracing::warn!(
            prefix,
            "the bootstrap key (CRUNCH_BOOTSTRAP_KEY_SHA256) is revoked and stays revoked; \
             the setting can be removed"
        );
    } else {
        tracing::info!(
            prefix,
            "the bootstrap key of the default tenant is in place"
        );
    }
    Ok(())
}

/// A standalone server's first key: created when the data directory has
/// none yet, written to `<data-dir>/api-key` (mode 0600 from its creation,
/// never wider) and returned to be shown this once. None when the file
/// exists: the key was shown on an earlier start.
async fn standalone_key(pool: &PgPool, data_dir: &Path) -> anyhow::Result<Option<String>> {
    let path = data_dir.join(API_KEY_FILE);
    // The file first, so that a key is only created when it can be kept.
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    };
    let created = match keys::create(
        pool,
        TenantId::DEFAULT,
        Scopes::all(),
        STANDALONE_KEY_NAME,
        None,
    )
    .await
    {
        Ok(created) => created,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e).context("creating the standalone API key");
        }
    };
    let written = file
        .write_all(format!("{}\n", created.secret).as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        // A key nobody holds must not stay valid.
        let _ = keys::revoke(pool, Some(TenantId::DEFAULT), &created.info.prefix).await;
        let _ = std::fs::remove_file(&path);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    tracing::info!(
        prefix = created.info.prefix,
        "created the standalone API key"
    );
    Ok(Some(created.secret))
}

async fn serve(
    cli: ServerCli,
    pool: PgPool,
    auth: AuthMode,
    data_dir: &Path,
    cluster: Option<LocalCluster>,
) -> anyhow::Result<()> {
    if let Some(sha256) = cli.bootstrap_key_sha256 {
        bootstrap_key(&pool, sha256).await?;
    }
    // Standalone and with keys: the first start mints a key to use.
    let key_file: PathBuf = cli.data_dir.join(API_KEY_FILE);
    let new_key = match (&cluster, auth, cli.bootstrap_key_sha256) {
        (Some(_), AuthMode::Keys, None) => standalone_key(&pool, data_dir).await?,
        _ => None,
    };

    let store_url = cli.store_url(data_dir);
    let store = Store::open(pool.clone(), &store_url)
        .context("opening the dataset store")?
        .with_default_storage_quota(cli.tenant_storage_quota_bytes);
    let queue = Queue::new(pool, crunch_worker::registry()).with_tenant_defaults(TenantDefaults {
        max_running: cli.worker.tenant_max_running,
        max_queued: cli.tenant_max_queued,
    });
    let limits = Limits {
        max_upload_bytes: cli.max_upload_bytes,
        max_columns: cli.max_columns,
        ..Limits::default()
    };
    let state = AppState::new(queue.clone(), store.clone(), limits).with_auth(auth);

    // Bound before anything is announced, so a taken port fails the start.
    let api_acceptor = TcpListener::bind(cli.listen)
        .into_acceptor()
        .await
        .with_context(|| format!("listening on {} (CRUNCH_LISTEN)", cli.listen))?;
    let metrics_acceptor = match cli.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .into_acceptor()
                .await
                .with_context(|| format!("listening on {addr} (CRUNCH_METRICS_LISTEN)"))?,
        ),
        None => None,
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

    // The Host check wraps everything served, the metrics listener too: a
    // rebound page must read neither.
    let hosts = Arc::new(AllowedHosts::new(&cli.allowed_hosts));
    if !cli.listen.ip().is_loopback() && cli.allowed_hosts.is_empty() {
        tracing::info!(
            "CRUNCH_ALLOWED_HOSTS is unset: requests must name an IP address or localhost in Host"
        );
    }
    let metrics_server = metrics_acceptor.map(|acceptor| {
        tracing::info!(
            "serving /metrics on {}",
            cli.metrics_listen
                .map(|a| a.to_string())
                .unwrap_or_default()
        );
        let endpoint = crunch_server::metrics_app(state.clone()).with(HostCheck(hosts.clone()));
        tokio::spawn(
            Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
                endpoint,
                when_stopped(),
                Some(Duration::from_secs(5)),
            ),
        )
    });
    let app = crunch_server::app(state);
    let app = match Cors::new(&cli.cors_origins) {
        Some(cors) => app.with(cors).boxed(),
        None => app.boxed(),
    }
    .with(HostCheck(hosts));

    let listen = cli.listen;
    println!("crunch API:     http://{listen}/v1/datasets");
    println!("API docs (UI):  http://{listen}/docs");
    println!("OpenAPI spec:   http://{listen}/openapi.json");
    match (auth, new_key) {
        (AuthMode::Open { .. }, _) => {
            tracing::warn!(
                "CRUNCH_AUTH=off: the API asks for no key, and every request acts for the default \
                 tenant with every scope. Anyone who can reach {listen} can read, change and \
                 delete its data. Only for a machine whose users are all trusted."
            );
            println!("API key:        none asked for (CRUNCH_AUTH=off)");
        }
        (AuthMode::Keys, Some(secret)) => {
            println!(
                "API key:        {secret}\n                (shown once; kept in {}, readable by you only)",
                key_file.display()
            );
        }
        (AuthMode::Keys, None) if cluster.is_some() && key_file.exists() => {
            println!("API key:        in {}", key_file.display());
        }
        (AuthMode::Keys, None) => {}
    }
    Server::new_with_acceptor(api_acceptor)
        .run_with_graceful_shutdown(app, when_stopped(), Some(Duration::from_secs(30)))
        .await?;

    for task in worker_tasks {
        if let Err(e) = task.await? {
            tracing::warn!("a worker stopped with an error: {e}");
        }
    }
    if let Some(metrics_server) = metrics_server {
        metrics_server.await??;
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
