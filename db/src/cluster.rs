//! A private PostgreSQL cluster run from the machine's binaries.

use std::ffi::OsString;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::binaries::{self, Binaries};
use crate::error::{DbError, IoContext};
use crate::pidfile;
use crate::reaper::Reaper;

/// How long a server may take to come up (crash recovery included) or go down.
const SERVER_TIMEOUT: Duration = Duration::from_secs(60);

/// The server log, kept in the data directory so a cluster is one directory.
const LOG_FILE: &str = "server.log";

/// Ports picked as free can be taken by someone else before the server binds
/// them (parallel test processes do exactly this); that many tries.
const PORT_ATTEMPTS: usize = 5;

/// How much of the server log a start failure quotes.
const LOG_TAIL_LINES: usize = 30;

/// How to run a [`LocalCluster`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// The TCP port to listen on; `None` picks a free one.
    pub port: Option<u16>,
    /// Trades durability against an OS crash for speed (fsync and
    /// full_page_writes off): for throwaway clusters only. synchronous_commit
    /// stays on, so a commit survives a crash of PostgreSQL itself, which is
    /// what fault tests kill.
    pub ephemeral: bool,
    /// The server's `max_connections`; every test opens its own pool, hence
    /// the generous default of 200.
    pub max_connections: u32,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            port: None,
            ephemeral: false,
            max_connections: 200,
        }
    }
}

/// A PostgreSQL cluster run from the machine's binaries, so that neither the
/// server nor any test needs a database set up beforehand.
///
/// It listens on 127.0.0.1 only, without a unix socket, and trusts every
/// connection as superuser `postgres`: private to this machine, password-free.
/// When we run as root, the server runs as the `postgres` system user, since
/// PostgreSQL refuses to run as root.
///
/// Dropping a cluster from [`LocalCluster::start`] leaves it running (the next
/// run reuses it); one from [`LocalCluster::start_temporary`] is deleted.
#[derive(Debug)]
pub struct LocalCluster {
    binaries: Binaries,
    data_dir: PathBuf,
    port: u16,
    options: ClusterOptions,
    /// Set for temporary clusters only, held for its Drop: deletes the
    /// cluster when dropped or when this process ends.
    _reaper: Option<Reaper>,
}

impl LocalCluster {
    /// Finds the directory holding `initdb`, `pg_ctl` and `postgres`: PATH
    /// first, then the newest `/usr/lib/postgresql/*/bin`.
    pub fn find_bin_dir() -> Result<PathBuf, DbError> {
        binaries::find_bin_dir()
    }

    /// Starts the cluster in `data_dir`, creating it (initdb) when the
    /// directory holds none, and listening on `options.port` or a free port.
    ///
    /// A server a previous run left running in `data_dir` is reused as it is,
    /// on its port. The data survives [`stop`](Self::stop) and later starts.
    pub async fn start(data_dir: &Path, options: ClusterOptions) -> Result<LocalCluster, DbError> {
        let data_dir = std::path::absolute(data_dir)
            .context(|| format!("resolving data directory {}", data_dir.display()))?;
        blocking(move || {
            let binaries = Binaries::locate()?;
            binaries.prepare_data_dir(&data_dir)?;
            Self::boot(binaries, data_dir, options, None)
        })
        .await
    }

    /// Starts a new cluster in a fresh temporary directory, which is stopped
    /// and deleted when the returned value is dropped or when this process
    /// ends, however it ends (even by SIGKILL). Usually wanted with
    /// `ephemeral: true`.
    pub async fn start_temporary(options: ClusterOptions) -> Result<LocalCluster, DbError> {
        blocking(move || {
            let binaries = Binaries::locate()?;
            let data_dir = tempfile::Builder::new()
                .prefix("crunch-pg-")
                .tempdir()
                .context(|| "creating a temporary data directory".to_owned())?
                .keep();
            // Watch before anything else: dying at any later point leaves nothing behind.
            let reaper = match Reaper::spawn(&binaries, &data_dir) {
                Ok(reaper) => reaper,
                Err(error) => {
                    let _ = std::fs::remove_dir_all(&data_dir);
                    return Err(error);
                }
            };
            binaries.prepare_data_dir(&data_dir)?;
            Self::boot(binaries, data_dir, options, Some(reaper))
        })
        .await
    }

