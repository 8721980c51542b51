//! Throwaway PostgreSQL and MariaDB servers for the SQL checks' tests:
//! each in its own temp dir, on a loopback port outside the ephemeral
//! range (the same one across a restart), with a user `app` whose
//! password is random and appears nowhere else. As root, the servers run
//! as `nobody` (both refuse root). Stopped (SIGKILL), paused (SIGSTOP) and
//! resumed (SIGCONT) mid-test; killed, and their dir removed, on Drop.
//!
//! Needs `#[path = "ports.rs"] mod ports;` and `#[path = "process.rs"] mod
//! process;` beside it (see tests/sql_checks.rs).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::ports::{port_outside_ephemeral_range, START_ATTEMPTS};
use super::process::Running;

/// How long a server may take to start (or initialize its data dir).
pub const START_WITHIN: Duration = Duration::from_secs(60);

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    MariaDb,
}

/// A running (or stopped, or paused) server and its data.
pub struct Server {
    kind: Kind,
    dir: PathBuf,
    port: u16,
    password: String,
    process: Option<Running>,
}

/// What a starting server said first: ready, or its port was taken.
enum Start {
    Ready,
    PortInUse,
}

impl Server {
    /// Initializes a cluster and starts PostgreSQL on it.
    pub fn postgres() -> Server {
        Self::start(Kind::Postgres)
    }

    /// Initializes a data dir and starts MariaDB on it.
    pub fn mariadb() -> Server {
        Self::start(Kind::MariaDb)
    }

    fn start(kind: Kind) -> Server {
        let dir = temp_dir(kind);
        let mut server = Server {
            kind,
            dir,
            port: 0,
            password: format!("Zq{}", random_alnum(28)),
            process: None,
        };
        server.init();
        for _ in 0..START_ATTEMPTS {
            server.port = port_outside_ephemeral_range();
            if server.launch() {
                return server;
            }
        }
        panic!("{kind:?}: every one of {START_ATTEMPTS} ports was in use");
    }

