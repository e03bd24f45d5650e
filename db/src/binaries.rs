//! Finding the machine's PostgreSQL server binaries and running them as a user
//! they agree to run as.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::error::{DbError, IoContext};

/// What a directory must hold to run a cluster from it.
const SERVER_BINARIES: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// Where distributions without the binaries on PATH (Debian, Ubuntu) keep one
/// directory per major version.
const VERSIONED_ROOT: &str = "/usr/lib/postgresql";

/// The system user PostgreSQL runs as when we are root.
const POSTGRES_USER: &str = "postgres";

/// Finds the directory holding `initdb`, `pg_ctl` and `postgres`: the first
/// PATH entry holding all three, else the newest `/usr/lib/postgresql/*/bin`.
///
/// A PATH entry that only holds symlinks (e.g. `/usr/local/bin/pg_ctl`) is
/// resolved to the real directory, so sibling tools are found there too.
pub fn find_bin_dir() -> Result<PathBuf, DbError> {
    let mut searched = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.as_os_str().is_empty() {
                continue;
            }
            if holds_server_binaries(&dir) {
                return Ok(resolve_symlinked_dir(dir));
            }
            searched.push(dir.display().to_string());
        }
    }

    let mut versioned: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(VERSIONED_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = parse_version(&entry.file_name().to_string_lossy())?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| holds_server_binaries(bin))
        .collect();
    versioned.sort();
    match versioned.pop() {
        Some((_, bin)) => Ok(bin),
        None => {
            searched.push(format!("{VERSIONED_ROOT}/*/bin"));
            Err(DbError::BinariesNotFound {
                searched: searched.join(", "),
            })
        }
    }
}

/// "15" or "9.6" as comparable numbers; anything else is not a version directory.
fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

fn holds_server_binaries(dir: &Path) -> bool {
    SERVER_BINARIES
        .iter()
        .all(|name| is_executable(&dir.join(name)))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

fn resolve_symlinked_dir(dir: PathBuf) -> PathBuf {
    std::fs::canonicalize(dir.join("pg_ctl"))
        .ok()
        .and_then(|real| real.parent().map(Path::to_path_buf))
        .filter(|real_dir| holds_server_binaries(real_dir))
        .unwrap_or(dir)
}

/// Whether this process runs with effective uid 0. Read from /proc because
/// the workspace forbids the unsafe code a `geteuid` call would need.
fn effective_uid_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("Uid:"))?;
            // Fields: real, effective, saved, filesystem.
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// The ids of the user the server runs as when we are root.
#[derive(Debug, Clone, Copy)]
struct ServerUser {
    uid: u32,
    gid: u32,
}

impl ServerUser {
    fn lookup() -> Result<Self, DbError> {
        // `id` rather than parsing /etc/passwd, so users from NSS work too.
        let id = |flag: &str| -> Result<u32, DbError> {
            let output = Command::new("id")
                .args([flag, POSTGRES_USER])
                .stdin(Stdio::null())
                .output()
                .context(|| "running `id` to look up the postgres user".to_owned())?;
            if !output.status.success() {
                return Err(DbError::NoPostgresUser(
                    String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                ));
            }
            String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .map_err(|_| DbError::NoPostgresUser("`id` printed no number".to_owned()))
        };
        Ok(Self {
            uid: id("-u")?,
            gid: id("-g")?,
        })
    }
}

/// The server binaries of this machine, and how to run them: directly, or, when
/// we are root (initdb and postgres refuse to run as root), through
/// `runuser -u postgres`.
#[derive(Debug, Clone)]
pub(crate) struct Binaries {
    bin_dir: PathBuf,
    server_user: Option<ServerUser>,
}

impl Binaries {
    /// Finds the binaries and decides who runs them.
    pub(crate) fn locate() -> Result<Self, DbError> {
        let bin_dir = find_bin_dir()?;
        let server_user = if effective_uid_is_root() {
            Some(ServerUser::lookup()?)
        } else {
            None
        };
        Ok(Self {
            bin_dir,
            server_user,
        })
    }

    /// The full command line running `program` from the bin directory as the
    /// right user; also handed to the reaper process, hence argv and not a Command.
    pub(crate) fn argv<S: AsRef<OsStr>>(&self, program: &str, args: &[S]) -> Vec<OsString> {
        let mut argv: Vec<OsString> = Vec::new();
        if self.server_user.is_some() {
            argv.extend(["runuser", "-u", POSTGRES_USER, "--"].map(OsString::from));
        }
        argv.push(self.bin_dir.join(program).into_os_string());
        argv.extend(args.iter().map(|arg| arg.as_ref().to_os_string()));
        argv
    }

