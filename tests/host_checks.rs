//! Host checks (disk, memory, tokio runtime) and the DNS check against the
//! real machine: the temp dir's file system, this process's memory and
//! cgroup, runtimes built here, the system resolver. Through a real layer
//! served on a loopback port too.
//!
//! Every wait is bounded.

mod common;

use std::time::{Duration, Instant};

use common::{component, fetch_json, http1_client, serve_hello};
use serde_json::Value;
use tower_status::check::{
    Check, CheckResult, DiskCheck, DnsCheck, HealthCheck, MemoryCheck, RuntimeCheck, Share,
    Threshold,
};
use tower_status::{Status, StatusLayer};

fn share(v: f64) -> Share {
    Share::new(v).unwrap()
}

fn details(result: &CheckResult) -> &Value {
    result.details.as_ref().expect("details")
}

// ---------------------------------------------------------------- disk

#[tokio::test]
async fn disk_thresholds_on_the_temp_dir() {
    let tmp = std::env::temp_dir();
    let ok = DiskCheck::new(&tmp)
        .warn_below(Threshold::Bytes(1))
        .critical_below(share(0.0))
        .check()
        .await;
    assert_eq!(ok.status, Status::Ok, "{ok:?}");
    assert_eq!(ok.observed_unit.as_deref(), Some("bytes"));
    let free = ok.observed_value.as_ref().and_then(Value::as_u64).unwrap();
    let d = details(&ok);
    assert_eq!(d["free_bytes"], free);
    assert!(d["total_bytes"].as_u64().unwrap() >= free);
    let share_free = d["free_share"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&share_free), "{d}");

    // Thresholds above the free space.
    let degraded = DiskCheck::new(&tmp)
        .warn_below(Threshold::Bytes(u64::MAX))
        .critical_below(Threshold::Bytes(0))
        .check()
        .await;
    assert_eq!(degraded.status, Status::Degraded, "{degraded:?}");
    assert!(degraded.error.unwrap().contains("below the warning"));
    let down = DiskCheck::new(&tmp)
        .warn_below(Threshold::Bytes(u64::MAX))
        .critical_below(Threshold::Bytes(u64::MAX))
        .check()
        .await;
    assert_eq!(down.status, Status::Down, "{down:?}");
    assert!(down.error.unwrap().contains("below the critical"));
}

#[tokio::test]
async fn disk_on_a_missing_path_is_down() {
    let missing = std::env::temp_dir().join(format!("tower-status-missing-{}", std::process::id()));
    let result = DiskCheck::new(&missing).check().await;
    assert_eq!(result.status, Status::Down);
    let error = result.error.unwrap();
    assert!(error.contains(&missing.display().to_string()), "{error}");
    assert!(error.contains("No such file or directory"), "{error}");
}

// ---------------------------------------------------------------- memory

#[tokio::test]
async fn memory_against_the_real_limit() {
    let ok = MemoryCheck::new()
        .degraded_above(share(1.0))
        .down_above(share(1.0))
        .check()
        .await;
    assert_eq!(ok.status, Status::Ok, "{ok:?}");
    let d = details(&ok);
    let used = d["used_bytes"].as_u64().unwrap();
    assert!(used > 0 && used < d["limit_bytes"].as_u64().unwrap(), "{d}");
    assert_eq!(ok.observed_value, Some(Value::from(used)));
    let source = d["limit_source"].as_str().unwrap();
    assert!(matches!(source, "cgroup" | "machine"), "{d}");
    let file = d["limit_file"].as_str().unwrap();
    assert!(std::path::Path::new(file).exists(), "{d}");
    assert_eq!(
        file.starts_with("/sys/fs/cgroup/"),
        source == "cgroup",
        "the source names its file: {d}"
    );

    let degraded = MemoryCheck::new()
        .degraded_above(share(0.0))
        .down_above(share(1.0))
        .check()
        .await;
    assert_eq!(degraded.status, Status::Degraded, "{degraded:?}");
    assert!(degraded
        .error
        .unwrap()
        .contains(&format!("of the {source} limit")));
    let down = MemoryCheck::new().down_above(share(0.0)).check().await;
    assert_eq!(down.status, Status::Down, "{down:?}");
}

// ---------------------------------------------------------------- runtime

