//! Child processes of the tests (the crate's examples, nats-server,
//! Prometheus) that choose their own port and say which one they bound.
//!
//! A test never picks a port and hands it to a process: between the
//! choice and the process's bind, any other test (or program) binding
//! port 0 could take it. The process is started on port 0 instead and
//! the test reads the address it announces on its output.
//!
//! The child's stdout and stderr are read to their end, line by line, by
//! two threads, so it never blocks on a full pipe; what it wrote is kept
//! for failure messages. Included with `#[path]` by the harnesses that
//! need it.

// Each harness uses only some of these.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the crate's examples print once bound: `listening on http://ADDR/...`.
pub const LISTENING: &str = "listening on http://";

/// How long a process may take to announce its address: generous, as a
/// busy 2-core machine (or a first start) can be slow.
pub const ANNOUNCE_WITHIN: Duration = Duration::from_secs(60);

/// The address of an example's `listening on http://ADDR/...` line: `None`
/// for other lines, `Some(Err(line))` for such a line without an address.
pub fn example_addr(line: &str) -> Option<Result<SocketAddr, String>> {
    let rest = &line[line.find(LISTENING)? + LISTENING.len()..];
    let authority = rest
        .split(|c: char| c == '/' || c.is_whitespace())
        .next()
        .unwrap_or_default();
    Some(
        authority
            .parse::<SocketAddr>()
            .ok()
            .filter(|addr| addr.port() != 0)
            .ok_or_else(|| line.to_owned()),
    )
}

/// Text a child wrote on one pipe, as its reader thread appends it.
#[derive(Clone, Default)]
struct Text(Arc<Mutex<String>>);

impl Text {
    fn push_line(&self, line: &str) {
        let mut text = self.0.lock().unwrap_or_else(|e| e.into_inner());
        text.push_str(line);
        text.push('\n');
    }

    fn get(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// What is looked for in a line: `Some` when found.
type Find<T> = dyn Fn(&str) -> Option<T> + Send + Sync;

/// What the reader threads look for in each line, and where they send the
/// first thing found (once, whichever pipe it comes from).
struct Lookout<T> {
    find: Arc<Find<T>>,
    found: Arc<Mutex<Option<mpsc::Sender<T>>>>,
}

impl<T> Clone for Lookout<T> {
    fn clone(&self) -> Self {
        Lookout {
            find: Arc::clone(&self.find),
            found: Arc::clone(&self.found),
        }
    }
}

impl<T> Lookout<T> {
    fn check(&self, line: &str) {
        if let Some(value) = (self.find)(line) {
            let sender = self.found.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(sender) = sender {
                let _ = sender.send(value);
            }
        }
    }
}

/// Reads `pipe` to its end in a thread: every line goes to `text`, and to
/// `lookout` if any.
fn read_lines<T: Send + 'static>(
    pipe: impl Read + Send + 'static,
    text: Text,
    lookout: Option<Lookout<T>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end_matches(['\n', '\r']);
            text.push_line(line);
            if let Some(lookout) = &lookout {
                lookout.check(line);
            }
        }
    })
}

/// A running child process; killed (and reaped) when dropped.
pub struct Running {
    name: String,
    child: Option<Child>,
    stdout: Text,
    stderr: Text,
    readers: Vec<JoinHandle<()>>,
}

impl Running {
    /// Starts `cmd` (stdin closed, stdout and stderr read by this module).
    pub fn spawn(name: &str, cmd: &mut Command) -> Running {
        Self::start::<()>(name, cmd, None)
    }

