//! Faults: checks that hang, panic, return multi-megabyte errors or flap;
//! upstreams that accept and never answer; a closed port; the status
//! endpoint hammered while every check is slow; recovery once the faults
//! stop; and the report deadline with many hanging checks.
//!
//! Everything runs against a real axum server on 127.0.0.1 with a real
//! HTTP/1.1 client. Every loop is bounded in count and time, every wait by
//! [`common::STEP`]; timing bounds leave margins for a loaded machine.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    bounded, component, error_of, fetch, http1_client, loopback, serve_hello, Fetched, STEP,
};
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_status::check::MAX_ERROR_LEN;
use tower_status::check::{CheckResult, Freshness, HealthCheck, HttpCheck, TcpCheck};
use tower_status::{Status, StatusLayer};

// ---------------------------------------------------------------- helpers

/// A report body stays under this, whatever the checks return.
const MAX_BODY: usize = 64 * 1024;
/// A passed-through request must answer within this while checks misbehave:
/// below the 200 ms the slowest checks take, so it proves `/` never waits
/// on them, with room for a loaded 2-core machine.
const PASSTHROUGH_BOUND: Duration = Duration::from_millis(150);

/// Runs every time a status request needs it.
fn always() -> Freshness {
    Freshness::OnDemand {
        ttl: Duration::ZERO,
    }
}

/// `GET path` with `client`, timed.
async fn timed_get(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    >,
    addr: SocketAddr,
    path: &str,
) -> (Fetched, Duration) {
    let started = Instant::now();
    let res = fetch(client, addr, Method::GET, path).await;
    (res, started.elapsed())
}

/// Runs `fut` on a runtime of its own, on a thread of its own, as a client
/// in another process would: its work never queues behind the server's.
/// The receiver fails if `fut` panicked.
fn elsewhere<F>(fut: F) -> tokio::sync::oneshot::Receiver<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("client runtime");
        let _ = tx.send(rt.block_on(fut));
    });
    rx
}

/// Probes `GET /` every few milliseconds on its own connection and its own
/// thread until `stop` is set (at most 15 s and 2000 probes); returns each
/// latency.
fn probe_passthrough(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
) -> tokio::sync::oneshot::Receiver<Vec<Duration>> {
    elsewhere(async move {
        let client = http1_client();
        let started = Instant::now();
        let mut samples = Vec::new();
        while !stop.load(SeqCst) && samples.len() < 2000 && started.elapsed() < 3 * STEP {
            let (res, took) = timed_get(&client, addr, "/").await;
            assert_eq!((res.status, &res.body[..]), (StatusCode::OK, &b"hello"[..]));
            samples.push(took);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        samples
    })
}

/// Stops a probe and checks that `/` stayed fast: returns (count, max, p50).
async fn passthrough_stayed_fast(
    stop: &AtomicBool,
    probe: tokio::sync::oneshot::Receiver<Vec<Duration>>,
    during: &str,
) -> (usize, Duration, Duration) {
    stop.store(true, SeqCst);
    let mut samples = bounded("passthrough probe", probe)
        .await
        .expect("the probe panicked");
    assert!(!samples.is_empty(), "no passthrough probe {during}");
    samples.sort();
    let max = *samples.last().expect("samples");
    let p50 = samples[samples.len() / 2];
    assert!(
        max < PASSTHROUGH_BOUND,
        "GET / took {max:?} {during} (p50 {p50:?}, {} probes)",
        samples.len()
    );
    (samples.len(), max, p50)
}

/// Start of the message of every panic the tests' checks raise on purpose.
const EXPECTED_PANIC: &str = "expected check panic:";

/// Panics with `message`: the body of a panicking check.
fn explode<T>(message: &str) -> T {
    quiet_expected_panics();
    panic!("{EXPECTED_PANIC} {message}")
}

/// Keeps the default panic hook away from the checks' own panics (the
/// runner catches them): with `RUST_BACKTRACE` set, printing a symbolized
/// backtrace on every run would eat the CPU the latency bounds measure.
/// Any other panic still goes to the default hook.
fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            if !message.is_some_and(|m| m.starts_with(EXPECTED_PANIC)) {
                default(info);
            }
        }));
    });
}