    /// The blocking part of starting: initdb if needed, then reuse or start.
    fn boot(
        binaries: Binaries,
        data_dir: PathBuf,
        options: ClusterOptions,
        reaper: Option<Reaper>,
    ) -> Result<Self, DbError> {
        if !data_dir.join("PG_VERSION").exists() {
            initdb(&binaries, &data_dir, options.ephemeral)?;
        }
        let mut cluster = Self {
            binaries,
            data_dir,
            port: 0,
            options,
            _reaper: reaper,
        };

        if let Some(running) = pidfile::running_server(&cluster.data_dir, SERVER_TIMEOUT)? {
            if cluster
                .options
                .port
                .is_some_and(|port| port != running.port)
            {
                tracing::warn!(
                    data_dir = %cluster.data_dir.display(),
                    port = running.port,
                    "reusing the running cluster on its own port, not the requested one"
                );
            }
            tracing::info!(data_dir = %cluster.data_dir.display(), port = running.port, pid = running.pid, "reusing running PostgreSQL");
            cluster.port = running.port;
            return Ok(cluster);
        }

        if let Some(port) = cluster.options.port {
            cluster.port = port;
            cluster.launch()?;
        } else {
            let mut attempt = 1;
            loop {
                cluster.port = free_port()?;
                match cluster.launch() {
                    Ok(()) => break,
                    Err(error) if port_taken(&error) && attempt < PORT_ATTEMPTS => {
                        tracing::debug!(
                            port = cluster.port,
                            "port taken meanwhile, trying another"
                        );
                        attempt += 1;
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        tracing::info!(data_dir = %cluster.data_dir.display(), port = cluster.port, "PostgreSQL started");
        Ok(cluster)
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE`, for a database name that
    /// needs no percent-encoding.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The TCP port the server listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory, which also holds the server log.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the server cleanly (`pg_ctl stop -m fast`: open sessions are
    /// disconnected, a checkpoint is written). Stopping a stopped server is fine.
    pub fn stop(&self) -> Result<(), DbError> {
        self.pg_ctl_stop("fast")
    }

    /// Stops the server cleanly and starts it again on the same port; every
    /// open connection breaks, committed data stays.
    pub fn restart(&self) -> Result<(), DbError> {
        self.stop()?;
        self.start_again()
    }

    /// Stops the server as a crash would (`pg_ctl stop -m immediate`): the next
    /// start runs crash recovery. Killing a stopped server is fine.
    ///
    /// Every acknowledged commit survives: synchronous_commit is on even on
    /// an ephemeral cluster.
    pub fn kill(&self) -> Result<(), DbError> {
        self.pg_ctl_stop("immediate")
    }

    /// Starts the server again after [`stop`](Self::stop) or
    /// [`kill`](Self::kill), on the same port and with the same settings.
    pub fn start_again(&self) -> Result<(), DbError> {
        self.launch()
    }

    fn pg_ctl_stop(&self, mode: &str) -> Result<(), DbError> {
        if !pidfile::holds_data_dir(&self.data_dir) {
            return Ok(());
        }
        let timeout = SERVER_TIMEOUT.as_secs().to_string();
        self.binaries.run(
            "pg_ctl",
            &[
                OsString::from("stop"),
                "-m".into(),
                mode.into(),
                "-w".into(),
                "-t".into(),
                timeout.into(),
                "-D".into(),
                self.data_dir.clone().into(),
            ],
        )?;
        Ok(())
    }

    /// Runs `pg_ctl start` and waits until the server accepts connections.
    fn launch(&self) -> Result<(), DbError> {
        let log = self.data_dir.join(LOG_FILE);
        // Only this start's lines explain this start's failure.
        let log_start = std::fs::metadata(&log).map_or(0, |meta| meta.len());
        let timeout = SERVER_TIMEOUT.as_secs().to_string();
        let result = self.binaries.run(
            "pg_ctl",
            &[
                OsString::from("start"),
                "-w".into(),
                "-t".into(),
                timeout.into(),
                "-D".into(),
                self.data_dir.clone().into(),
                "-l".into(),
                log.clone().into(),
                "-o".into(),
                self.server_options().into(),
            ],
        );
        match result {
            Ok(_) => Ok(()),
            Err(DbError::Command { stderr, .. }) => Err(DbError::StartFailed {
                data_dir: self.data_dir.clone(),
                reason: stderr,
                log_tail: log_tail(&log, log_start),
            }),
            Err(error) => Err(error),
        }
    }

    /// Settings passed on the command line rather than written to
    /// postgresql.conf, so every start applies them (port included) whatever
    /// the configuration files say. pg_ctl hands them to a shell, hence `''`.
    fn server_options(&self) -> String {
        let mut settings = vec![
            format!("-p {}", self.port),
            "-c listen_addresses=127.0.0.1".to_owned(),
            "-c unix_socket_directories=''".to_owned(),
            format!("-c max_connections={}", self.options.max_connections),
        ];
        if self.options.ephemeral {
            settings.extend(["fsync", "full_page_writes"].map(|name| format!("-c {name}=off")));
        }
        settings.join(" ")
    }
}

/// Creates the cluster: superuser `postgres`, trusted connections (the server
/// only listens on loopback), UTF-8 with the C locale so that behaviour does not
/// depend on the machine's locale settings.
fn initdb(binaries: &Binaries, data_dir: &Path, ephemeral: bool) -> Result<(), DbError> {
    tracing::info!(data_dir = %data_dir.display(), bin_dir = %binaries.bin_dir().display(), "creating PostgreSQL cluster");
    let mut args: Vec<OsString> = vec![
        "-D".into(),
        data_dir.into(),
        "-U".into(),
        "postgres".into(),
        "--auth=trust".into(),
        "--encoding=UTF8".into(),
        "--no-locale".into(),
    ];
    if ephemeral {
        args.push("--no-sync".into());
    }
    binaries.run("initdb", &args)?;
    Ok(())
}

fn free_port() -> Result<u16, DbError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context(|| "looking for a free port on 127.0.0.1".to_owned())?;
    let addr = listener
        .local_addr()
        .context(|| "looking for a free port on 127.0.0.1".to_owned())?;
    Ok(addr.port())
}

fn port_taken(error: &DbError) -> bool {
    matches!(error, DbError::StartFailed { log_tail, .. } if log_tail.contains("could not bind"))
}

/// The last lines the server logged since byte `from`.
fn log_tail(log: &Path, from: u64) -> String {
    let Ok(contents) = std::fs::read(log) else {
        return format!("(no log at {})", log.display());
    };
    let from = usize::try_from(from).unwrap_or(0);
    let new = contents.get(from..).unwrap_or(&contents);
    let text = String::from_utf8_lossy(new);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// Runs blocking setup (processes, sleeps) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, DbError> + Send + 'static,
) -> Result<T, DbError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => Err(DbError::Io {
            action: "starting PostgreSQL".to_owned(),
            source: std::io::Error::other(error),
        }),
    }
}
