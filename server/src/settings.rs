//! The server binary's settings: its own, and the worker settings its
//! in-process workers share with `crunch-worker`
//! ([`crunch_worker::settings::WorkerSettings`]). README.md's
//! configuration table lists them all; a test here holds the two together.

use std::{net::SocketAddr, num::ParseIntError, path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};
use crunch_worker::settings::WorkerSettings;

use crate::state::DEFAULT_MAX_UPLOAD_BYTES;

/// The crunch server. With no DATABASE_URL it runs standalone: a private
/// PostgreSQL cluster in the data directory (reused next time), a local
/// dataset store, and in-process workers.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "crunch-server",
    disable_help_subcommand = true,
    // Settings may follow `migrate` too (`crunch-server migrate --data-dir
    // d`), as they may precede it.
    mut_args(|a| a.global(true))
)]
pub struct ServerCli {
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<ServerCommand>,

    /// Address the API listens on
    #[arg(
        long = "listen",
        env = "CRUNCH_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,

    /// Home of the private PostgreSQL cluster and the default local store
    #[arg(
        long = "data-dir",
        env = "CRUNCH_DATA_DIR",
        value_name = "DIR",
        default_value = ".crunch"
    )]
    pub data_dir: PathBuf,

    /// In-process workers (0 when separate worker processes run)
    #[arg(
        long = "workers",
        env = "CRUNCH_WORKERS",
        value_name = "N",
        default_value = "1"
    )]
    pub workers: usize,

    /// Largest dataset upload
    #[arg(
        long = "max-upload-bytes",
        env = "CRUNCH_MAX_UPLOAD_BYTES",
        value_name = "BYTES",
        default_value_t = DEFAULT_MAX_UPLOAD_BYTES
    )]
    pub max_upload_bytes: u64,

    /// Most columns an upload may have
    #[arg(
        long = "max-columns",
        env = "CRUNCH_MAX_COLUMNS",
        value_name = "N",
        default_value_t = crunch_store::DEFAULT_MAX_COLUMNS
    )]
    pub max_columns: usize,

    /// Finished jobs are pruned after this long
    #[arg(
        long = "retention-hours",
        env = "CRUNCH_RETENTION_HOURS",
        value_name = "HOURS",
        default_value = "168",
        value_parser = hours
    )]
    pub retention: Duration,

    /// The server's database pool size
    #[arg(
        long = "db-max-connections",
        env = "CRUNCH_DB_MAX_CONNECTIONS",
        value_name = "N",
        default_value = "20"
    )]
    pub db_max_connections: u32,

    /// ECS cluster of the worker service; with CRUNCH_WORKER_SERVICE, turns
    /// on the worker-scaling metric publisher
    #[arg(long = "ecs-cluster", env = "CRUNCH_ECS_CLUSTER", value_name = "NAME")]
    pub ecs_cluster: Option<String>,

    /// ECS service of the workers, whose BacklogPerTask metric this server
    /// publishes
    #[arg(
        long = "worker-service",
        env = "CRUNCH_WORKER_SERVICE",
        value_name = "NAME"
    )]
    pub worker_service: Option<String>,

    /// What the in-process workers run with.
    #[command(flatten)]
    pub worker: WorkerSettings,
}

/// The server's one-shot commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum ServerCommand {
    /// Apply the schema and exit (a migration step before a deploy)
    Migrate,
}

impl ServerCli {
    /// Where datasets and results live: the store URL set, else a local
    /// store in `data_dir`.
    pub fn store_url(&self, data_dir: &std::path::Path) -> String {
        match &self.worker.store_url {
            Some(url) => url.clone(),
            None => format!("file://{}", data_dir.join("store").display()),
        }
    }
}

/// A duration given in whole hours.
pub fn hours(text: &str) -> Result<Duration, String> {
    let hours: u64 = text.parse().map_err(|e: ParseIntError| e.to_string())?;
    hours
        .checked_mul(3600)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{hours} hours is too long"))
}

#[cfg(test)]
mod tests {
    //! README.md's configuration table against the settings as declared.

    use std::collections::BTreeMap;

    use clap::{Command, CommandFactory, FromArgMatches};
    use crunch_worker::settings::{WorkerCli, without_empty_env};

    use super::*;

