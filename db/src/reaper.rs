//! Removing a throwaway cluster however its owner process ends.
//!
//! A static is never dropped and a killed process runs no code, so cleanup
//! cannot live in this process. Instead a small shell process waits on a pipe
//! whose only write end we hold: when we drop it, exit, crash or are killed,
//! the kernel closes it, the shell's `read` returns, and the shell stops the
//! server and deletes the directory. It runs in its own process group so the
//! Ctrl-C or group kill that ends us does not end it too.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::binaries::Binaries;
use crate::error::{DbError, IoContext};

/// Waits for EOF on stdin, then runs the stop command ("$@") and removes the
/// directory ($1). The stop fails harmlessly when no server runs.
const SCRIPT: &str = r#"dir=$1; shift; read -r _; "$@"; rm -rf -- "$dir""#;

/// The watcher process of one throwaway cluster. Dropping it cleans up the
/// cluster and waits until that is done.
#[derive(Debug)]
pub(crate) struct Reaper {
    child: Child,
    // Held only for its lifetime: closing it is the signal to clean up.
    pipe: Option<ChildStdin>,
}

impl Reaper {
    /// Starts watching: from now on, `data_dir` is stopped and removed once
    /// this value or this process goes away.
    pub(crate) fn spawn(binaries: &Binaries, data_dir: &Path) -> Result<Self, DbError> {
        let stop = binaries.argv(
            "pg_ctl",
            &[
                OsString::from("stop"),
                "-m".into(),
                "immediate".into(),
                "-w".into(),
                "-D".into(),
                data_dir.as_os_str().to_owned(),
            ],
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("crunch-db-reaper")
            .arg(data_dir)
            .args(stop)
            .current_dir("/")
            .stdin(Stdio::piped())
            // Not inherited: a test harness waits for its child's output pipes
            // to close, which would make it wait for the reaper too.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context(|| "starting the cleanup process for the throwaway cluster".to_owned())?;
        let pipe = child.stdin.take();
        Ok(Self { child, pipe })
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        drop(self.pipe.take());
        if let Err(error) = self.child.wait() {
            tracing::warn!(%error, "waiting for the throwaway cluster's cleanup failed");
        }
    }
}