    /// Starts `cmd` and waits, for at most `within`, until a line of its
    /// stdout or stderr gives `Some` through `find`; returns the process
    /// and that value. Fails the test, with what the process wrote, if it
    /// exits first or the time is up.
    pub fn spawn_until<T: Send + 'static>(
        name: &str,
        cmd: &mut Command,
        within: Duration,
        find: impl Fn(&str) -> Option<T> + Send + Sync + 'static,
    ) -> (Running, T) {
        let (tx, rx) = mpsc::channel();
        let lookout = Lookout {
            find: Arc::new(find),
            found: Arc::new(Mutex::new(Some(tx))),
        };
        let mut running = Self::start(name, cmd, Some(lookout));
        let started = Instant::now();
        loop {
            let left = within.saturating_sub(started.elapsed());
            match rx.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(value) => return (running, value),
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(status) = running.try_wait() {
                        // Lines written just before the exit may still be
                        // on their way: give the readers their end.
                        running.join_readers(Duration::from_secs(5));
                        if let Ok(value) = rx.try_recv() {
                            return (running, value);
                        }
                        running.fail(&format!(
                            "exited ({status}) before it said where it listens"
                        ));
                    }
                    if left.is_zero() {
                        running.kill();
                        running.fail(&format!("did not say where it listens within {within:?}"));
                    }
                }
                // Both pipes closed without the line: the process is ending.
                Err(RecvTimeoutError::Disconnected) => {
                    let status = running.wait_exit(Duration::from_secs(5));
                    let status = match status {
                        Some(status) => status.to_string(),
                        None => "still running".to_owned(),
                    };
                    running.kill();
                    running.fail(&format!(
                        "closed its output ({status}) before it said where it listens"
                    ));
                }
            }
        }
    }

    /// Starts an example (`cmd`, whose listen address is port 0) and waits
    /// for its `listening on http://ADDR/...` line; returns the process and
    /// `ADDR`.
    pub fn spawn_example(name: &str, cmd: &mut Command) -> (Running, SocketAddr) {
        let (mut running, addr) = Self::spawn_until(name, cmd, ANNOUNCE_WITHIN, example_addr);
        match addr {
            Ok(addr) => (running, addr),
            Err(line) => {
                running.kill();
                running.fail(&format!("announced no address: {line:?}"))
            }
        }
    }

    fn start<T: Send + 'static>(
        name: &str,
        cmd: &mut Command,
        lookout: Option<Lookout<T>>,
    ) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({:?}): {e}", cmd.get_program()));
        let stdout = Text::default();
        let stderr = Text::default();
        let readers = vec![
            read_lines(
                child.stdout.take().expect("piped stdout"),
                stdout.clone(),
                lookout.clone(),
            ),
            read_lines(
                child.stderr.take().expect("piped stderr"),
                stderr.clone(),
                lookout,
            ),
        ];
        Running {
            name: name.to_owned(),
            child: Some(child),
            stdout,
            stderr,
            readers,
        }
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.get()
    }

    /// What the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.get()
    }

    /// Both, labelled, for failure messages.
    pub fn output(&self) -> String {
        format!(
            "--- stderr of {name}:\n{}--- stdout of {name}:\n{}---",
            self.stderr(),
            self.stdout(),
            name = self.name
        )
    }

    /// Fails the test with `what` and the process's output.
    pub fn fail(&self, what: &str) -> ! {
        panic!("{} {what}\n{}", self.name, self.output())
    }

    /// The exit status, if the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|child| child.try_wait().expect("polling a child process"))
    }

    /// Fails the test, with the output, if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.try_wait() {
            self.join_readers(Duration::from_secs(5));
            self.fail(&format!("exited ({status})"));
        }
    }

    /// Waits, for at most `within`, for the process to exit by itself,
    /// then for its output to be read to the end; `None` if it is still
    /// running.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.try_wait() {
                self.join_readers(within.saturating_sub(started.elapsed()));
                return Some(status);
            }
            if started.elapsed() >= within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (at most `within`) for the reader threads to reach the end of
    /// the pipes.
    fn join_readers(&mut self, within: Duration) {
        let started = Instant::now();
        while self.readers.iter().any(|r| !r.is_finished()) && started.elapsed() < within {
            std::thread::sleep(Duration::from_millis(5));
        }
        for reader in std::mem::take(&mut self.readers) {
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}
