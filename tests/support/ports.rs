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

/// The kernel's ephemeral range (32768..=60999 when it cannot be read).
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut ends = s.split_whitespace().map(str::parse::<u16>);
            Some((ends.next()?.ok()?, ends.next()?.ok()?))
        })
        .unwrap_or((32768, 60999))
}

/// A loopback port outside the ephemeral range that nothing listens on
/// right now: below the range (from 10000), or above it when the range
/// starts too low to leave 1000 ports below.
///
/// # Panics
///
/// When the ephemeral range leaves no 1000 ports outside it, or no free
/// one is found in 1000 tries.
pub fn port_outside_ephemeral_range() -> u16 {
    let (low, high) = ephemeral_range();
    let outside = if low >= 11_000 {
        10_000..low
    } else if high <= 64_535 {
        high + 1..u16::MAX
    } else {
        panic!(
            "the ephemeral port range {low}-{high} leaves no 1000 ports outside it \
             for the test servers that cannot bind port 0"
        )
    };
    for _ in 0..1000 {
        let port = fastrand::u16(outside.clone());
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {outside:?} (outside the ephemeral range) in 1000 tries");
}