/// A TCP server on loopback that accepts connections and holds them open.
/// With an empty `greeting` it never reads nor writes (slowloris upstream);
/// otherwise it reads the request head, writes `greeting` (part of a
/// response), and then goes silent.
/// Holds at most 64 connections.
async fn holding_server(greeting: &'static [u8]) -> SocketAddr {
    let (listener, addr) = loopback().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while held.len() < 64 {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            if !greeting.is_empty() {
                // Answer only after the request head: bytes before it would be
                // an unsolicited response, which a client rejects at once.
                let mut head = Vec::new();
                let mut buf = [0u8; 512];
                let _ = tokio::time::timeout(STEP, async {
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                            _ => break,
                        }
                    }
                })
                .await;
                let _ = stream.write_all(greeting).await;
            }
            held.push(stream);
        }
        // Keep the last ones open until the test ends.
        std::future::pending::<()>().await;
    });
    addr
}

// ---------------------------------------------------------------- misbehaving checks

/// Hanging (200 ms timeout), panicking, 5 MB error and flapping checks,
/// over 50 sequential status requests: each report arrives within the
/// timeout plus a margin, errors are cut to `MAX_ERROR_LEN`, the body stays
/// small, the flapping check alternates, and `/` stays fast meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_checks_never_hold_up_the_report_or_the_service() {
    const HANG_TIMEOUT: Duration = Duration::from_millis(200);
    const HUGE: usize = 5 * 1024 * 1024;
    let flaps = Arc::new(AtomicUsize::new(0));
    let huge_runs = Arc::new(AtomicUsize::new(0));
    let layer = StatusLayer::new()
        .check(
            HealthCheck::new("hang", std::future::pending::<bool>)
                .timeout(HANG_TIMEOUT)
                .freshness(always())
                .critical(false),
        )
        .check(
            HealthCheck::new("panic", || async { explode::<bool>("the check exploded") })
                .freshness(always())
                .critical(false),
        )
        .check(
            HealthCheck::new("huge", {
                let runs = Arc::clone(&huge_runs);
                move || {
                    runs.fetch_add(1, SeqCst);
                    // Multi-byte characters, so the cut must find a boundary.
                    async { Err::<(), String>("é".repeat(HUGE / 2)) }
                }
            })
            .freshness(always())
            .critical(false),
        )
        // The only critical check: the overall status follows it.
        .check(
            HealthCheck::new("flap", {
                let flaps = Arc::clone(&flaps);
                move || {
                    let n = flaps.fetch_add(1, SeqCst);
                    async move {
                        if n % 2 == 0 {
                            CheckResult::ok()
                        } else {
                            CheckResult::down(format!("flap {n}"))
                        }
                    }
                }
            })
            .freshness(always()),
        );
    let addr = serve_hello(&layer).await;
    let stop = Arc::new(AtomicBool::new(false));
    let probe = probe_passthrough(addr, Arc::clone(&stop));

    let client = http1_client();
    let mut latencies = Vec::new();
    let mut largest_body = 0;
    let mut previous: Option<String> = None;
    for round in 0..50 {
        let (res, took) = timed_get(&client, addr, "/status").await;
        latencies.push(took);
        largest_body = largest_body.max(res.body.len());
        assert!(
            took < HANG_TIMEOUT + Duration::from_millis(800),
            "round {round}: report took {took:?}"
        );
        assert!(
            took >= HANG_TIMEOUT - Duration::from_millis(5),
            "round {round}: the hanging check ran on demand, yet the report took only {took:?}"
        );
        assert!(
            res.body.len() < MAX_BODY,
            "round {round}: body of {} bytes",
            res.body.len()
        );
        let report = res.json();
        // Flap is the only critical check: ok+failing non-critical ones is
        // degraded (200), down is down (503).
        let flap = component(&report, "flap")["status"]
            .as_str()
            .expect("flap status")
            .to_owned();
        let (overall, code) = match flap.as_str() {
            "ok" => ("degraded", StatusCode::OK),
            "down" => ("down", StatusCode::SERVICE_UNAVAILABLE),
            other => panic!("round {round}: flap is {other:?}"),
        };
        assert_eq!(report["status"], overall, "round {round}: {report}");
        assert_eq!(res.status, code, "round {round}");
        if let Some(prev) = &previous {
            assert_ne!(
                prev, &flap,
                "round {round}: sequential requests with ttl 0 must alternate"
            );
        }
        previous = Some(flap);

        let hang = error_of(&report, "hang");
        assert!(hang.contains("timed out after 200 ms"), "{hang}");
        let panicked = error_of(&report, "panic");
        assert!(
            panicked.contains("check panicked") && panicked.contains("the check exploded"),
            "{panicked}"
        );
        let huge = error_of(&report, "huge");
        assert!(
            huge.len() <= MAX_ERROR_LEN,
            "huge error kept {} bytes",
            huge.len()
        );
        assert!(huge.ends_with('…') && huge.starts_with("ééé"), "{huge:.40}");
        for name in ["hang", "panic", "huge"] {
            assert_eq!(component(&report, name)["status"], "down", "{name}");
        }
    }
    let (probes, max, p50) = passthrough_stayed_fast(&stop, probe, "while checks hang").await;

    // Each status request ran each check once: nothing ran behind its back.
    assert_eq!(flaps.load(SeqCst), 50);
    assert_eq!(huge_runs.load(SeqCst), 50);
    latencies.sort();
    eprintln!(
        "misbehaving checks: report latency min {:?} p50 {:?} max {:?}; largest body {largest_body} B; \
         passthrough {probes} probes, p50 {p50:?}, max {max:?}",
        latencies[0],
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );

    // The in-process report agrees, and a component route too.
    let report = bounded("report", layer.clone().build().report()).await;
    assert!(report.components["huge"]
        .error
        .as_ref()
        .is_some_and(|e| e.len() <= MAX_ERROR_LEN));
    // Every rendering of the report stays small, not only the default JSON.
    for path in ["/status?format=ietf", "/status/ready?verbose"] {
        let (res, took) = timed_get(&client, addr, path).await;
        assert!(
            res.body.len() < MAX_BODY,
            "{path}: body of {} bytes",
            res.body.len()
        );
        assert!(took < Duration::from_secs(1), "{path}: {took:?}");
    }
    let (res, took) = timed_get(&client, addr, "/status/huge").await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        res.body.len() < 4 * MAX_ERROR_LEN,
        "{} bytes",
        res.body.len()
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
}