    const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));

    /// One setting of one binary, as clap has it.
    #[derive(Debug)]
    struct Declared {
        flag: String,
        default: Option<String>,
        required: bool,
    }

    /// The settings of a binary, by variable.
    fn declared(command: Command) -> BTreeMap<String, Declared> {
        let mut command = command;
        command.build();
        command
            .get_arguments()
            .filter(|a| a.get_id() != "help")
            .map(|a| {
                let env = a.get_env().map(|e| e.to_string_lossy().into_owned());
                let env = env.unwrap_or_else(|| panic!("--{:?} has no variable", a.get_long()));
                let declared = Declared {
                    flag: format!("--{}", a.get_long().unwrap_or_default()),
                    default: match a.get_default_values() {
                        [] => None,
                        values => Some(
                            values
                                .iter()
                                .map(|v| v.to_string_lossy())
                                .collect::<Vec<_>>()
                                .join(","),
                        ),
                    },
                    required: a.is_required_set(),
                };
                (env, declared)
            })
            .collect()
    }

    /// One row of the table.
    #[derive(Debug, Clone)]
    struct Row {
        variable: String,
        flag: String,
        default: String,
        used_by: String,
    }

    /// The rows of the table under `## Configuration`.
    fn rows(readme: &str) -> Vec<Row> {
        readme
            .lines()
            .skip_while(|l| l.trim() != "## Configuration")
            .skip(1)
            .take_while(|l| !l.starts_with("## "))
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
                assert_eq!(cells.len(), 5, "a row of five cells: {l}");
                let unquote = |c: &str| c.trim_matches('`').to_owned();
                Row {
                    variable: unquote(cells[0]),
                    flag: unquote(cells[1]),
                    default: cells[2].to_owned(),
                    used_by: cells[4].to_owned(),
                }
            })
            .collect()
    }

    /// Every way `readme`'s table differs from the settings; empty when
    /// they agree.
    fn mismatches(readme: &str) -> Vec<String> {
        let binaries = [
            ("server", declared(ServerCli::command())),
            ("worker", declared(WorkerCli::command())),
        ];
        let rows = rows(readme);
        let mut problems = Vec::new();
        if rows.is_empty() {
            problems.push("no configuration table under '## Configuration'".to_owned());
        }
        for row in &rows {
            let name = &row.variable;
            let mut used_by = Vec::new();
            for (binary, settings) in &binaries {
                let Some(d) = settings.get(name) else {
                    continue;
                };
                used_by.push(if d.required {
                    format!("{binary} (required)")
                } else {
                    (*binary).to_owned()
                });
                if d.flag != row.flag {
                    problems.push(format!(
                        "{name}: the table says {}, {binary} has {}",
                        row.flag, d.flag
                    ));
                }
                match &d.default {
                    Some(default) if row.default != format!("`{default}`") => {
                        problems.push(format!(
                            "{name}: the table's default is {}, {binary}'s is `{default}`",
                            row.default
                        ))
                    }
                    // A default computed at start is described in words,
                    // not written as a value.
                    None if row.default.starts_with('`')
                        && row.default.ends_with('`')
                        && !row.default.contains('<') =>
                    {
                        problems.push(format!(
                            "{name}: the table's default is {}, {binary} has none",
                            row.default
                        ))
                    }
                    _ => {}
                }
            }
            if used_by.is_empty() {
                problems.push(format!("{name}: in the table, but no binary reads it"));
            } else if used_by.join(", ") != row.used_by {
                problems.push(format!(
                    "{name}: the table says used by {:?}, it is {:?}",
                    row.used_by,
                    used_by.join(", ")
                ));
            }
        }
        for (binary, settings) in &binaries {
            for name in settings.keys() {
                if !rows.iter().any(|r| &r.variable == name) {
                    problems.push(format!("{name} ({binary}): missing from the table"));
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for row in &rows {
            if !seen.insert(&row.variable) {
                problems.push(format!("{}: in the table twice", row.variable));
            }
        }
        problems
    }

    #[test]
    fn the_readme_table_matches_the_settings() {
        assert_eq!(mismatches(README), Vec::<String>::new());
    }

    #[test]
    fn a_missing_row_is_a_mismatch() {
        let readme: String = README
            .lines()
            .filter(|l| !l.starts_with("| `CRUNCH_POLL_SECONDS`"))
            .map(|l| format!("{l}\n"))
            .collect();
        let problems = mismatches(&readme);
        assert!(
            problems.iter().any(|p| p.contains("CRUNCH_POLL_SECONDS")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_changed_default_is_a_mismatch() {
        let readme = README.replace(
            "| `--retention-hours` | `168` |",
            "| `--retention-hours` | `24` |",
        );
        assert_ne!(readme, README);
        let problems = mismatches(&readme);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("CRUNCH_RETENTION_HOURS")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_wrong_binary_or_flag_is_a_mismatch() {
        let readme = README
            .replace("| `--listen` |", "| `--listen-on` |")
            .replace(
                "| log filter (`tracing` env-filter syntax) | server, worker |",
                "| log filter (`tracing` env-filter syntax) | server |",
            );
        let problems = mismatches(&readme);
        assert!(
            problems.iter().any(|p| p.contains("CRUNCH_LISTEN")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("CRUNCH_LOG")),
            "{problems:?}"
        );
    }

    #[test]
    fn the_declared_command_is_consistent() {
        ServerCli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> ServerCli {
        // Every variable dropped, as if set empty: only flags and defaults.
        let command = without_empty_env(ServerCli::command(), |_| Some(Default::default()));
        let matches = command
            .try_get_matches_from(["crunch-server"].iter().chain(args))
            .unwrap();
        ServerCli::from_arg_matches(&matches).unwrap()
    }

    #[test]
    fn settings_may_come_before_or_after_migrate() {
        for args in [
            &["migrate", "--data-dir", "d"][..],
            &["--data-dir", "d", "migrate"][..],
        ] {
            let cli = parse(args);
            assert_eq!(cli.command, Some(ServerCommand::Migrate));
            assert_eq!(cli.data_dir, PathBuf::from("d"));
        }
        let cli = parse(&[]);
        assert_eq!(cli.command, None);
        assert_eq!(cli.data_dir, PathBuf::from(".crunch"));
        assert_eq!(cli.retention, Duration::from_secs(168 * 3600));
        assert_eq!(cli.max_upload_bytes, DEFAULT_MAX_UPLOAD_BYTES);
        assert_eq!(cli.worker.slots, 1);
    }

    #[test]
    fn the_store_defaults_to_the_data_dir() {
        let cli = parse(&[]);
        assert_eq!(cli.store_url(std::path::Path::new("/d")), "file:///d/store");
        let cli = parse(&["--store-url", "s3://b/p"]);
        assert_eq!(cli.store_url(std::path::Path::new("/d")), "s3://b/p");
    }
}