/// A multi-thread runtime whose only worker is blocked: tasks spawned from
/// here pile up in its global queue until it is released.
#[test]
fn a_task_flood_on_a_stuck_runtime_degrades_it() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let check = RuntimeCheck::for_handle(rt.handle().clone()).degraded_above_queue(100);
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    rt.spawn(async move {
        started_tx.send(()).unwrap();
        // Blocks the worker on purpose, for at most the test's bound.
        let _ = release_rx.recv_timeout(Duration::from_secs(10));
    });
    started_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the worker picks up the blocking task");

    let flood: Vec<_> = (0..300).map(|_| rt.spawn(async {})).collect();
    let result = futures_executor::block_on(check.check());
    assert_eq!(result.status, Status::Degraded, "{result:?}");
    let d = details(&result);
    assert_eq!(d["workers"], 1);
    assert!(d["global_queue_depth"].as_u64().unwrap() >= 300, "{d}");
    assert!(d["alive_tasks"].as_u64().unwrap() >= 301, "{d}");
    assert_eq!(result.observed_unit.as_deref(), Some("tasks"));
    assert!(result.error.unwrap().contains("above the threshold of 100"));

    release_tx.send(()).unwrap();
    // The worker drains the queue (in batches to its own queue) and runs
    // every task to its end.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let result = futures_executor::block_on(check.check());
        let d = details(&result);
        if result.status == Status::Ok && d["global_queue_depth"] == 0 && d["alive_tasks"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the queue never drained: {result:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(flood.iter().all(tokio::task::JoinHandle::is_finished));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_runtime_is_reported() {
    let result = RuntimeCheck::new().check().await;
    assert_eq!(result.status, Status::Ok, "{result:?}");
    assert_eq!(details(&result)["workers"], 2);
}

// ---------------------------------------------------------------- DNS

fn addresses(result: &CheckResult) -> Vec<std::net::IpAddr> {
    result
        .observed_value
        .as_ref()
        .and_then(Value::as_array)
        .expect("addresses")
        .iter()
        .map(|a| a.as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn localhost_resolves_to_loopback() {
    for name in ["localhost", "localhost:8080"] {
        let result = DnsCheck::new(name)
            .timeout(Duration::from_secs(3))
            .check()
            .await;
        assert_eq!(result.status, Status::Ok, "{name}: {result:?}");
        assert_eq!(result.observed_unit.as_deref(), Some("addresses"));
        let found = addresses(&result);
        assert!(
            !found.is_empty() && found.iter().all(|ip| ip.is_loopback()),
            "{found:?}"
        );
    }
}

#[tokio::test]
async fn an_invalid_name_is_down_within_the_timeout() {
    let timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let result = DnsCheck::new("name.invalid").timeout(timeout).check().await;
    let took = started.elapsed();
    assert_eq!(result.status, Status::Down, "{result:?}");
    assert!(result.error.unwrap().contains("name.invalid"));
    assert!(took < timeout + Duration::from_millis(500), "took {took:?}");
}

// ---------------------------------------------------------------- through a layer

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_with_details_sees_each_check_and_its_values() {
    let layer = StatusLayer::new()
        .check(HealthCheck::new(
            "disk",
            DiskCheck::new(std::env::temp_dir())
                .warn_below(Threshold::Bytes(1))
                .critical_below(Threshold::Bytes(0)),
        ))
        .check(
            HealthCheck::new(
                "disk-full",
                // Degraded whatever the machine's disk holds: never below
                // the critical threshold (5 % by default would make it down
                // on a nearly full disk).
                DiskCheck::new(std::env::temp_dir())
                    .warn_below(Threshold::Bytes(u64::MAX))
                    .critical_below(Threshold::Bytes(0)),
            )
            .critical(false),
        )
        .check(HealthCheck::new(
            "memory",
            MemoryCheck::new()
                .degraded_above(share(1.0))
                .down_above(share(1.0)),
        ))
        .check(HealthCheck::new("runtime", RuntimeCheck::new()))
        .check(HealthCheck::new("dns", DnsCheck::new("localhost")).timeout(Duration::from_secs(3)));
    let addr = serve_hello(&layer).await;
    let report = fetch_json(&http1_client(), addr, "/status").await;
    assert_eq!(report["status"], "degraded", "{report}");

    let disk = component(&report, "disk");
    assert_eq!(disk["status"], "ok", "{disk}");
    assert_eq!(disk["observed_unit"], "bytes");
    assert!(disk["observed_value"].as_u64().unwrap() > 0);
    assert!(disk["details"]["free_share"].is_number(), "{disk}");
    let full = component(&report, "disk-full");
    assert_eq!(full["status"], "degraded", "{full}");
    assert!(full["error"]
        .as_str()
        .unwrap()
        .contains("below the warning"));

    let memory = component(&report, "memory");
    assert_eq!(memory["status"], "ok", "{memory}");
    assert_eq!(memory["observed_unit"], "bytes");
    for field in [
        "used_bytes",
        "limit_bytes",
        "limit_source",
        "limit_file",
        "used_share",
    ] {
        assert!(!memory["details"][field].is_null(), "{field}: {memory}");
    }

    let runtime = component(&report, "runtime");
    assert_eq!(runtime["status"], "ok", "{runtime}");
    assert_eq!(runtime["details"]["workers"], 2);
    assert!(
        runtime["details"]["alive_tasks"].as_u64().unwrap() >= 1,
        "{runtime}"
    );
    assert_eq!(runtime["observed_unit"], "tasks");

    let dns = component(&report, "dns");
    assert_eq!(dns["status"], "ok", "{dns}");
    assert_eq!(dns["observed_unit"], "addresses");
    let ips = dns["observed_value"].as_array().unwrap();
    assert!(!ips.is_empty(), "{dns}");
    for ip in ips {
        let ip: std::net::IpAddr = ip.as_str().unwrap().parse().unwrap();
        assert!(ip.is_loopback(), "{dns}");
    }
}
