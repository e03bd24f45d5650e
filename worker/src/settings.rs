//! The settings a worker runs with, shared by the worker binary and the
//! server's in-process workers, and the worker binary's own.
//!
//! Every setting is a flag and an environment variable of the same
//! meaning; the flag wins over the variable. A variable set to the empty
//! string counts as unset (compose files and task definitions write
//! `NAME: ""` for "not set"), which [`from_process`] sees to: clap on its
//! own would hand `""` to the setting's parser.

use std::{ffi::OsStr, num::ParseFloatError, path::PathBuf, time::Duration};

use clap::{Args, Command, Parser, error::ErrorKind};
use crunch_engine::EngineConfig;
use crunch_queue::WorkerConfig;

use crate::handler::WorkerOptions;

/// Settings both binaries read for running workers (and their log).
#[derive(Debug, Clone, Args)]
pub struct WorkerSettings {
    /// PostgreSQL URL (required by the worker; the server runs a private
    /// cluster when it is unset)
    #[arg(long = "database-url", env = "DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,

    /// Where datasets and results live: file:///dir or s3://bucket/prefix
    /// (required by the worker; the server's default is
    /// file://<data-dir>/store)
    #[arg(long = "store-url", env = "CRUNCH_STORE_URL", value_name = "URL")]
    pub store_url: Option<String>,

    /// This worker's name on the jobs it runs (default host name and pid)
    #[arg(long = "worker-id", env = "CRUNCH_WORKER_ID", value_name = "NAME")]
    pub worker_id: Option<String>,

    /// Jobs one worker runs at once
    #[arg(
        long = "slots",
        env = "CRUNCH_WORKER_SLOTS",
        value_name = "N",
        default_value = "1"
    )]
    pub slots: usize,

    /// Jobs of one tenant running at once across all workers, for tenants
    /// without a limit of their own (default no limit); every process that
    /// claims jobs should say the same
    #[arg(
        long = "tenant-max-running",
        env = "CRUNCH_TENANT_MAX_RUNNING",
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub tenant_max_running: Option<u32>,

    /// A job's lease; a dead worker's job is rescued after it
    #[arg(
        long = "lease-seconds",
        env = "CRUNCH_LEASE_SECONDS",
        value_name = "SECONDS",
        default_value = "30",
        value_parser = seconds
    )]
    pub lease: Duration,

    /// Lease renewal, progress and cancel-check interval
    #[arg(
        long = "heartbeat-seconds",
        env = "CRUNCH_HEARTBEAT_SECONDS",
        value_name = "SECONDS",
        default_value = "2",
        value_parser = seconds
    )]
    pub heartbeat: Duration,

    /// Polling fallback when no notification arrives
    #[arg(
        long = "poll-seconds",
        env = "CRUNCH_POLL_SECONDS",
        value_name = "SECONDS",
        default_value = "1",
        value_parser = seconds
    )]
    pub poll: Duration,

    /// On SIGTERM, how long running jobs may finish before they are
    /// released
    #[arg(
        long = "shutdown-grace-seconds",
        env = "CRUNCH_SHUTDOWN_GRACE_SECONDS",
        value_name = "SECONDS",
        default_value = "100",
        value_parser = seconds
    )]
    pub shutdown_grace: Duration,

    /// Query memory pool; beyond it queries spill to disk (default half the
    /// cgroup limit, else half of RAM over CRUNCH_ENGINES_PER_HOST)
    #[arg(
        long = "memory-limit-bytes",
        env = "CRUNCH_MEMORY_LIMIT_BYTES",
        value_name = "BYTES"
    )]
    pub memory_limit: Option<usize>,

    /// Crunch processes with a query engine on this host, outside a
    /// container limit: each takes its share of RAM
    #[arg(
        long = "engines-per-host",
        env = "CRUNCH_ENGINES_PER_HOST",
        value_name = "N",
        default_value = "1"
    )]
    pub engines_per_host: usize,

    /// Where queries spill (default the system temp dir)
    #[arg(long = "spill-dir", env = "CRUNCH_SPILL_DIR", value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,

    /// Threads of the query engine's own runtime (default all cores)
    #[arg(
        long = "engine-threads",
        env = "CRUNCH_ENGINE_THREADS",
        value_name = "N"
    )]
    pub engine_threads: Option<usize>,

    /// Log filter (tracing env-filter syntax)
    #[arg(
        long = "log",
        env = "CRUNCH_LOG",
        value_name = "FILTER",
        default_value = "info"
    )]
    pub log: String,
}

