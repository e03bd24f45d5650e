//! How much memory the engine may use when the configuration does not say,
//! and whether what the configuration says fits the host.
//!
//! The pool bounds what DataFusion's operators account for; the process
//! holds more than that (Parquet decoding and writing buffers, batches in
//! flight between operators, the allocator's slack). docs/guarantees.md
//! gives the measured figure behind [`RSS_PER_POOL_BYTE`].

use std::path::Path;

/// The share of the memory a process may use that goes to DataFusion's
/// pool; the rest covers what the pool does not track. With the process
/// peaking at [`RSS_PER_POOL_BYTE`] times its pool, half leaves a fifth of
/// the share free.
const POOL_SHARE: f64 = 0.5;

/// Peak resident memory per byte of pool assumed by the overcommit
/// warning: above the 1.15 measured here for a query that filled its pool,
/// and the 1.58 reported for a worker with a 512 MiB pool
/// (docs/guarantees.md, "Memory").
pub(crate) const RSS_PER_POOL_BYTE: f64 = 1.6;

/// The memory one engine process may use, and where the figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostShare {
    /// The container's cgroup limit: the container is this process's share.
    Cgroup(u64),
    /// The machine's memory divided among the engine processes that share it
    /// (`CRUNCH_ENGINES_PER_HOST`).
    Machine {
        /// The machine's memory.
        total: u64,
        /// Engine processes on the machine.
        engines: usize,
    },
    /// Nothing could be read.
    Unknown,
}

impl HostShare {
    /// Reads the cgroup limit and the machine's memory.
    pub(crate) fn detect(engines_per_host: usize) -> HostShare {
        let total = read(Path::new("/proc/meminfo")).and_then(|text| mem_total(&text));
        let cgroup = read(Path::new("/sys/fs/cgroup/memory.max"))
            .and_then(|text| cgroup_limit(&text))
            .or_else(|| {
                read(Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
                    .and_then(|text| cgroup_limit(&text))
            })
            // cgroup v1 reports "no limit" as a huge number rather than "max".
            .filter(|limit| total.is_none_or(|total| *limit < total));
        match (cgroup, total) {
            (Some(limit), _) => HostShare::Cgroup(limit),
            (None, Some(total)) => HostShare::Machine {
                total,
                engines: engines_per_host.max(1),
            },
            (None, None) => HostShare::Unknown,
        }
    }

    /// The bytes this process may use.
    fn bytes(self) -> Option<u64> {
        match self {
            HostShare::Cgroup(limit) => Some(limit),
            HostShare::Machine { total, engines } => Some(total / engines.max(1) as u64),
            HostShare::Unknown => None,
        }
    }

    /// The pool size when nothing is configured: half of this process's
    /// share, else 1 GiB.
    pub(crate) fn default_pool(self) -> usize {
        let bytes = self
            .bytes()
            .map_or(1 << 30, |bytes| (bytes as f64 * POOL_SHARE) as u64);
        usize::try_from(bytes).unwrap_or(usize::MAX)
    }

    /// Why a pool of `pool` bytes promises more than the host has, if it
    /// does: its expected peak (times the engines sharing the machine)
    /// against the container limit or the machine's memory.
    pub(crate) fn overcommit(self, pool: usize) -> Option<String> {
        let peak = pool as f64 * RSS_PER_POOL_BYTE;
        let gib = |bytes: f64| bytes / f64::from(1u32 << 30);
        match self {
            HostShare::Cgroup(limit) if peak > limit as f64 => Some(format!(
                "a {:.2} GiB query pool may reach {:.2} GiB resident, over the container's limit of {:.2} GiB: lower CRUNCH_MEMORY_LIMIT_BYTES",
                gib(pool as f64),
                gib(peak),
                gib(limit as f64)
            )),
            HostShare::Machine { total, engines } if peak * engines as f64 > total as f64 => {
                Some(format!(
                    "{engines} engine process(es) with a {:.2} GiB query pool each may reach {:.2} GiB resident, over the machine's {:.2} GiB: lower CRUNCH_MEMORY_LIMIT_BYTES or set CRUNCH_ENGINES_PER_HOST to the number of crunch processes on this host",
                    gib(pool as f64),
                    gib(peak * engines as f64),
                    gib(total as f64)
                ))
            }
            _ => None,
        }
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Parses a cgroup limit file: a byte count, or `max` for none.
fn cgroup_limit(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// Parses `MemTotal:  16384 kB` out of /proc/meminfo.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cgroup_limit_gives_half_of_it() {
        assert_eq!(cgroup_limit("1000000\n"), Some(1_000_000));
        assert_eq!(HostShare::Cgroup(1_000_000).default_pool(), 500_000);
    }

    #[test]
    fn without_a_cgroup_limit_the_machine_is_shared_among_its_engines() {
        assert_eq!(cgroup_limit("max\n"), None);
        let meminfo = "MemTotal:       16000 kB\nMemFree:        1000 kB\n";
        let total = mem_total(meminfo).unwrap();
        assert_eq!(total, 16_384_000);
        let alone = HostShare::Machine { total, engines: 1 };
        let three = HostShare::Machine { total, engines: 3 };
        assert_eq!(alone.default_pool(), 8_192_000);
        assert_eq!(three.default_pool(), 2_730_666);
        // The defaults never overcommit; three engines each given the pool
        // one would have alone do.
        assert_eq!(alone.overcommit(alone.default_pool()), None);
        assert_eq!(three.overcommit(three.default_pool()), None);
        let warning = three.overcommit(alone.default_pool()).unwrap();
        assert!(warning.contains("CRUNCH_ENGINES_PER_HOST"), "{warning}");
    }

    #[test]
    fn a_pool_over_the_container_limit_is_reported() {
        let share = HostShare::Cgroup(1 << 30);
        assert_eq!(share.overcommit(share.default_pool()), None);
        assert!(share.overcommit(1 << 30).is_some());
    }

    #[test]
    fn the_detected_limit_is_positive() {
        assert!(HostShare::detect(1).default_pool() > 0);
    }
}
