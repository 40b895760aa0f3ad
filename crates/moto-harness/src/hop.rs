//! A fault-injecting hop between a client and a local endpoint: a TCP relay that
//! breaks the response body of chosen GET requests partway, as a real network
//! can (a stalled body, or a connection cut mid-body), so the reader's recovery is tested
//! against the local S3 server rather than assumed.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

/// What happens to a chosen response once `after_bytes` of it went through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFault {
    /// Nothing more is sent, and the connection stays open (for up to 10 minutes).
    Stall,
    /// The connection ends before the body does: the client sees an error
    /// mid-body, as after a reset.
    Cut,
}

/// A running hop. Point a client's endpoint at `endpoint`.
pub struct FaultyHop {
    pub endpoint: String,
    faults_left: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

impl FaultyHop {
    /// Relay to `upstream` (`http://127.0.0.1:PORT`). The first `faults` requests that
    /// start `GET /{path_prefix}` (whole or ranged) get `fault` after `after_bytes`
    /// bytes of their response; everything else, retries included once the faults
    /// are spent, passes untouched.
    pub fn start(
        upstream: &str,
        path_prefix: &str,
        after_bytes: u64,
        fault: BodyFault,
        faults: u32,
    ) -> FaultyHop {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the hop");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let faults_left = Arc::new(AtomicU32::new(faults));
        let stop = Arc::new(AtomicBool::new(false));
        let needle = format!("GET /{path_prefix}").into_bytes();
        let (left, stopped) = (faults_left.clone(), stop.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let rule = Rule {
                    needle: needle.clone(),
                    after_bytes,
                    fault,
                    faults_left: left.clone(),
                };
                thread::spawn(move || relay(client, server, rule));
            }
        });
        FaultyHop {
            endpoint,
            faults_left,
            stop,
        }
    }

    /// How many faults are still to be injected.
    pub fn faults_left(&self) -> u32 {
        self.faults_left.load(Ordering::Relaxed)
    }
}

impl Drop for FaultyHop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"));
    }
}

struct Rule {
    needle: Vec<u8>,
    after_bytes: u64,
    fault: BodyFault,
    faults_left: Arc<AtomicU32>,
}

impl Rule {
    /// Does this chunk of a request head ask for a fault (and is one left)?
    fn arms(&self, head: &[u8]) -> bool {
        let starts = head
            .windows(self.needle.len())
            .any(|w| w == self.needle.as_slice());
        starts
            && self
                .faults_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
    }
}

fn relay(client: TcpStream, server: TcpStream, rule: Rule) {
    let armed = Arc::new(AtomicBool::new(false));
    let (after_bytes, fault) = (rule.after_bytes, rule.fault);
    // Requests: client → server, watching for the request to break.
    {
        let (mut from, mut to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let armed = armed.clone();
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if rule.arms(&buf[..n]) {
                    armed.store(true, Ordering::SeqCst);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    }
    // Responses: server → client, broken once armed and past `after_bytes`.
    let (mut from, mut to) = (server, client);
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent_since_armed = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        if armed.load(Ordering::SeqCst) {
            let room = after_bytes.saturating_sub(sent_since_armed) as usize;
            if chunk.len() >= room {
                let _ = to.write_all(&chunk[..room]);
                let _ = to.flush();
                match fault {
                    BodyFault::Stall => thread::sleep(Duration::from_secs(600)),
                    BodyFault::Cut => {
                        let _ = to.shutdown(Shutdown::Both);
                    }
                }
                return;
            }
            sent_since_armed += chunk.len() as u64;
        }
        if to.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