impl WorkerSettings {
    /// This worker's name: the one set, else host name and process id.
    pub fn worker_id(&self) -> String {
        self.worker_id.clone().unwrap_or_else(default_worker_id)
    }

    /// The worker's queue and drain settings and its engine's.
    pub fn worker_options(&self) -> (WorkerOptions, EngineConfig) {
        let queue = WorkerConfig::new(self.worker_id())
            .kinds([crate::ANALYSIS_KIND])
            .slots(self.slots)
            .lease(self.lease)
            .heartbeat_interval(self.heartbeat)
            .poll_interval(self.poll);
        let mut engine = EngineConfig {
            memory_limit: self.memory_limit,
            spill_dir: self.spill_dir.clone(),
            engines_per_host: self.engines_per_host,
            #[cfg(feature = "failpoints")]
            on_run_start: Some(|analysis| {
                crate::failpoint::panic_if_marked(crate::failpoint::Place::Engine, analysis)
            }),
            ..EngineConfig::default()
        };
        // Unset keeps the engine's own choice (all cores).
        if let Some(threads) = self.engine_threads {
            engine.threads = threads;
        }
        (
            WorkerOptions {
                queue,
                grace: self.shutdown_grace,
            },
            engine,
        )
    }
}

/// The crunch worker: runs analysis jobs from the queue until SIGTERM,
/// then drains (see --shutdown-grace-seconds) and exits.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "crunch-worker",
    // The worker has no private cluster or local store to fall back on.
    mut_arg("database_url", |a| a.required(true)),
    mut_arg("store_url", |a| a.required(true))
)]
pub struct WorkerCli {
    /// What every worker runs with.
    #[command(flatten)]
    pub worker: WorkerSettings,

    /// Set by ECS: the container agent, through which the worker holds
    /// scale-in protection while it holds a job
    // Only the worker binary holds protection: it is the ECS service that
    // scales on the backlog. (The server's in-process workers share a task
    // with the API, whose task count is not the workers'.)
    #[arg(long = "ecs-agent-uri", env = "ECS_AGENT_URI", value_name = "URL")]
    pub ecs_agent_uri: Option<String>,
}

/// A duration given in seconds, fractions allowed (`0.5`); a negative one
/// counts as zero.
pub fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.parse().map_err(|e: ParseFloatError| e.to_string())?;
    Duration::try_from_secs_f64(secs.max(0.0)).map_err(|e| e.to_string())
}

/// Reads `T` from the process's arguments and environment, an empty
/// variable counting as unset. Prints help, or the error, and exits the
/// process as clap does when the arguments ask for help or do not parse.
pub fn from_process<T: Parser>() -> T {
    let command = without_empty_env(T::command(), |name| std::env::var_os(name));
    let matches = match command.try_get_matches() {
        Ok(matches) => matches,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            // Help names every variable, the empty ones too: render it from
            // the command as declared.
            T::command().try_get_matches().err().unwrap_or(e).exit()
        }
        Err(e) => e.exit(),
    };
    T::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut T::command()).exit())
}