// ---------------------------------------------------------------- upstreams

/// `HttpCheck`s against upstreams that accept and then say nothing, send
/// half a head, or stall mid-body, all with a 300 ms request timeout: each
/// is down with "timed out" in about 300 ms. A `TcpCheck` and an
/// `HttpCheck` against a closed port are refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_upstreams_time_out_and_closed_ports_are_refused() {
    const REQUEST_TIMEOUT: Duration = Duration::from_millis(300);
    let silent = holding_server(b"").await;
    let half_head = holding_server(b"HTTP/1.1 200 OK\r\nContent-Ty").await;
    let stalled_body =
        holding_server(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"status\":").await;
    let closed = {
        let (listener, addr) = loopback().await;
        drop(listener);
        addr
    };

    let http = |name: &str, addr: SocketAddr| {
        HealthCheck::new(
            name,
            HttpCheck::new(format!("http://{addr}/status")).timeout(REQUEST_TIMEOUT),
        )
        .freshness(always())
    };
    let layer = StatusLayer::new()
        .check(http("silent", silent))
        .check(http("half_head", half_head))
        .check(http("stalled_body", stalled_body))
        .check(http("http_refused", closed))
        .check(
            HealthCheck::new("tcp_refused", TcpCheck::new(closed.to_string())).freshness(always()),
        );
    let addr = serve_hello(&layer).await;
    let client = http1_client();

    for round in 0..3 {
        let (res, took) = timed_get(&client, addr, "/status").await;
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
        let report = res.json();
        assert_eq!(report["status"], "down");
        assert!(
            took >= REQUEST_TIMEOUT - Duration::from_millis(5)
                && took < REQUEST_TIMEOUT + Duration::from_millis(700),
            "round {round}: report took {took:?}"
        );
        for name in ["silent", "half_head", "stalled_body"] {
            let c = component(&report, name);
            assert_eq!(c["status"], "down", "{name}: {c}");
            let error = error_of(&report, name);
            assert!(
                error.contains("timed out") && error.contains("300 ms"),
                "{name}: {error}"
            );
            let ran = c["duration_ms"].as_f64().expect("duration_ms");
            assert!(
                (295.0..1000.0).contains(&ran),
                "{name}: ran {ran} ms for a 300 ms request timeout"
            );
        }
        for name in ["http_refused", "tcp_refused"] {
            let c = component(&report, name);
            assert_eq!(c["status"], "down", "{name}: {c}");
            let error = error_of(&report, name);
            assert!(
                error.to_lowercase().contains("refused") && error.contains(&closed.to_string()),
                "{name}: {error}"
            );
            let ran = c["duration_ms"].as_f64().expect("duration_ms");
            assert!(ran < 250.0, "{name}: a refused connect took {ran} ms");
        }
        if round == 0 {
            eprintln!("upstreams: report in {took:?}: {}", report["components"]);
        }
    }

    // One component alone answers in the same time.
    let (res, took) = timed_get(&client, addr, "/status/silent").await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        took < REQUEST_TIMEOUT + Duration::from_millis(700),
        "{took:?}"
    );
    let (res, took) = timed_get(&client, addr, "/status/tcp_refused").await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(took < Duration::from_millis(250), "{took:?}");
}