    /// Runs `program` to completion and returns its stdout; a failure carries
    /// its stderr.
    pub(crate) fn run<S: AsRef<OsStr>>(
        &self,
        program: &str,
        args: &[S],
    ) -> Result<String, DbError> {
        let argv = self.argv(program, args);
        let command_line = display_argv(&argv);
        let output = command(&argv)
            .output()
            .context(|| format!("running `{command_line}`"))?;
        check_output(command_line, output)
    }

    /// Creates `dir` (mode 0700, as PostgreSQL demands) and, when the server
    /// runs as the postgres user, hands it over and checks that user can reach it.
    pub(crate) fn prepare_data_dir(&self, dir: &Path) -> Result<(), DbError> {
        if let Some(parent) = dir.parent() {
            // Parents get default permissions: 0700 parents would lock out the postgres user.
            std::fs::create_dir_all(parent)
                .context(|| format!("creating directory {}", parent.display()))?;
        }
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .context(|| format!("creating data directory {}", dir.display()))?;
        }
        let Some(user) = self.server_user else {
            return Ok(());
        };
        std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid))
            .context(|| format!("handing {} to the postgres user", dir.display()))?;
        // The postgres user must pass through every parent. The cluster's own
        // parent is the directory it was given to live in (`mktemp -d` makes
        // it 0700): it gets the search bit for others, which lets the postgres
        // user through without letting anyone list it. Any other parent is
        // the machine's business: refused, naming it and the fix.
        if let Some(blocked) = self.outermost_blocking_parent(dir)? {
            if Some(blocked.as_path()) != dir.parent() {
                return Err(DbError::DataDirNotAccessible {
                    data_dir: dir.to_path_buf(),
                    blocked,
                });
            }
            let mode = std::fs::metadata(&blocked)
                .context(|| format!("reading the mode of {}", blocked.display()))?
                .permissions()
                .mode();
            std::fs::set_permissions(
                &blocked,
                std::fs::Permissions::from_mode((mode & 0o7777) | 0o001),
            )
            .context(|| format!("letting the postgres user through {}", blocked.display()))?;
            tracing::warn!(
                directory = %blocked.display(),
                "running as root: gave others the search bit (o+x) on the cluster's parent so the postgres user can reach the cluster"
            );
        }
        if self.postgres_user_can(&["-w", "-x"], dir)? {
            Ok(())
        } else {
            Err(DbError::DataDirNotAccessible {
                data_dir: dir.to_path_buf(),
                blocked: dir.to_path_buf(),
            })
        }
    }

    /// The outermost parent of `dir` that the postgres user may not pass
    /// through (beyond it, nothing can be told).
    fn outermost_blocking_parent(&self, dir: &Path) -> Result<Option<PathBuf>, DbError> {
        let mut parents: Vec<&Path> = dir.ancestors().skip(1).collect();
        parents.reverse();
        for parent in parents {
            if !self.postgres_user_can(&["-x"], parent)? {
                return Ok(Some(parent.to_path_buf()));
            }
        }
        Ok(None)
    }

    /// Whether every `test <flag> path` holds for the postgres user.
    fn postgres_user_can(&self, flags: &[&str], path: &Path) -> Result<bool, DbError> {
        let mut command = Command::new("runuser");
        command.args(["-u", POSTGRES_USER, "--", "test"]);
        for (n, flag) in flags.iter().enumerate() {
            if n > 0 {
                command.arg("-a");
            }
            command.arg(flag).arg(path);
        }
        Ok(command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/")
            .status()
            .context(|| "running `runuser` to check the data directory".to_owned())?
            .success())
    }

    /// The directory the binaries were found in.
    pub(crate) fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }
}

/// A Command for `argv` that cannot trip over our working directory (the
/// postgres user may not be allowed into it) or hold our stdin.
pub(crate) fn command(argv: &[OsString]) -> Command {
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .current_dir("/")
        .stdin(Stdio::null());
    command
}

/// The command line as a human would type it, for error messages.
pub(crate) fn display_argv(argv: &[OsString]) -> String {
    argv.iter()
        .map(|arg| arg.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Stdout of a successful command, or an error carrying everything it printed
/// (pg_ctl reports some failures on stdout).
pub(crate) fn check_output(command_line: String, output: Output) -> Result<String, DbError> {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let printed = format!("{}\n{}", stderr.trim(), stdout.trim());
    Err(DbError::Command {
        command: command_line,
        status: output.status.to_string(),
        stderr: printed.trim().to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn version_directories_sort_numerically() {
        let mut versions = ["9.6", "15", "10"].map(|name| parse_version(name).unwrap());
        versions.sort();
        assert_eq!(versions.last().unwrap(), &[15]);
        assert_eq!(parse_version("main"), None);
    }

    #[test]
    fn the_server_binaries_are_found_on_this_machine() {
        let dir = find_bin_dir().unwrap();
        assert!(holds_server_binaries(&dir), "{}", dir.display());
    }
}
