//! The container's memory: its limit (the cgroup's, or the ECS task's), the
//! transfer budget that follows from it, and the peak a run reached.
//!
//! Behind `exec`, every byte of transfer buffers is a byte the user's program does
//! not have: a fixed 160 MiB is a third of a 512 MiB task. So by default the budget
//! is one eighth of the container's memory limit (a 512 MiB task keeps at least
//! seven eighths for the work), within [`MIN_TRANSFER_MEMORY`] and
//! [`MAX_TRANSFER_MEMORY`]; an explicit `BATON_TRANSFER_MEMORY` always wins.

use std::path::{Path, PathBuf};

use baton::store::DEFAULT_TRANSFER_MEMORY;

const MIB: u64 = 1024 * 1024;
/// The largest default budget: the old fixed default, enough for ~750 MB/s each way
/// (9 ranges and 9 parts of 8 MiB in flight), more than a Fargate task's network.
pub const MAX_TRANSFER_MEMORY: usize = DEFAULT_TRANSFER_MEMORY;
/// The smallest default budget: per direction one 8 MiB range (or part) in flight
/// and one being read (or filled). The store keeps at least that much in flight
/// whatever the budget, so a smaller number would only misstate the memory used.
pub const MIN_TRANSFER_MEMORY: usize = 32 * 1024 * 1024;
/// The budget's share of the limit: one eighth.
pub const LIMIT_SHARE: u64 = 8;
/// cgroup v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX pages); anything
/// from 2^60 bytes up is no limit.
const NO_LIMIT_FROM: u64 = 1 << 60;

/// Where a number came from, for the log line and the metrics.
pub type Source = &'static str;

/// A memory limit in bytes, and where it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit {
    pub bytes: u64,
    pub source: Source,
}

impl MemoryLimit {
    /// The smaller of two limits (both apply).
    pub fn tighter(a: Option<MemoryLimit>, b: Option<MemoryLimit>) -> Option<MemoryLimit> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.bytes < a.bytes { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

/// The transfer budget and why it is that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferBudget {
    pub bytes: usize,
    /// `BATON_TRANSFER_MEMORY`, `limit/8`, `limit/8, floor`, `limit/8, cap` or
    /// `no limit, default`.
    pub chosen_by: &'static str,
    pub limit: Option<MemoryLimit>,
}

/// The transfer budget: `explicit` (`BATON_TRANSFER_MEMORY`) when given; else one
/// eighth of the memory limit, rounded down to a MiB, between the floor and the cap;
/// else (no limit found) the cap, the old default.
pub fn transfer_budget(explicit: Option<usize>, limit: Option<MemoryLimit>) -> TransferBudget {
    let (bytes, chosen_by) = match (explicit, limit) {
        (Some(bytes), _) => (bytes, "BATON_TRANSFER_MEMORY"),
        (None, None) => (MAX_TRANSFER_MEMORY, "no limit, default"),
        (None, Some(limit)) => {
            let eighth = (limit.bytes / LIMIT_SHARE / MIB * MIB).min(usize::MAX as u64) as usize;
            if eighth > MAX_TRANSFER_MEMORY {
                (MAX_TRANSFER_MEMORY, "limit/8, cap")
            } else if eighth < MIN_TRANSFER_MEMORY {
                (MIN_TRANSFER_MEMORY, "limit/8, floor")
            } else {
                (eighth, "limit/8")
            }
        }
    };
    TransferBudget {
        bytes,
        chosen_by,
        limit,
    }
}

/// Reads a file of the (real or pretend) filesystem; `None` when it cannot.
pub type Read<'a> = &'a dyn Fn(&Path) -> Option<String>;

/// The real filesystem.
pub fn read_file(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

const ROOT: &str = "/sys/fs/cgroup";

/// The process's cgroup folders, innermost first, for cgroup v2 (`0::<path>`) and
/// v1's memory controller (`N:…memory…:<path>`), with the file of each that holds
/// the limit. Inside a container the mount's root is the container's own cgroup
/// and `<path>` may name a folder that is not visible there: the mount's root is
/// then the one to read.
fn cgroup_dirs(proc_self_cgroup: &str, read: Read<'_>) -> Vec<(Vec<PathBuf>, bool)> {
    let mut dirs = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (mount, v2) = if id == "0" && controllers.is_empty() {
            (PathBuf::from(ROOT), true)
        } else if controllers.split(',').any(|c| c == "memory") {
            (Path::new(ROOT).join("memory"), false)
        } else {
            continue;
        };
        let own = mount.join(path.trim_start_matches('/'));
        // The process's own folder when it is visible, else the mount's root.
        let probe = if v2 { "cgroup.procs" } else { "tasks" };
        let start = if own != mount && read(&own.join(probe)).is_some() {
            own
        } else {
            mount.clone()
        };
        let mut chain = Vec::new();
        let mut dir = start;
        loop {
            chain.push(dir.clone());
            if dir == mount || !dir.pop() || !dir.starts_with(&mount) {
                break;
            }
        }
        dirs.push((chain, v2));
    }
    dirs
}

fn bytes_in(text: &str) -> Option<u64> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|&b| b < NO_LIMIT_FROM)
}