// ---------------------------------------------------------------- hammering

/// 200 concurrent `GET /status` from 16 tasks while every check sleeps
/// 300 ms: every request is answered within 2 s, each check ran a bounded
/// number of times (single flight; flights never overlap, so at most one
/// per 300 ms), and `/` stays fast meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hammered_status_with_slow_checks_runs_each_check_once_per_flight() {
    const SLOW: Duration = Duration::from_millis(300);
    const TASKS: usize = 16;
    const REQUESTS: usize = 200;
    let slow = |name: &str, runs: &Arc<AtomicUsize>, freshness: Freshness| {
        let runs = Arc::clone(runs);
        HealthCheck::new(name, move || {
            runs.fetch_add(1, SeqCst);
            async {
                tokio::time::sleep(SLOW).await;
                true
            }
        })
        .freshness(freshness)
    };
    let fresh_runs = Arc::new(AtomicUsize::new(0));
    let cached_runs = Arc::new(AtomicUsize::new(0));
    let layer = StatusLayer::new()
        .check(slow("fresh", &fresh_runs, always()))
        .check(slow("cached", &cached_runs, Freshness::default()));
    let addr = serve_hello(&layer).await;
    let stop = Arc::new(AtomicBool::new(false));
    let probe = probe_passthrough(addr, Arc::clone(&stop));

    // The clients run on a thread of their own, so what they spend (parsing
    // 200 reports) does not queue the server's work.
    let started = Instant::now();
    let clients = elsewhere(async move {
        let next = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let next = Arc::clone(&next);
                tokio::spawn(async move {
                    let client = http1_client();
                    let mut took = Vec::new();
                    while next.fetch_add(1, SeqCst) < REQUESTS {
                        let (res, t) = timed_get(&client, addr, "/status").await;
                        assert_eq!(res.status, StatusCode::OK, "{res:?}");
                        assert_eq!(res.json()["status"], "ok");
                        took.push(t);
                    }
                    took
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(
                task.await
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
            );
        }
        latencies
    });
    // About REQUESTS / TASKS rounds of at least SLOW each: far over STEP in all.
    let mut latencies = tokio::time::timeout(4 * STEP, clients)
        .await
        .expect("status clients finish within 20 s")
        .expect("a status client panicked");
    let elapsed = started.elapsed();
    let (probes, max, p50) =
        passthrough_stayed_fast(&stop, probe, "while /status is hammered").await;

    assert_eq!(latencies.len(), REQUESTS);
    latencies.sort();
    let slowest = latencies[latencies.len() - 1];
    assert!(
        slowest < Duration::from_secs(2),
        "slowest status answer {slowest:?}"
    );
    let fresh = fresh_runs.load(SeqCst);
    let cached = cached_runs.load(SeqCst);
    eprintln!(
        "hammer: {REQUESTS} status requests in {elapsed:?}, latency p50 {:?} max {slowest:?}; \
         runs: fresh {fresh}, cached {cached}; passthrough {probes} probes, p50 {p50:?}, max {max:?}",
        latencies[latencies.len() / 2]
    );
    // Flights of one check never overlap and each lasts at least SLOW.
    let flights_possible = (elapsed.as_millis() / SLOW.as_millis()) as usize + 1;
    assert!(
        fresh >= 1 && fresh <= flights_possible,
        "fresh ran {fresh} times in {elapsed:?}"
    );
    assert!(
        fresh * 5 <= REQUESTS,
        "single flight: {fresh} runs for {REQUESTS} requests"
    );
    // Cached for 1 s after each 300 ms run: at most one run per 1.3 s.
    let cached_possible =
        (elapsed.as_millis() / (SLOW + Duration::from_secs(1)).as_millis()) as usize + 1;
    assert!(
        cached >= 1 && cached <= cached_possible,
        "cached ran {cached} times in {elapsed:?}"
    );
    assert_eq!(
        layer.clone().build().report().await.status_requests,
        REQUESTS as u64
    );
}

