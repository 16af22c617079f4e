//! Throwaway `nats-server` processes on 127.0.0.1, for tests, examples and
//! benches: a single JetStream server ([`Server`]) or a cluster
//! ([`Cluster`]), each with its own store directory in the system's temp
//! dir, killed and removed when dropped (also when a test panics).
//!
//! The binary is `$NATS_SERVER` if set, else `nats-server` on the `PATH` or
//! in `/usr/sbin` (where Debian's package puts it). A missing binary is an
//! error that says how to install it.
//!
//! Built for shared, loaded machines: ports are found by binding and
//! releasing them, so another process may take one before the server binds
//! it; a start that loses that race is retried on fresh ports. Readiness
//! is waited for as long as the server keeps writing its log (making
//! progress), up to a generous bound.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a starting server may go without writing to its log before it
/// is given up on, and the most a start may take in all.
const STALLED_AFTER: Duration = Duration::from_secs(30);
const READY_WITHIN: Duration = Duration::from_secs(180);
const READY_LINE: &str = "Server is ready";
/// How many times a start that lost a port race is tried on fresh ports.
const PORT_TRIES: usize = 8;

/// Runs `start` until it does not fail for a port taken meanwhile.
fn on_free_ports<T>(mut start: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut tries = 1;
    loop {
        match start() {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && tries < PORT_TRIES => tries += 1,
            r => return r,
        }
    }
}

/// The `nats-server` binary that [`Server`] and [`Cluster`] run:
/// `$NATS_SERVER` if set, else the first on the `PATH` or in `/usr/sbin`.
///
/// ```no_run
/// let out = std::process::Command::new(memlog_jetstream::testing::server_binary()?)
///     .arg("--version")
///     .output()?;
/// println!("{}", String::from_utf8_lossy(&out.stdout)); // nats-server: v2.9.10
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// `NotFound`, saying how to install it, if there is none.
pub fn server_binary() -> io::Result<PathBuf> {
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let candidates = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"].map(PathBuf::from));
    for dir in candidates {
        let p = dir.join("nats-server");
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "nats-server not found on PATH or in /usr/sbin: install it \
         (apt-get install -y nats-server) or set NATS_SERVER to its path",
    ))
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it next).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn temp_dir() -> io::Result<PathBuf> {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "memlog-jetstream-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// One `nats-server` process with JetStream, on 127.0.0.1. Dropping it kills
/// the process (SIGKILL) and removes its store directory.
///
/// ```
/// let mut server = memlog_jetstream::testing::Server::start()?;
/// assert!(server.url().starts_with("nats://127.0.0.1:"));
/// server.kill()?;    // kill -9
/// server.restart()?; // same port, same store
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    port: u16,
    /// The directory the server's files live in, removed on drop if ours.
    dir: PathBuf,
    owns_dir: bool,
    args: Vec<String>,
    log: PathBuf,
    /// How many times the log said "ready" before the last start.
    starts: usize,
}

impl Server {
    /// Starts a single server on a free port with a fresh file store, and
    /// waits until it is ready.
    ///
    /// # Errors
    /// The binary is missing, or the server did not start (the error holds
    /// the end of its log).
    pub fn start() -> io::Result<Server> {
        on_free_ports(|| {
            let dir = temp_dir()?;
            let port = free_port()?;
            let store = dir.join("store");
            let args = vec![
                "-js".to_string(),
                "-sd".to_string(),
                store.display().to_string(),
                "-a".to_string(),
                "127.0.0.1".to_string(),
                "-p".to_string(),
                port.to_string(),
            ];
            Server::spawn_new(dir, true, port, args)
        })
    }

