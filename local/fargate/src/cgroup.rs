//! The kernel's own count of OOM kills in a container's memory cgroup: `oom_kill` in
//! `memory.events` (cgroup v2) or in `memory.oom_control` (cgroup v1). It tells an OOM
//! kill from any other SIGKILL, where an exit code of 137 cannot, and it is what
//! container runtimes read to report one (conmon, containerd; ECS then says
//! `OutOfMemoryError`).
//!
//! The cgroup goes away with the container: podman's cleanup removes it as soon as
//! the container exits, often before `podman run` returns. So the count is read
//! while the container runs, woken by the kernel's own notification of a memory
//! event (inotify on `memory.events`, v2; an eventfd on `memory.oom_control`
//! through `cgroup.event_control`, v1: conmon's two ways), and polled besides.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The file of a memory cgroup that holds its `oom_kill` count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomCounter {
    /// The cgroup's folder.
    pub dir: PathBuf,
    /// cgroup v1 (`memory.oom_control`) rather than v2 (`memory.events`).
    pub v1: bool,
}

impl OomCounter {
    pub fn file(&self) -> PathBuf {
        self.dir.join(if self.v1 {
            "memory.oom_control"
        } else {
            "memory.events"
        })
    }

    /// The count now; `None` when the cgroup is gone (or never was).
    pub fn read(&self) -> Option<u64> {
        oom_kills_in(&std::fs::read_to_string(self.file()).ok()?)
    }
}

/// `oom_kill <n>` from a `memory.events` or `memory.oom_control` text.
pub fn oom_kills_in(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

/// The memory cgroup of a process, from its `/proc/<pid>/cgroup` and the mount
/// table (`/proc/self/mountinfo`): the v1 `memory` hierarchy when there is one (a
/// hybrid host keeps memory there), else the v2 unified one.
pub fn memory_cgroup(proc_cgroup: &str, mountinfo: &str) -> Option<OomCounter> {
    let mut unified = None;
    for line in proc_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        if controllers.split(',').any(|c| c == "memory") {
            let (mount, root) = mount_of(mountinfo, "cgroup", Some("memory"))?;
            return Some(OomCounter {
                dir: under(&mount, &root, path),
                v1: true,
            });
        }
        if controllers.is_empty() {
            unified = Some(path.to_string());
        }
    }
    let path = unified?;
    let (mount, root) = mount_of(mountinfo, "cgroup2", None)?;
    Some(OomCounter {
        dir: under(&mount, &root, &path),
        v1: false,
    })
}

/// Mount point and root of the first mount of `fstype` (with `option` among its
/// super options, for v1 controllers).
fn mount_of(mountinfo: &str, fstype: &str, option: Option<&str>) -> Option<(String, String)> {
    mountinfo.lines().find_map(|line| {
        // <id> <parent> <major:minor> <root> <mount point> <options> [optional…] - <fstype> <source> <super options>
        let (before, after) = line.split_once(" - ")?;
        let before: Vec<&str> = before.split(' ').collect();
        let mut after = after.split(' ');
        let (kind, _source, options) = (after.next()?, after.next()?, after.next().unwrap_or(""));
        let wanted = kind == fstype && option.is_none_or(|o| options.split(',').any(|x| x == o));
        if !wanted {
            return None;
        }
        Some((before.get(4)?.to_string(), before.get(3)?.to_string()))
    })
}

/// The folder of cgroup `path` in a hierarchy mounted at `mount` from `root`.
fn under(mount: &str, root: &str, path: &str) -> PathBuf {
    let relative = if root == "/" {
        path
    } else {
        path.strip_prefix(root).unwrap_or(path)
    };
    Path::new(mount).join(relative.trim_start_matches('/'))
}

/// Follows one cgroup's `oom_kill` count, in a thread of its own, until
/// [`OomWatch::finish`] or until the cgroup is removed.
pub struct OomWatch {
    counter: OomCounter,
    highest: Arc<AtomicU64>,
    /// Whether the count was ever read (else it is unknown).
    read_once: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often the count is read besides the kernel's notifications.
const POLL: Duration = Duration::from_millis(50);

impl OomWatch {
    pub fn start(counter: OomCounter) -> OomWatch {
        let highest = Arc::new(AtomicU64::new(0));
        let read_once = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let (counter, highest, read_once, done) = (
                counter.clone(),
                highest.clone(),
                read_once.clone(),
                done.clone(),
            );
            std::thread::Builder::new()
                .name("oom-watch".into())
                .spawn(move || follow(&counter, &highest, &read_once, &done))
                .ok()
        };
        OomWatch {
            counter,
            highest,
            read_once,
            done,
            thread,
        }
    }