// ---------------------------------------------------------------- recovery

/// Hanging, panicking and 5 MB-error checks, all switched by one flag: down
/// (503) while the faults last, ok (200) within a bounded wait after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_recovers_once_the_faults_stop() {
    let broken = Arc::new(AtomicBool::new(true));
    let check = |name: &str,
                 fault: fn() -> std::pin::Pin<
        Box<dyn std::future::Future<Output = CheckResult> + Send>,
    >| {
        let broken = Arc::clone(&broken);
        HealthCheck::new(name, move || {
            let fault = broken.load(SeqCst).then(fault);
            async move {
                match fault {
                    Some(fault) => fault.await,
                    None => CheckResult::ok(),
                }
            }
        })
        .timeout(Duration::from_millis(200))
        .freshness(always())
    };
    let layer = StatusLayer::new()
        .check(check("hang", || Box::pin(std::future::pending())))
        .check(check("panic", || {
            Box::pin(async { CheckResult::new(Status::Down, Some(explode("broken"))) })
        }))
        .check(check("huge", || {
            Box::pin(async { CheckResult::down("x".repeat(5 * 1024 * 1024)) })
        }));
    let addr = serve_hello(&layer).await;
    let client = http1_client();

    for _ in 0..3 {
        let (res, took) = timed_get(&client, addr, "/status").await;
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(res.body.len() < MAX_BODY);
        assert!(took < Duration::from_secs(1), "{took:?}");
        let report = res.json();
        for name in ["hang", "panic", "huge"] {
            assert_eq!(component(&report, name)["status"], "down", "{report}");
        }
    }
    let (res, _) = timed_get(&client, addr, "/status/ready").await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);

    // A request left in flight while the flag flips.
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { timed_get(&client, addr, "/status").await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    broken.store(false, SeqCst);
    let flipped = Instant::now();
    let (_, took) = bounded("request across the flip", in_flight)
        .await
        .expect("task");
    assert!(took < Duration::from_secs(1), "{took:?}");

    let mut attempts = 0;
    let recovered_in = loop {
        attempts += 1;
        let (res, _) = timed_get(&client, addr, "/status").await;
        if res.status == StatusCode::OK {
            let report = res.json();
            assert_eq!(report["status"], "ok", "{report}");
            for name in ["hang", "panic", "huge"] {
                let c = component(&report, name);
                assert_eq!(c["status"], "ok", "{report}");
                assert!(c.get("error").is_none(), "{report}");
            }
            break flipped.elapsed();
        }
        assert!(
            attempts < 100 && flipped.elapsed() < STEP,
            "no recovery after {attempts} attempts: {}",
            String::from_utf8_lossy(&res.body)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Ttl 0: the first run after the flip is healthy.
    assert!(
        recovered_in < Duration::from_secs(1),
        "recovered in {recovered_in:?}"
    );
    let (res, _) = timed_get(&client, addr, "/status/ready").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        bounded("report", layer.clone().build().report())
            .await
            .status,
        Status::Ok
    );
    eprintln!("recovery: ok {recovered_in:?} after the flip ({attempts} attempts)");
}

// ---------------------------------------------------------------- report deadline

/// Twenty checks that hang far longer than any request (30 s timeout) and a
/// 250 ms report deadline: every answer (report, readiness, one component,
/// sequential and concurrent) arrives in under a second, each hanging
/// component reported as timed out by the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_deadline_bounds_every_answer_with_twenty_hanging_checks() {
    const DEADLINE: Duration = Duration::from_millis(250);
    let mut layer = StatusLayer::new().report_deadline(DEADLINE);
    for i in 0..20 {
        layer = layer.check(
            HealthCheck::new(format!("hang{i:02}"), std::future::pending::<bool>)
                .timeout(Duration::from_secs(30)),
        );
    }
    let addr = serve_hello(&layer).await;
    let client = http1_client();

    let mut latencies = Vec::new();
    for path in [
        "/status",
        "/status/ready",
        "/status/hang07",
        "/status",
        "/status",
    ] {
        let (res, took) = timed_get(&client, addr, path).await;
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(took < Duration::from_secs(1), "{path}: {took:?}");
        assert!(
            took >= DEADLINE - Duration::from_millis(5),
            "{path}: {took:?}"
        );
        latencies.push(took);
    }
    let (res, _) = timed_get(&client, addr, "/status").await;
    let report = res.json();
    assert_eq!(report["status"], "down");
    assert_eq!(report["components"].as_object().map(|c| c.len()), Some(20));
    for i in 0..20 {
        let error = error_of(&report, &format!("hang{i:02}"));
        assert!(
            error.contains("report deadline") && error.contains("250 ms"),
            "{error}"
        );
    }

    // Twenty at once, from separate connections.
    let concurrent: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(async move {
                let client = http1_client();
                timed_get(&client, addr, "/status").await
            })
        })
        .collect();
    for task in concurrent {
        let (res, took) = bounded("concurrent status", task).await.expect("task");
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(took < Duration::from_secs(1), "concurrent: {took:?}");
        latencies.push(took);
    }
    // In process too.
    let started = Instant::now();
    let report = bounded("report", layer.clone().build().report()).await;
    assert_eq!(report.status, Status::Down);
    assert!(started.elapsed() < Duration::from_secs(1));
    latencies.sort();
    eprintln!(
        "report deadline: {} answers, min {:?} max {:?}",
        latencies.len(),
        latencies[0],
        latencies[latencies.len() - 1]
    );
}