/// The tightest memory limit of the process's cgroups (v2 `memory.max`, v1
/// `memory.limit_in_bytes`), its own and every ancestor visible.
pub fn cgroup_limit(proc_self_cgroup: &str, read: Read<'_>) -> Option<MemoryLimit> {
    cgroup_dirs(proc_self_cgroup, read)
        .into_iter()
        .flat_map(|(chain, v2)| chain.into_iter().map(move |dir| (dir, v2)))
        .filter_map(|(dir, v2)| {
            let (file, source) = if v2 {
                ("memory.max", "cgroup v2 memory.max")
            } else {
                ("memory.limit_in_bytes", "cgroup v1 memory.limit_in_bytes")
            };
            let bytes = bytes_in(&read(&dir.join(file))?)?;
            Some(MemoryLimit { bytes, source })
        })
        .fold(None, |tightest, limit| {
            MemoryLimit::tighter(tightest, Some(limit))
        })
}

/// The memory limit of the task from ECS task metadata v4 (`/task`): the task's
/// `Limits.Memory` in MiB (Fargate puts the task's memory there; the container of
/// a task-level limit may have no cgroup limit of its own).
pub fn task_metadata_limit(task: &serde_json::Value) -> Option<MemoryLimit> {
    let mib = task["Limits"]["Memory"].as_f64().filter(|m| *m > 0.0)?;
    Some(MemoryLimit {
        bytes: (mib * MIB as f64) as u64,
        source: "ECS task metadata Limits.Memory",
    })
}

/// The peak memory of the process's cgroup (v2 `memory.peak`, Linux 5.19 and later;
/// v1 `memory.max_usage_in_bytes`): in a container, the container's whole peak,
/// the user's program included.
pub fn cgroup_peak(proc_self_cgroup: &str, read: Read<'_>) -> Option<(u64, Source)> {
    // Each hierarchy's innermost folder: the process's own cgroup, not a parent's.
    cgroup_dirs(proc_self_cgroup, read)
        .into_iter()
        .find_map(|(chain, v2)| {
            let (file, source) = if v2 {
                ("memory.peak", "cgroup v2 memory.peak")
            } else {
                (
                    "memory.max_usage_in_bytes",
                    "cgroup v1 memory.max_usage_in_bytes",
                )
            };
            Some((bytes_in(&read(&chain.first()?.join(file))?)?, source))
        })
}