    fn spawn_new(dir: PathBuf, owns_dir: bool, port: u16, args: Vec<String>) -> io::Result<Server> {
        let log = dir.join(format!("server-{port}.log"));
        let mut s = Server {
            child: None,
            port,
            dir,
            owns_dir,
            args,
            log,
            starts: 0,
        };
        s.restart()?;
        Ok(s)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Kills the server with SIGKILL (no shutdown, as a crash) and reaps it.
    /// Its store stays. Idempotent.
    ///
    /// # Errors
    /// If the process could not be signalled or reaped.
    pub fn kill(&mut self) -> io::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts the server again (after [`kill`](Server::kill)) on the same
    /// port and store, and waits until it is ready. A running server is
    /// killed first.
    ///
    /// # Errors
    /// As [`start`](Server::start).
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill()?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        self.starts = self.ready_lines();
        let child = Command::new(server_binary()?)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn ready_lines(&self) -> usize {
        fs::read_to_string(&self.log).map_or(0, |s| s.matches(READY_LINE).count())
    }

    /// Waits until the log says "ready" and the port answers, for as long
    /// as the log keeps growing (a loaded machine is slow, not stuck).
    fn wait_ready(&mut self) -> io::Result<()> {
        let started = Instant::now();
        let mut progress = (0, Instant::now());
        loop {
            if let Some(child) = &mut self.child {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    return Err(self.failed(&format!("exited with {status}")));
                }
            }
            if self.ready_lines() > self.starts
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return Ok(());
            }
            let len = fs::metadata(&self.log).map_or(0, |m| m.len());
            if len != progress.0 {
                progress = (len, Instant::now());
            }
            let why = if progress.1.elapsed() > STALLED_AFTER {
                Some(format!(
                    "wrote nothing for {STALLED_AFTER:?} and is not ready"
                ))
            } else if started.elapsed() > READY_WITHIN {
                Some(format!("not ready within {READY_WITHIN:?}"))
            } else {
                None
            };
            if let Some(why) = why {
                let _ = self.kill();
                return Err(self.failed(&why));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// An error with the end of the server's log; `AddrInUse` when the
    /// server could not bind a port (taken since it was found free).
    fn failed(&self, what: &str) -> io::Error {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        let mut msg = format!("nats-server on port {} {what}; its log ends:", self.port);
        for line in tail.iter().rev() {
            let _ = write!(msg, "\n  {line}");
        }
        let kind = if log.contains("address already in use") {
            io::ErrorKind::AddrInUse
        } else {
            io::ErrorKind::Other
        };
        io::Error::new(kind, msg)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.kill();
        if self.owns_dir {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A JetStream cluster of `nats-server` processes on 127.0.0.1, named `n0`,
/// `n1`, … (their `server_name`), each with its own store, routes between
/// all of them. Dropping it kills them all and removes their files.
#[derive(Debug)]
pub struct Cluster {
    nodes: Vec<Server>,
    dir: PathBuf,
}

impl Cluster {
    /// Starts `n` servers and waits until each is ready (a JetStream
    /// meta-leader is elected within seconds after; creating a stream
    /// retries until then). If a node loses a port to another process, the
    /// whole cluster starts again on fresh ports.
    ///
    /// # Errors
    /// As [`Server::start`].
    pub fn start(n: usize) -> io::Result<Cluster> {
        on_free_ports(|| Cluster::start_once(n))
    }

    fn start_once(n: usize) -> io::Result<Cluster> {
        let dir = temp_dir()?;
        let ports: Vec<(u16, u16)> = (0..n)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<io::Result<_>>()?;
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, c)| format!("nats://127.0.0.1:{c}"))
            .collect();
        let mut cluster = Cluster {
            nodes: Vec::new(),
            dir: dir.clone(),
        };
        // Write every config first, then start them all at once: each waits
        // for the others' routes only to elect, not to be "ready".
        let mut pending = Vec::new();
        for (i, (port, cport)) in ports.iter().enumerate() {
            let conf = dir.join(format!("n{i}.conf"));
            fs::write(
                &conf,
                format!(
                    "server_name: n{i}\nlisten: 127.0.0.1:{port}\n\
                     jetstream {{ store_dir: \"{}\" }}\n\
                     cluster {{ name: c1, listen: 127.0.0.1:{cport}, routes: [{}] }}\n",
                    dir.join(format!("n{i}")).display(),
                    routes.join(", ")
                ),
            )?;
            pending.push((*port, vec!["-c".to_string(), conf.display().to_string()]));
        }
        let starts: Vec<_> = pending
            .into_iter()
            .map(|(port, args)| {
                let dir = dir.clone();
                thread::spawn(move || Server::spawn_new(dir, false, port, args))
            })
            .collect();
        // Join them all before any error returns: the nodes that did start
        // are then dropped (killed) with the cluster.
        let joined: Vec<io::Result<Server>> = starts
            .into_iter()
            .map(|s| {
                s.join()
                    .map_err(|_| io::Error::other("server start panicked"))?
            })
            .collect();
        for server in joined {
            cluster.nodes.push(server?);
        }
        Ok(cluster)
    }

    /// Every node's URL, separated by commas (what the builders take).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(Server::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node `i` (`server_name` `n{i}`), to kill or restart.
    pub fn node(&mut self, i: usize) -> &mut Server {
        &mut self.nodes[i]
    }

    /// The index of the node named `name` (`n{i}`).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        name.strip_prefix('n')?
            .parse()
            .ok()
            .filter(|&i| i < self.nodes.len())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_that_loses_its_port_says_so_and_is_retried() {
        // A port another process holds: the server can not bind it.
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let dir = temp_dir().unwrap();
        let args = vec![
            "-a".to_string(),
            "127.0.0.1".to_string(),
            "-p".to_string(),
            port.to_string(),
        ];
        let e = Server::spawn_new(dir, true, port, args).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        // Such a failure is tried again; any other is not.
        let mut calls = 0;
        let r = on_free_ports(|| {
            calls += 1;
            match calls {
                1 | 2 => Err(io::Error::from(io::ErrorKind::AddrInUse)),
                _ => Ok(calls),
            }
        });
        assert_eq!(r.unwrap(), 3);
        let r: io::Result<()> = on_free_ports(|| Err(io::Error::other("no")));
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::Other);
    }
}
