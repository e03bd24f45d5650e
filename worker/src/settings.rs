//! The settings a worker runs with, shared by the worker binary and the
//! server's in-process workers.

use std::time::Duration;

use crunch_engine::EngineConfig;
use crunch_queue::WorkerConfig;

use crate::{
    config::{Config, ConfigError, Setting},
    handler::WorkerOptions,
};

/// Settings both binaries read for running workers.
pub const WORKER_SETTINGS: &[Setting] = &[
    Setting {
        env: "DATABASE_URL",
        flag: "database-url",
        default: "",
        help: "PostgreSQL URL (the server starts a private cluster when unset)",
    },
    Setting {
        env: "CRUNCH_STORE_URL",
        flag: "store-url",
        default: "",
        help: "where datasets and results live: file:///dir or s3://bucket/prefix (default <data-dir>/store)",
    },
    Setting {
        env: "CRUNCH_WORKER_ID",
        flag: "worker-id",
        default: "",
        help: "this worker's name on the jobs it runs (default host-pid)",
    },
    Setting {
        env: "CRUNCH_WORKER_SLOTS",
        flag: "slots",
        default: "1",
        help: "jobs one worker runs at once",
    },
    Setting {
        env: "CRUNCH_LEASE_SECONDS",
        flag: "lease-seconds",
        default: "30",
        help: "a job's lease; a dead worker's job is rescued after it",
    },
    Setting {
        env: "CRUNCH_HEARTBEAT_SECONDS",
        flag: "heartbeat-seconds",
        default: "2",
        help: "lease renewal, progress and cancel-check interval",
    },
    Setting {
        env: "CRUNCH_POLL_SECONDS",
        flag: "poll-seconds",
        default: "1",
        help: "polling fallback when no notification arrives",
    },
    Setting {
        env: "CRUNCH_SHUTDOWN_GRACE_SECONDS",
        flag: "shutdown-grace-seconds",
        default: "100",
        help: "on SIGTERM, how long running jobs may finish before they are released",
    },
    Setting {
        env: "CRUNCH_MEMORY_LIMIT_BYTES",
        flag: "memory-limit-bytes",
        default: "",
        help: "query memory pool; beyond it queries spill to disk (default half the cgroup limit, else half of RAM over CRUNCH_ENGINES_PER_HOST)",
    },
    Setting {
        env: "CRUNCH_ENGINES_PER_HOST",
        flag: "engines-per-host",
        default: "1",
        help: "crunch processes with a query engine on this host, outside a container limit: each takes its share of RAM",
    },
    Setting {
        env: "CRUNCH_SPILL_DIR",
        flag: "spill-dir",
        default: "",
        help: "where queries spill (default the system temp dir)",
    },
    Setting {
        env: "CRUNCH_ENGINE_THREADS",
        flag: "engine-threads",
        default: "",
        help: "threads of the query engine's own runtime (default all cores)",
    },
];

/// The default worker id: host name and process id, unique per process.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Worker and engine settings from `config`.
pub fn worker_options(config: &Config) -> Result<(WorkerOptions, EngineConfig), ConfigError> {
    let id = config
        .text("CRUNCH_WORKER_ID")
        .map(str::to_owned)
        .unwrap_or_else(default_worker_id);
    let secs = |name, fallback: u64| -> Result<Duration, ConfigError> {
        Ok(config
            .seconds(name)?
            .unwrap_or(Duration::from_secs(fallback)))
    };
    let queue = WorkerConfig::new(id)
        .kinds([crate::ANALYSIS_KIND])
        .slots(config.parse("CRUNCH_WORKER_SLOTS")?.unwrap_or(1))
        .lease(secs("CRUNCH_LEASE_SECONDS", 30)?)
        .heartbeat_interval(secs("CRUNCH_HEARTBEAT_SECONDS", 2)?)
        .poll_interval(secs("CRUNCH_POLL_SECONDS", 1)?);
    let engine = EngineConfig {
        memory_limit: config.parse("CRUNCH_MEMORY_LIMIT_BYTES")?,
        spill_dir: config.text("CRUNCH_SPILL_DIR").map(Into::into),
        threads: config.parse("CRUNCH_ENGINE_THREADS")?.unwrap_or(0),
        engines_per_host: config.parse("CRUNCH_ENGINES_PER_HOST")?.unwrap_or(1),
        #[cfg(feature = "failpoints")]
        on_run_start: Some(|analysis| {
            crate::failpoint::panic_if_marked(crate::failpoint::Place::Engine, analysis)
        }),
        ..EngineConfig::default()
    };
    Ok((
        WorkerOptions {
            queue,
            grace: secs("CRUNCH_SHUTDOWN_GRACE_SECONDS", 100)?,
        },
        engine,
    ))
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