    /// The password of user `app`.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops it at once (SIGKILL to the server and its children).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let mut gone = Vec::new();
            if let Some(pid) = process.id() {
                gone = children(pid);
                signal_tree(pid, "KILL");
            }
            process.kill();
            // A killed backend may still hold the old shared memory for a
            // moment: a restart before it is gone is refused by PostgreSQL.
            let deadline = std::time::Instant::now() + START_WITHIN;
            while gone.iter().any(|&pid| alive(pid)) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{:?}: processes {gone:?} still alive {START_WITHIN:?} after SIGKILL",
                    self.kind
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.launch(),
            "{:?}: port {} was taken while the server was stopped",
            self.kind,
            self.port
        );
    }

    /// Freezes it (SIGSTOP to the server and its children): connections
    /// are accepted by the kernel, nothing answers.
    pub fn pause(&self) {
        let pid = self.pid();
        signal_tree(pid, "STOP");
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&self) {
        let pid = self.pid();
        for child in children(pid) {
            signal(child, "CONT");
        }
        signal(pid, "CONT");
    }

    fn pid(&self) -> u32 {
        self.process
            .as_ref()
            .and_then(Running::id)
            .unwrap_or_else(|| panic!("{:?} is not running", self.kind))
    }

    /// The data dir, owned by the user the server runs as.
    fn init(&self) {
        let data = self.dir.join("data");
        let mut cmd = match self.kind {
            Kind::Postgres => {
                let pwfile = self.dir.join("pwfile");
                write_owned(&pwfile, &self.password);
                let mut cmd = as_server_user(&binary("initdb"));
                cmd.arg("-D")
                    .arg(&data)
                    .args(["-U", "app", "-A", "scram-sha-256", "--no-sync"])
                    .args(["-E", "UTF8", "--locale=C", "--no-instructions"])
                    .arg(format!("--pwfile={}", pwfile.display()));
                cmd
            }
            Kind::MariaDb => {
                let mut cmd = as_server_user(&binary("mariadb-install-db"));
                cmd.arg("--no-defaults")
                    .arg(format!("--datadir={}", data.display()))
                    .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
                    // Passed on to the bootstrap server: concurrent
                    // bootstraps sharing /tmp remove each other's
                    // temporary tables ("Unknown table 'mysql.tmp_user_sys'").
                    .arg(format!("--tmpdir={}", self.dir.display()));
                // The user with a password, created on every start.
                write_owned(
                    &self.dir.join("init.sql"),
                    &format!(
                        "CREATE DATABASE IF NOT EXISTS app;\n\
                         CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY '{0}';\n\
                         GRANT ALL ON *.* TO 'app'@'%';\n",
                        self.password
                    ),
                );
                cmd
            }
        };
        let mut init = Running::spawn(&format!("{:?} init", self.kind), cmd.current_dir(&self.dir));
        match init.wait_exit(START_WITHIN) {
            Some(status) if status.success() => {}
            Some(status) => init.fail(&format!("failed ({status})")),
            None => {
                init.kill();
                init.fail(&format!("did not finish within {START_WITHIN:?}"));
            }
        }
    }

    /// Starts the server on `self.port`; `false` when the port is taken.
    fn launch(&mut self) -> bool {
        let data = self.dir.join("data");
        let mut cmd = match self.kind {
            Kind::Postgres => {
                let mut cmd = as_server_user(&binary("postgres"));
                cmd.arg("-D")
                    .arg(&data)
                    .args(["-p", &self.port.to_string()])
                    .arg("-k")
                    .arg(&self.dir)
                    .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
                    .args(["-c", "full_page_writes=off", "-c", "max_connections=30"]);
                cmd
            }
            Kind::MariaDb => {
                let mut cmd = as_server_user(&binary("mariadbd"));
                cmd.arg("--no-defaults")
                    .arg(format!("--datadir={}", data.display()))
                    .arg(format!("--port={}", self.port))
                    .arg("--bind-address=127.0.0.1")
                    .arg(format!("--socket={}", self.dir.join("sock").display()))
                    .arg(format!("--pid-file={}", self.dir.join("pid").display()))
                    .arg(format!("--tmpdir={}", self.dir.display()))
                    .arg(format!(
                        "--init-file={}",
                        self.dir.join("init.sql").display()
                    ))
                    .args(["--skip-name-resolve", "--innodb-buffer-pool-size=16M"])
                    .args(["--innodb-use-native-aio=0", "--max-connections=30"]);
                cmd
            }
        };
        let ready = match self.kind {
            Kind::Postgres => "database system is ready to accept connections",
            Kind::MariaDb => "ready for connections",
        };
        let (mut process, start) = Running::spawn_until(
            &format!("{:?} on port {}", self.kind, self.port),
            cmd.current_dir(&self.dir),
            START_WITHIN,
            move |line| {
                if line.contains("Address already in use") {
                    Some(Start::PortInUse)
                } else if line.contains(ready) {
                    Some(Start::Ready)
                } else {
                    None
                }
            },
        );
        match start {
            Start::Ready => {
                self.process = Some(process);
                true
            }
            Start::PortInUse => {
                if let Some(pid) = process.id() {
                    signal_tree(pid, "KILL");
                }
                process.kill();
                false
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether this process runs as root (euid 0).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_owned();
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// `program`, run as `nobody` when this process is root.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// A server binary: on PATH, then /usr/sbin, then the newest
/// /usr/lib/postgresql/*/bin.
fn binary(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push(PathBuf::from("/usr/sbin"));
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    dirs.extend(versions.into_iter().rev().map(|(_, dir)| dir));
    dirs.into_iter()
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` not found on PATH, in /usr/sbin or /usr/lib/postgresql/*/bin: install the server (scripts/test.sh does)"))
}

/// A fresh dir, owned by the server's user.
fn temp_dir(kind: Kind) -> PathBuf {
    // Short: PostgreSQL's socket path must fit in 107 bytes.
    let dir = std::env::temp_dir().join(format!(
        "ts-{}-{}-{}",
        match kind {
            Kind::Postgres => "pg",
            Kind::MariaDb => "my",
        },
        std::process::id(),
        random_alnum(8)
    ));
    std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    own(&dir);
    dir
}

/// Writes `text` to `path`, for the server's user only.
fn write_owned(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    own(path);
}

/// Gives `path` to `nobody` when root.
fn own(path: &Path) {
    if is_root() {
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        std::os::unix::fs::chown(path, Some(id("-u")), Some(id("-g")))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

fn random_alnum(n: usize) -> String {
    (0..n).map(|_| fastrand::alphanumeric()).collect()
}

/// The direct children of `pid` (PostgreSQL's backends and workers).
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces and parens.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            found.push(child);
        }
    }
    found
}

/// `sig` to `pid`, stopped first so that it forks no child meanwhile, then
/// to its children.
/// Whether `pid` still runs: neither gone nor a zombie (which holds no
/// memory; in a container nobody may ever reap it).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

fn signal_tree(pid: u32, sig: &str) {
    signal(pid, "STOP");
    for child in children(pid) {
        signal(child, sig);
    }
    signal(pid, sig);
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .status();
}
