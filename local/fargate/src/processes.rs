//! A process task's processes, as a container would hold them.
//!
//! A task run as a process gets its own process group; but Baton's worker runs its
//! program in a group of its own (so that it can stop the program's pipeline as a
//! whole), and so may any program. A container's SIGKILL, freeze or memory limit
//! reaches every process inside it (its PID namespace and cgroup); here that is the
//! task's group and everything that descends from it, whatever group it moved to.
//! Signalling the group alone left the worker's program running after a SIGKILL
//! (70 `sleep`s of a stopped fan-out outlived the local stack, 2026-12-08).

use std::collections::HashSet;

/// One line of the process table: `/proc/<pid>/stat`'s pid, parent and group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
}

/// The processes now running, from `/proc`.
pub fn table() -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?))
        .collect()
}

/// pid, ppid and pgrp of a `/proc/<pid>/stat` line; the command (which may hold spaces
/// and parentheses) ends at the last `)`.
pub fn parse_stat(stat: &str) -> Option<Proc> {
    let pid = stat.split_whitespace().next()?.parse().ok()?;
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let _state = rest.next()?;
    Some(Proc {
        pid,
        ppid: rest.next()?.parse().ok()?,
        pgrp: rest.next()?.parse().ok()?,
    })
}

/// The task's processes among `table`: those of its group `pgid`, their descendants,
/// and the other members of the groups those descendants lead or joined.
pub fn of_task(table: &[Proc], pgid: i32) -> Vec<i32> {
    let mut pids: HashSet<i32> = table
        .iter()
        .filter(|p| p.pgrp == pgid)
        .map(|p| p.pid)
        .collect();
    loop {
        let groups: HashSet<i32> = table
            .iter()
            .filter(|p| pids.contains(&p.pid))
            .map(|p| p.pgrp)
            .collect();
        let more: Vec<i32> = table
            .iter()
            .filter(|p| {
                !pids.contains(&p.pid) && (pids.contains(&p.ppid) || groups.contains(&p.pgrp))
            })
            .map(|p| p.pid)
            .collect();
        if more.is_empty() {
            let mut pids: Vec<i32> = pids.into_iter().collect();
            pids.sort_unstable();
            return pids;
        }
        pids.extend(more);
    }
}

/// Send `signal` to the task's group only: what ECS's StopTask sends first (SIGTERM)
/// goes to the container's main process, which passes it on.
pub fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: killpg has no memory-safety preconditions; a stale group id only fails.
    unsafe {
        libc::killpg(pgid, signal);
    }
}

/// Send `signal` to the task's group and every other process of the task.
pub fn signal_task(pgid: i32, signal: i32) {
    signal_group(pgid, signal);
    for pid in of_task(&table(), pgid) {
        // SAFETY: kill has no memory-safety preconditions; a process gone only fails.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Resident memory of every process of the task, in bytes.
pub fn rss_bytes(pgid: i32) -> u64 {
    let page = 4096u64;
    of_task(&table(), pgid)
        .into_iter()
        .filter_map(|pid| {
            let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
            statm
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
                .map(|pages| pages * page)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, ppid: i32, pgrp: i32) -> Proc {
        Proc { pid, ppid, pgrp }
    }

    #[test]
    fn a_stat_line_parses_past_a_command_with_spaces_and_parentheses() {
        let line = "4242 (a (b) c) S 4200 4100 4100 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0";
        assert_eq!(parse_stat(line), Some(p(4242, 4200, 4100)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn the_task_holds_its_group_and_what_descends_from_it_in_other_groups() {
        let table = [
            p(1, 0, 1),       // init
            p(100, 1, 100),   // the task: the worker, leader of its group
            p(101, 100, 101), // the worker's program, in a group of its own
            p(102, 101, 101), // a pipeline of that program's
            p(103, 1, 101),   // one of its members, its parent gone
            p(104, 102, 104), // a grandchild that made its own group
            p(200, 1, 200),   // another task
            p(201, 200, 201), // and its program
            p(300, 1, 100),   // a stray in the task's group: still the task's
        ];
        assert_eq!(of_task(&table, 100), vec![100, 101, 102, 103, 104, 300]);
        assert_eq!(of_task(&table, 200), vec![200, 201]);
        assert_eq!(of_task(&table, 999), Vec::<i32>::new());
    }

    #[test]
    fn a_sigkill_reaches_a_program_in_a_group_of_its_own() {
        use std::os::unix::process::CommandExt;
        // sh (the task's group) starts sleep in a new group, as the worker does.
        let mut task = std::process::Command::new("sh")
            .args(["-c", "setsid sleep 300 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = task.id() as i32;
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(task.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let program: i32 = line.trim().parse().unwrap();
        assert!(of_task(&table(), pgid).contains(&program));
        signal_task(pgid, libc::SIGKILL);
        task.wait().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // Gone, or a zombie its reaper has not collected yet.
        while std::fs::read_to_string(format!("/proc/{program}/stat"))
            .is_ok_and(|stat| !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the program outlived its task's SIGKILL"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
