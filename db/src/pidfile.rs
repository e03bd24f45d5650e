//! Reading `postmaster.pid`, to find a server a previous run left running.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{DbError, IoContext};

/// A server found running in a data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Running {
    /// The postmaster's pid.
    pub(crate) pid: u32,
    /// The TCP port it listens on.
    pub(crate) port: u16,
}

/// What postmaster.pid says, parsed. Its layout is fixed by PostgreSQL
/// (`LOCK_FILE_LINE_*` in miscadmin.h): pid, data dir, start time, port,
/// socket dir, listen address, shared memory key, status.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PidFile {
    pid: u32,
    port: u16,
    ready: bool,
}

fn parse(contents: &str) -> Option<PidFile> {
    let lines: Vec<&str> = contents.lines().map(str::trim).collect();
    // A negative pid is a single-user backend, which never answers on TCP.
    let pid = lines.first()?.parse().ok()?;
    let port = lines.get(3)?.parse().ok()?;
    let ready = lines.get(7).is_some_and(|status| *status == "ready");
    Some(PidFile { pid, port, ready })
}

fn read(data_dir: &Path) -> Option<PidFile> {
    parse(&std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?)
}

/// Who has the pid a pid file names now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// Nobody: the server is gone.
    Gone,
    /// A PostgreSQL server.
    Postgres,
    /// An unrelated process. A pid file outlives a crash or reboot, and its
    /// pid may be reused since, likely in containers, whose pids restart low.
    Other,
}

fn owner(pid: u32) -> Owner {
    match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) if matches!(comm.trim(), "postgres" | "postmaster") => Owner::Postgres,
        Ok(_) => Owner::Other,
        // Unreadable (hidepid) yet present: trust the pid file.
        Err(_) if Path::new(&format!("/proc/{pid}")).exists() => Owner::Postgres,
        Err(_) => Owner::Gone,
    }
}

fn answers(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// Whether a postmaster still holds the data directory, by its pid file.
pub(crate) fn holds_data_dir(data_dir: &Path) -> bool {
    read(data_dir).is_some_and(|pid_file| owner(pid_file.pid) == Owner::Postgres)
}

/// The server running in `data_dir`, if any. A server that is still starting
/// (or recovering, or stopping) is waited for up to `timeout`: a live server
/// must be reused or left alone, never started over. A stale pid file counts
/// as no server: PostgreSQL replaces one whose process is gone, and one whose
/// pid now belongs to an unrelated process is removed here, since PostgreSQL
/// would refuse to start over it.
pub(crate) fn running_server(
    data_dir: &Path,
    timeout: Duration,
) -> Result<Option<Running>, DbError> {
    let deadline = Instant::now() + timeout;
    loop {
        let Some(pid_file) = read(data_dir) else {
            return Ok(None);
        };
        match owner(pid_file.pid) {
            Owner::Postgres => {}
            Owner::Gone => return Ok(None),
            Owner::Other => {
                tracing::warn!(pid = pid_file.pid, data_dir = %data_dir.display(), "removing stale postmaster.pid");
                let path = data_dir.join("postmaster.pid");
                std::fs::remove_file(&path)
                    .context(|| format!("removing stale {}", path.display()))?;
                return Ok(None);
            }
        }
        if pid_file.ready && answers(pid_file.port) {
            return Ok(Some(Running {
                pid: pid_file.pid,
                port: pid_file.port,
            }));
        }
        if Instant::now() >= deadline {
            return Err(DbError::Unresponsive {
                data_dir: data_dir.to_path_buf(),
                pid: pid_file.pid,
                port: pid_file.port,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_pid_file_is_parsed() {
        let contents = "4242\n/tmp/data\n1700000000\n54321\n\n127.0.0.1\n  1234   5678\nready   \n";
        assert_eq!(
            parse(contents),
            Some(PidFile {
                pid: 4242,
                port: 54321,
                ready: true
            })
        );
    }

    #[test]
    fn a_starting_server_is_not_ready() {
        let contents = "4242\n/tmp/data\n1700000000\n54321\n\n127.0.0.1\n  1234   5678\nstarting\n";
        assert_eq!(parse(contents).map(|p| p.ready), Some(false));
    }

    #[test]
    fn a_pid_is_owned_by_postgres_only_when_it_runs_postgres() {
        assert_eq!(owner(std::process::id()), Owner::Other);
        assert_eq!(owner(u32::MAX), Owner::Gone);
    }

    #[test]
    fn a_truncated_pid_file_is_ignored() {
        assert_eq!(parse("4242\n/tmp/data\n"), None);
    }
}
