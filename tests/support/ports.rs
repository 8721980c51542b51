//! Ports for servers that cannot bind port 0 and announce the address
//! (PostgreSQL, MariaDB, Redis: each takes a port number on its command
//! line, and the tests stop and restart them on the same port).
//!
//! The port is taken from outside the kernel's ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`), so no socket bound to port
//! 0 (every other server and client of the tests) can ever be given it,
//! before the server binds it or while it is stopped mid-test. Two
//! harnesses picking the same number at once is left: the caller starts
//! its server and, when the server reports the port in use, asks again
//! ([`START_ATTEMPTS`] times).
//!
//! Included with `#[path]` by the harnesses that need it.

#![allow(dead_code)]

use std::net::{Ipv4Addr, TcpListener};

/// How many ports a harness tries before its server is said not to start.
pub const START_ATTEMPTS: usize = 8;

/// The low end of the ephemeral range (32768 when it cannot be read).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// A loopback port outside the ephemeral range that nothing listens on
/// right now.
///
/// # Panics
///
/// When no such port is found in 1000 tries.
pub fn port_outside_ephemeral_range() -> u16 {
    let high = ephemeral_low().saturating_sub(1).max(10_001);
    for _ in 0..1000 {
        let port = fastrand::u16(10_000..high);
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port below the ephemeral range in 1000 tries");
}
