//! How much memory the engine may use when the configuration does not say.

use std::path::Path;

/// The share of a container's memory limit given to DataFusion's pool; the
/// rest covers what the pool does not track (Parquet decoding buffers, the
/// writer, the process itself).
const CGROUP_SHARE: f64 = 0.6;

/// The pool size when nothing is configured: 60% of the cgroup memory limit
/// if there is one, else half the machine's memory, else 1 GiB.
pub(crate) fn default_memory_limit() -> usize {
    let total = read(Path::new("/proc/meminfo")).and_then(|text| mem_total(&text));
    let cgroup = read(Path::new("/sys/fs/cgroup/memory.max"))
        .and_then(|text| cgroup_limit(&text))
        .or_else(|| {
            read(Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
                .and_then(|text| cgroup_limit(&text))
        })
        // cgroup v1 reports "no limit" as a huge number rather than "max".
        .filter(|limit| total.is_none_or(|total| *limit < total));
    pool_size(cgroup, total)
}

fn pool_size(cgroup_limit: Option<u64>, total: Option<u64>) -> usize {
    let bytes = match (cgroup_limit, total) {
        (Some(limit), _) => (limit as f64 * CGROUP_SHARE) as u64,
        (None, Some(total)) => total / 2,
        (None, None) => 1 << 30,
    };
    usize::try_from(bytes).unwrap_or(usize::MAX)
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
    fn a_cgroup_limit_gives_sixty_percent_of_it() {
        assert_eq!(cgroup_limit("1000000\n"), Some(1_000_000));
        assert_eq!(pool_size(Some(1_000_000), Some(8_000_000)), 600_000);
    }

    #[test]
    fn no_cgroup_limit_gives_half_the_machine() {
        assert_eq!(cgroup_limit("max\n"), None);
        let meminfo = "MemTotal:       16000 kB\nMemFree:        1000 kB\n";
        assert_eq!(mem_total(meminfo), Some(16_384_000));
        assert_eq!(pool_size(None, Some(16_384_000)), 8_192_000);
    }

    #[test]
    fn the_detected_limit_is_positive() {
        assert!(default_memory_limit() > 0);
    }
}