/// `command` without the variables that `lookup` finds set to the empty
/// string, so that their settings fall back to their defaults.
pub fn without_empty_env(
    command: Command,
    lookup: impl Fn(&OsStr) -> Option<std::ffi::OsString>,
) -> Command {
    let empty: Vec<String> = command
        .get_arguments()
        .filter(|arg| {
            arg.get_env()
                .and_then(&lookup)
                .is_some_and(|value| value.is_empty())
        })
        .map(|arg| arg.get_id().to_string())
        .collect();
    empty.into_iter().fold(command, |command, id| {
        command.mut_arg(id, |arg| arg.env(None))
    })
}

/// The default worker id: host name and process id, unique per process.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Resolves on SIGTERM (what ECS and docker send) or Ctrl-C.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use clap::{CommandFactory, FromArgMatches};

    use super::*;

    fn parse(args: &[&str]) -> Result<WorkerCli, clap::Error> {
        // No variable is looked at: every one is dropped as if empty.
        let command = without_empty_env(WorkerCli::command(), |_| Some(OsString::new()));
        let matches = command.try_get_matches_from(["crunch-worker"].iter().chain(args))?;
        WorkerCli::from_arg_matches(&matches)
    }

    #[test]
    fn the_declared_command_is_consistent() {
        WorkerCli::command().debug_assert();
    }

    #[test]
    fn empty_variables_lose_their_env_so_defaults_apply() {
        let command = without_empty_env(WorkerCli::command(), |name| {
            (name == "CRUNCH_WORKER_SLOTS").then(OsString::new)
        });
        let env_of = |id: &str| {
            command
                .get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(|a| a.get_env())
                .map(|e| e.to_owned())
        };
        assert_eq!(env_of("slots"), None);
        assert_eq!(env_of("lease"), Some("CRUNCH_LEASE_SECONDS".into()));
    }

    #[test]
    fn flags_parse_into_typed_settings_over_defaults() {
        let cli = parse(&[
            "--database-url",
            "postgres://x",
            "--store-url=file:///s",
            "--heartbeat-seconds",
            "0.5",
            "--slots",
            "3",
        ])
        .unwrap();
        let w = &cli.worker;
        assert_eq!(w.slots, 3);
        assert_eq!(w.heartbeat, Duration::from_millis(500));
        assert_eq!(w.lease, Duration::from_secs(30));
        assert_eq!(w.shutdown_grace, Duration::from_secs(100));
        assert_eq!(w.log, "info");
        assert_eq!(w.engine_threads, None);
        assert_eq!(w.tenant_max_running, None);
        assert_eq!(cli.ecs_agent_uri, None);
        let (options, engine) = w.worker_options();
        assert_eq!(options.grace, Duration::from_secs(100));
        assert_eq!(engine.threads, EngineConfig::default().threads);
    }

    #[test]
    fn the_worker_requires_a_database_and_a_store() {
        let e = parse(&["--store-url", "file:///s"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        let e = parse(&["--database-url", "postgres://x"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn bad_values_and_unknown_flags_are_errors() {
        let base = ["--database-url", "u", "--store-url", "s"];
        let with = |extra: &[&str]| parse(&[&base[..], extra].concat()).unwrap_err().kind();
        assert_eq!(with(&["--slots", "x"]), ErrorKind::ValueValidation);
        assert_eq!(
            with(&["--lease-seconds", "soon"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(with(&["--nope", "x"]), ErrorKind::UnknownArgument);
        // No tenant may be held to nothing running at all.
        assert_eq!(
            with(&["--tenant-max-running", "0"]),
            ErrorKind::ValueValidation
        );
    }

    #[test]
    fn a_tenant_max_running_is_a_positive_count() {
        let cli = parse(&[
            "--database-url",
            "u",
            "--store-url",
            "s",
            "--tenant-max-running",
            "4",
        ])
        .unwrap();
        assert_eq!(cli.worker.tenant_max_running, Some(4));
    }

    #[test]
    fn seconds_take_fractions_and_clamp_negatives() {
        assert_eq!(seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(seconds("-3"), Ok(Duration::ZERO));
        assert!(seconds("inf").is_err());
        assert!(seconds("").is_err());
    }
}