    /// The highest count seen, reading once more if the cgroup is still there;
    /// `None` if it could never be read.
    pub async fn finish(mut self) -> Option<u64> {
        self.done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        if let Some(now) = self.counter.read() {
            self.highest.fetch_max(now, Ordering::SeqCst);
            self.read_once.store(true, Ordering::SeqCst);
        }
        self.read_once
            .load(Ordering::SeqCst)
            .then(|| self.highest.load(Ordering::SeqCst))
    }
}

impl Drop for OomWatch {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
    }
}

fn follow(counter: &OomCounter, highest: &AtomicU64, read_once: &AtomicBool, done: &AtomicBool) {
    let notifications = notifications(counter);
    let record = |n: u64| {
        highest.fetch_max(n, Ordering::SeqCst);
        read_once.store(true, Ordering::SeqCst);
    };
    while !done.load(Ordering::SeqCst) {
        let Some(before) = counter.read() else {
            return; // removed with its container
        };
        record(before);
        let notified = match &notifications {
            Some(fd) => wait_readable(fd, POLL),
            None => {
                std::thread::sleep(POLL);
                false
            }
        };
        if notified {
            // v1 notifies as the cgroup goes under OOM, just before the kill is
            // counted; read again at once, briefly, while the cgroup is there.
            let until = Instant::now() + Duration::from_millis(20);
            while let Some(now) = counter.read() {
                record(now);
                if now > before || Instant::now() >= until {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// A descriptor the kernel makes readable on the cgroup's memory events: inotify
/// on `memory.events` (v2), an eventfd registered for `memory.oom_control` (v1).
/// `None` where neither can be set up: the count is then polled only.
fn notifications(counter: &OomCounter) -> Option<Notifications> {
    let file = counter.file();
    let path = std::ffi::CString::new(file.as_os_str().as_encoded_bytes()).ok()?;
    if counter.v1 {
        // SAFETY: eventfd has no memory-safety preconditions; the result is checked.
        let event = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if event < 0 {
            return None;
        }
        // SAFETY: a fresh descriptor, owned from here on.
        let event = unsafe { OwnedFd::from_raw_fd(event) };
        let oom_control = File::open(&file).ok()?;
        let registration = format!("{} {}", event.as_raw_fd(), oom_control.as_raw_fd());
        std::fs::write(counter.dir.join("cgroup.event_control"), registration).ok()?;
        Some(Notifications {
            fd: event,
            _watched: Some(oom_control),
        })
    } else {
        // SAFETY: inotify_init1 has no memory-safety preconditions; checked.
        let inotify = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if inotify < 0 {
            return None;
        }
        // SAFETY: a fresh descriptor, owned from here on.
        let inotify = unsafe { OwnedFd::from_raw_fd(inotify) };
        // SAFETY: `path` is a NUL-terminated string that outlives the call.
        let watch =
            unsafe { libc::inotify_add_watch(inotify.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY) };
        (watch >= 0).then_some(Notifications {
            fd: inotify,
            _watched: None,
        })
    }
}

struct Notifications {
    fd: OwnedFd,
    /// v1: the `memory.oom_control` the eventfd is registered for, open as long.
    _watched: Option<File>,
}

/// Wait up to `timeout` for a notification; true if one came (and drain it).
fn wait_readable(notifications: &Notifications, timeout: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd: notifications.fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let ready = unsafe { libc::poll(&mut poll, 1, timeout.as_millis() as libc::c_int) };
    if ready <= 0 || poll.revents & libc::POLLIN == 0 {
        return false;
    }
    let mut drained = [0u8; 4096];
    // SAFETY: reads into a buffer of the length given; non-blocking descriptor.
    while unsafe {
        libc::read(
            notifications.fd.as_raw_fd(),
            drained.as_mut_ptr().cast(),
            drained.len(),
        )
    } > 0
    {}
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw
35 30 0:31 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
38 30 0:34 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn the_v1_memory_hierarchy_wins_on_a_hybrid_host() {
        let proc_cgroup = "9:name=systemd:/libpod_parent/libpod-abc\n4:memory:/libpod_parent/libpod-abc\n1:cpu:/libpod_parent/libpod-abc\n0::/\n";
        assert_eq!(
            memory_cgroup(proc_cgroup, HYBRID_MOUNTS),
            Some(OomCounter {
                dir: "/sys/fs/cgroup/memory/libpod_parent/libpod-abc".into(),
                v1: true
            })
        );
    }

    #[test]
    fn a_unified_host_uses_memory_events() {
        let mounts = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let counter =
            memory_cgroup("0::/machine.slice/libpod-abc.scope/container\n", mounts).unwrap();
        assert_eq!(
            counter.file(),
            PathBuf::from("/sys/fs/cgroup/machine.slice/libpod-abc.scope/container/memory.events")
        );
        // A hierarchy mounted from below its root (a cgroup namespace).
        let mounts = "29 23 0:26 /outer /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let counter = memory_cgroup("0::/outer/libpod_parent/libpod-abc\n", mounts).unwrap();
        assert_eq!(
            counter.dir,
            PathBuf::from("/sys/fs/cgroup/libpod_parent/libpod-abc")
        );
        assert_eq!(
            memory_cgroup("0::/x\n", HYBRID_MOUNTS.lines().nth(2).unwrap()),
            None
        );
    }

    #[test]
    fn the_count_is_read_from_either_file() {
        let v2 = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(oom_kills_in(v2), Some(1));
        assert_eq!(oom_kills_in(v1), Some(2));
        assert_eq!(oom_kills_in("oom 3\n"), None, "oom is not oom_kill");
    }

    /// A memory cgroup of `limit` bytes under this test's own, or `None` where this
    /// process may not make one (not root, cgroupfs read-only, cgroup v2 without
    /// the memory controller delegated).
    fn scratch_cgroup(name: &str, limit: u64) -> Option<OomCounter> {
        let own = memory_cgroup(
            &std::fs::read_to_string("/proc/self/cgroup").ok()?,
            &std::fs::read_to_string("/proc/self/mountinfo").ok()?,
        )?;
        let counter = OomCounter {
            dir: own.dir.join(format!("{name}-{}", std::process::id())),
            v1: own.v1,
        };
        std::fs::create_dir(&counter.dir).ok()?;
        let limits: &[&str] = if counter.v1 {
            &["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
        } else {
            &["memory.max", "memory.swap.max"]
        };
        let set = limits.iter().enumerate().all(|(i, file)| {
            let value = if !counter.v1 && i == 1 { 0 } else { limit };
            // Without swap accounting the second file is absent: no swap to limit.
            let path = counter.dir.join(file);
            (i == 1 && !path.exists()) || std::fs::write(path, value.to_string()).is_ok()
        });
        if !set || counter.read().is_none() {
            let _ = std::fs::remove_dir(&counter.dir);
            return None;
        }
        Some(counter)
    }

    /// Run `program` in the cgroup, SIGKILL it after `kill_after` if given, reap it,
    /// and remove the cgroup as podman's cleanup does; the watch's count and the exit.
    async fn run_in(
        counter: &OomCounter,
        program: &str,
        kill_after: Option<Duration>,
    ) -> (Option<u64>, Option<i32>) {
        use std::os::unix::process::ExitStatusExt;
        let watch = OomWatch::start(counter.clone());
        let procs = counter.dir.join("cgroup.procs");
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!("echo $$ > {} && exec {program}", procs.display()))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        if let Some(after) = kill_after {
            tokio::time::sleep(after).await;
            child.start_kill().unwrap();
        }
        let status = child.wait().await.unwrap();
        // podman's cleanup removes the cgroup a process start later.
        tokio::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..50 {
            if std::fs::remove_dir(&counter.dir).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (watch.finish().await, status.signal())
    }

    /// The kernel itself: an OOM kill is counted, a SIGKILL from outside is not,
    /// and the watch keeps the count after the cgroup is gone. Skipped where this
    /// process may not make a memory cgroup.
    #[tokio::test]
    async fn the_kernel_counts_an_oom_kill_and_not_another_sigkill() {
        let Some(oom) = scratch_cgroup("baton-oom-test", 16 * 1024 * 1024) else {
            eprintln!("skipped: no memory cgroup of our own can be made here");
            return;
        };
        // `tail /dev/zero` keeps one endless line in memory.
        let (kills, signal) = run_in(&oom, "tail /dev/zero", None).await;
        assert_eq!((kills, signal), (Some(1), Some(libc::SIGKILL)));

        let Some(killed) = scratch_cgroup("baton-kill-test", 16 * 1024 * 1024) else {
            panic!("a second cgroup could not be made");
        };
        let (kills, signal) = run_in(&killed, "sleep 60", Some(Duration::from_millis(300))).await;
        assert_eq!((kills, signal), (Some(0), Some(libc::SIGKILL)));
    }

    #[tokio::test]
    async fn a_watch_keeps_the_highest_count_after_the_cgroup_is_gone() {
        let scratch = std::env::temp_dir().join(format!("oom-watch-{}", std::process::id()));
        let counter = OomCounter {
            dir: scratch.join("libpod-abc"),
            v1: false,
        };
        std::fs::create_dir_all(&counter.dir).unwrap();
        std::fs::write(counter.file(), "oom 0\noom_kill 0\n").unwrap();
        let watch = OomWatch::start(counter.clone());
        std::fs::write(counter.file(), "oom 1\noom_kill 1\n").unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::remove_dir_all(&counter.dir).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(watch.finish().await, Some(1));

        let never = OomCounter {
            dir: scratch.join("never"),
            v1: true,
        };
        assert_eq!(OomWatch::start(never).finish().await, None);
        let _ = std::fs::remove_dir_all(&scratch);
    }
}
