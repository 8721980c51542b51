//! A redis-server of a test's own, configured on its command line: on a
//! loopback port outside the ephemeral range (`ports.rs`), with a password,
//! no persistence, and a temp dir of its own; killed, and its dir removed,
//! when dropped (on panic too). It can be killed and restarted on the same
//! port, and frozen (SIGSTOP) and thawed (SIGCONT) mid-test.
//!
//! Included with `#[path]` by the harnesses that need it, next to
//! `ports.rs` and `process.rs` (as `crate::ports` and `crate::process`).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::ports::{port_outside_ephemeral_range, START_ATTEMPTS};
use crate::process::Running;

/// How long a server may take to answer its first PING: generous, as a
/// busy 2-core machine can be slow.
pub const READY_WITHIN: Duration = Duration::from_secs(30);

/// A password for one test: random, so that finding it anywhere it should
/// not be is meaningful.
pub fn secret() -> String {
    format!("pw-{:016x}", fastrand::u64(..))
}

/// The redis-server binary: on PATH, else where Debian puts it.
pub fn binary() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("redis-server"))
            .find(|p| p.is_file())
    });
    on_path
        .or_else(|| {
            ["/usr/sbin/redis-server", "/usr/bin/redis-server"]
                .into_iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("redis-server not found on PATH nor in /usr/sbin, /usr/bin (scripts/test.sh installs it)")
        })
}

/// The version `redis-server --version` reports (`v=7.0.15`).
pub fn binary_version() -> String {
    let out = Command::new(binary())
        .arg("--version")
        .output()
        .expect("redis-server --version");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .unwrap_or_else(|| panic!("no version in {text:?}"))
        .to_owned()
}

/// A temp dir removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tower-status-redis-{name}-{}-{}-{:08x}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Why a start failed.
enum Failed {
    /// Another process had the port: try another one.
    PortInUse(String),
    Other(String),
}

/// A running (or killed, or frozen) redis-server.
pub struct RedisServer {
    name: String,
    port: u16,
    password: String,
    extra: Vec<String>,
    process: Option<Running>,
    // Dropped after the process (fields drop in order).
    dir: TempDir,
}

impl RedisServer {
    /// Starts a server requiring `password`, with `extra` options
    /// (`["--replicaof", "127.0.0.1", "6379"]`), and waits until it answers
    /// PING. Fails the test, with the server's log tail, when it cannot.
    pub fn start(name: &str, password: &str, extra: &[&str]) -> RedisServer {
        let dir = TempDir::new(name);
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = port_outside_ephemeral_range();
            match launch(name, port, password, &extra, &dir.0) {
                Ok(process) => {
                    return RedisServer {
                        name: name.to_owned(),
                        port,
                        password: password.to_owned(),
                        extra,
                        process: Some(process),
                        dir,
                    }
                }
                Err(Failed::PortInUse(log)) => last = log,
                Err(Failed::Other(why)) => panic!("{why}"),
            }
        }
        panic!("redis-server {name}: every one of {START_ATTEMPTS} ports was in use; last log:\n{last}")
    }

    /// The port it listens on (the same after a restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `redis://:PASSWORD@127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}/", self.password, self.port)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(Running::id)
    }

    /// Kills the server (SIGKILL: no goodbye to its clients or replicas).
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Starts it again on the same port, with the same options, after
    /// [`kill`](Self::kill).
    pub fn restart(&mut self) {
        assert!(
            self.process.is_none(),
            "{}: restart while running",
            self.name
        );
        // Nothing else binds a port outside the ephemeral range; a moment
        // of "in use" right after the kill is waited out.
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            match launch(
                &self.name,
                self.port,
                &self.password,
                &self.extra,
                &self.dir.0,
            ) {
                Ok(process) => {
                    self.process = Some(process);
                    return;
                }
                Err(Failed::PortInUse(log)) if Instant::now() >= deadline => panic!(
                    "redis-server {}: port {} still in use after {READY_WITHIN:?}:\n{log}",
                    self.name, self.port
                ),
                Err(Failed::PortInUse(_)) => std::thread::sleep(Duration::from_millis(100)),
                Err(Failed::Other(why)) => panic!("{why}"),
            }
        }
    }

    /// Freezes the process (SIGSTOP): its socket accepts, nothing answers.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Thaws it (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("{}: not running", self.name));
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} {pid}: {status}");
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.process
            .as_ref()
            .map_or_else(String::new, Running::stdout)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL ends a frozen process too.
        self.kill();
    }
}

/// The last lines of `text`.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Starts one server on `port` and waits until it answers PING.
fn launch(
    name: &str,
    port: u16,
    password: &str,
    extra: &[String],
    dir: &Path,
) -> Result<Running, Failed> {
    let mut cmd = Command::new(binary());
    cmd.args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .args(["--requirepass", password])
        .args(["--daemonize", "no"])
        .args(["--logfile", ""])
        // A replica's full sync starts at once, not 5 s later.
        .args(["--repl-diskless-sync", "yes"])
        .args(["--repl-diskless-sync-delay", "0"])
        .args(["--repl-ping-replica-period", "1"])
        .args(extra);
    let label = format!("redis-server {name} on port {port}");
    let mut process = Running::spawn(&label, &mut cmd);
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if let Some(status) = process.try_wait() {
            let _ = process.wait_exit(Duration::from_secs(5));
            let log = process.output();
            return Err(if log.contains("Address already in use") {
                Failed::PortInUse(tail(&log))
            } else {
                Failed::Other(format!(
                    "{label} exited ({status}) before answering PING:\n{}",
                    tail(&log)
                ))
            });
        }
        if ping(port, password).is_some() {
            return Ok(process);
        }
        if Instant::now() >= deadline {
            let log = process.output();
            process.kill();
            return Err(Failed::Other(format!(
                "{label} did not answer PING within {READY_WITHIN:?}:\n{}",
                tail(&log)
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// AUTH then PING on a fresh connection: the first line of the reply to
/// PING (`+PONG`, or an error such as `-MASTERDOWN ...`: the server
/// answers either way); `None` when nothing answers.
pub fn ping(port: u16, password: &str) -> Option<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    let auth = format!(
        "*2\r\n$4\r\nAUTH\r\n${}\r\n{password}\r\n*1\r\n$4\r\nPING\r\n",
        password.len()
    );
    stream.write_all(auth.as_bytes()).ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while got.iter().filter(|b| **b == b'\n').count() < 2 {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    let mut lines = text.lines();
    let auth = lines.next()?;
    if !auth.starts_with("+OK") {
        return None;
    }
    lines.next().map(str::to_owned)
}