/// The peak resident memory of this process and of the largest child it waited
/// for (getrusage `ru_maxrss`), whichever is larger: no cgroup to ask.
pub fn rusage_peak() -> Option<(u64, Source)> {
    let max_rss = |who| {
        // SAFETY: getrusage writes into the zeroed struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        (unsafe { libc::getrusage(who, &mut usage) } == 0).then_some(usage.ru_maxrss as u64 * 1024)
    };
    let peak = max_rss(libc::RUSAGE_SELF)?.max(max_rss(libc::RUSAGE_CHILDREN).unwrap_or(0));
    Some((peak, "getrusage ru_maxrss"))
}

/// The run's peak memory: the cgroup's when it can be read, else getrusage's.
pub fn peak_memory() -> Option<(u64, Source)> {
    let cgroup = read_file(Path::new("/proc/self/cgroup")).unwrap_or_default();
    cgroup_peak(&cgroup, &read_file).or_else(rusage_peak)
}

/// The memory limit of this process's cgroups.
pub fn own_cgroup_limit() -> Option<MemoryLimit> {
    let cgroup = read_file(Path::new("/proc/self/cgroup")).unwrap_or_default();
    cgroup_limit(&cgroup, &read_file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn fs(files: &[(&str, &str)]) -> impl Fn(&Path) -> Option<String> + use<> {
        let files: HashMap<PathBuf, String> = files
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect();
        move |path: &Path| files.get(path).cloned()
    }

    fn limit(mib: u64) -> Option<MemoryLimit> {
        Some(MemoryLimit {
            bytes: mib * MIB,
            source: "test",
        })
    }

    #[test]
    fn the_budget_is_an_eighth_of_the_limit_within_floor_and_cap_unless_set() {
        let mib = |b: usize| b as u64 / MIB;
        // (explicit, limit in MiB) → (budget in MiB, why)
        let rows: [(Option<usize>, Option<MemoryLimit>, u64, &str); 9] = [
            // Fargate's sizes: 512 MiB keeps 7/8 (448 MiB) for the work.
            (None, limit(512), 64, "limit/8"),
            (None, limit(1024), 128, "limit/8"),
            (None, limit(1280), 160, "limit/8"),
            (None, limit(2048), 160, "limit/8, cap"),
            (None, limit(30 * 1024), 160, "limit/8, cap"),
            // Below 256 MiB the floor holds: one range and one part each way.
            (None, limit(256), 32, "limit/8"),
            (None, limit(128), 32, "limit/8, floor"),
            (None, None, 160, "no limit, default"),
            // An explicit setting wins over everything, even above the cap.
            (Some(1 << 30), limit(512), 1024, "BATON_TRANSFER_MEMORY"),
        ];
        for (explicit, limit, budget, why) in rows {
            let chosen = transfer_budget(explicit, limit);
            assert_eq!(
                (mib(chosen.bytes), chosen.chosen_by),
                (budget, why),
                "{explicit:?} {limit:?}"
            );
            assert_eq!(chosen.limit, limit);
        }
        // At least seven eighths stay for the work wherever the floor does not hold.
        for mib in [256u64, 512, 700, 1024, 3000, 8192] {
            let chosen = transfer_budget(None, limit(mib));
            assert!(chosen.bytes as u64 * 8 <= mib * MIB, "{mib} MiB");
        }
        // An odd limit rounds down to whole MiB.
        let odd = transfer_budget(
            None,
            Some(MemoryLimit {
                bytes: 600 * MIB + 12345,
                source: "t",
            }),
        );
        assert_eq!(odd.bytes as u64, 75 * MIB);
    }

    #[test]
    fn the_cgroup_v2_limit_is_the_tightest_of_the_process_cgroup_and_its_ancestors() {
        // A container with its own cgroup namespace: the process sits at the root.
        let container = fs(&[("/sys/fs/cgroup/memory.max", "536870912\n")]);
        assert_eq!(
            cgroup_limit("0::/\n", &container),
            Some(MemoryLimit {
                bytes: 512 * MIB,
                source: "cgroup v2 memory.max"
            })
        );
        // A process deep in a host's hierarchy: its parent holds the limit.
        let host = fs(&[
            (
                "/sys/fs/cgroup/system.slice/job.service/cgroup.procs",
                "1\n",
            ),
            (
                "/sys/fs/cgroup/system.slice/job.service/memory.max",
                "max\n",
            ),
            ("/sys/fs/cgroup/system.slice/memory.max", "1073741824\n"),
        ]);
        assert_eq!(
            cgroup_limit("0::/system.slice/job.service\n", &host).map(|l| l.bytes),
            Some(1024 * MIB)
        );
        // "max" everywhere: no limit.
        let unlimited = fs(&[("/sys/fs/cgroup/memory.max", "max\n")]);
        assert_eq!(cgroup_limit("0::/\n", &unlimited), None);
        // Nothing readable: no limit, no error.
        assert_eq!(cgroup_limit("", &fs(&[])), None);
    }

    #[test]
    fn the_cgroup_v1_limit_and_its_unlimited_value() {
        // podman on cgroup v1: /proc/self/cgroup names the host's path, the mount
        // shows the container's cgroup as its root.
        let text = "12:pids:/machine.slice/libpod-1\n4:memory:/machine.slice/libpod-1\n0::/\n";
        let container = fs(&[("/sys/fs/cgroup/memory/memory.limit_in_bytes", "268435456\n")]);
        assert_eq!(
            cgroup_limit(text, &container),
            Some(MemoryLimit {
                bytes: 256 * MIB,
                source: "cgroup v1 memory.limit_in_bytes"
            })
        );
        let unlimited = fs(&[(
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "9223372036854771712\n",
        )]);
        assert_eq!(cgroup_limit(text, &unlimited), None);
        // Controllers listed together, the process's folder visible.
        let joint = fs(&[
            ("/sys/fs/cgroup/memory/job/tasks", "1\n"),
            (
                "/sys/fs/cgroup/memory/job/memory.limit_in_bytes",
                "104857600\n",
            ),
            (
                "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
        ]);
        assert_eq!(
            cgroup_limit("5:memory,hugetlb:/job\n", &joint).map(|l| l.bytes),
            Some(100 * MIB)
        );
    }

    #[test]
    fn the_task_metadata_limit_and_the_tighter_of_two() {
        let task = serde_json::json!({"TaskARN": "arn", "Limits": {"CPU": 0.25, "Memory": 512}});
        let from_task = task_metadata_limit(&task);
        assert_eq!(from_task.map(|l| l.bytes), Some(512 * MIB));
        assert_eq!(
            task_metadata_limit(&serde_json::json!({"TaskARN": "a"})),
            None
        );
        let cgroup = Some(MemoryLimit {
            bytes: 300 * MIB,
            source: "cgroup v2 memory.max",
        });
        assert_eq!(MemoryLimit::tighter(from_task, cgroup), cgroup);
        assert_eq!(MemoryLimit::tighter(from_task, None), from_task);
        assert_eq!(MemoryLimit::tighter(None, None), None);
    }

    #[test]
    fn the_peak_comes_from_the_cgroup_else_getrusage() {
        let v2 = fs(&[("/sys/fs/cgroup/memory.peak", "123456789\n")]);
        assert_eq!(
            cgroup_peak("0::/\n", &v2),
            Some((123456789, "cgroup v2 memory.peak"))
        );
        let v1 = fs(&[("/sys/fs/cgroup/memory/memory.max_usage_in_bytes", "4096\n")]);
        assert_eq!(
            cgroup_peak("4:memory:/x\n", &v1),
            Some((4096, "cgroup v1 memory.max_usage_in_bytes"))
        );
        // A kernel before 5.19 has no memory.peak.
        assert_eq!(cgroup_peak("0::/\n", &fs(&[])), None);
        let (bytes, source) = rusage_peak().unwrap();
        assert!(bytes > 1024 * 1024, "{bytes}");
        assert_eq!(source, "getrusage ru_maxrss");
    }
}
