//! `GrpcCheck` against real tonic servers with tonic-health, and `TlsCheck`
//! against real rustls servers with certificates made here (a private CA
//! and its leaves). Both also through a real layer served on a loopback
//! port: ok -> down (server stopped) -> ok.
//!
//! Every server binds 127.0.0.1:0; every wait is bounded.

mod common;
#[path = "support/logs.rs"]
mod logs;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{component, fetch, http1_client, serve_hello, status_until, STEP};
use http::Method;
use logs::Logged;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Server};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tower_status::check::{Check, CheckResult, Freshness, GrpcCheck, HealthCheck, TlsCheck};
use tower_status::{Status, StatusLayer};

const DAY: Duration = Duration::from_secs(86_400);

fn details(result: &CheckResult) -> &Value {
    result.details.as_ref().expect("details")
}

fn error(result: &CheckResult) -> &str {
    result.error.as_deref().unwrap_or("")
}

/// A loopback listener kept by the test, so that a server can stop and a
/// new one serve the same port.
async fn bind() -> (Arc<TcpListener>, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    (Arc::new(listener), addr)
}

/// The connections `listener` accepts, for tonic's `serve_with_incoming`.
fn incoming(
    listener: Arc<TcpListener>,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(listener, |l| async move {
        let accepted = l.accept().await.map(|(s, _)| s);
        Some((accepted, l))
    })
}

// ---------------------------------------------------------------- gRPC

/// A tonic server with tonic-health (or without it) on a kept listener.
struct GrpcServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl GrpcServer {
    /// Serves tonic-health (`""` serving) on `listener`; the reporter sets
    /// the statuses.
    fn health(listener: &Arc<TcpListener>) -> (Self, HealthReporter) {
        let (reporter, service) = tonic_health::server::health_reporter();
        (
            Self::serve(listener, Server::builder().add_service(service)),
            reporter,
        )
    }

    /// A gRPC server without the health service: every call is UNIMPLEMENTED.
    fn without_health(listener: &Arc<TcpListener>) -> Self {
        let routes = tonic::service::Routes::default();
        Self::serve(listener, Server::builder().add_routes(routes))
    }

    fn serve(listener: &Arc<TcpListener>, router: tonic::transport::server::Router) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let incoming = incoming(Arc::clone(listener));
        let task = tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stopped.await;
                })
                .await
                .expect("tonic server");
        });
        Self {
            stop: Some(stop),
            task,
        }
    }

    /// Graceful shutdown (GOAWAY to the clients), bounded; the listener
    /// stays open but nobody serves it any more.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = &mut self.task;
        if tokio::time::timeout(STEP, task).await.is_err() {
            self.task.abort();
            panic!("the tonic server did not shut down within {STEP:?}");
        }
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("valid URI")
        .connect_lazy()
}

#[tokio::test]
async fn grpc_serving_is_ok_and_not_serving_is_down() {
    let (listener, addr) = bind().await;
    let (_server, reporter) = GrpcServer::health(&listener);
    reporter
        .set_service_status("pkg.Orders", ServingStatus::Serving)
        .await;
    reporter
        .set_service_status("pkg.Billing", ServingStatus::NotServing)
        .await;
    let channel = channel(addr);

    let whole = GrpcCheck::new(channel.clone())
        .timeout(Duration::from_secs(2))
        .check()
        .await;
    assert_eq!(whole.status, Status::Ok, "{whole:?}");
    assert_eq!(details(&whole)["service"], "");
    assert_eq!(details(&whole)["serving_status"], "SERVING");
    assert_eq!(whole.observed_unit.as_deref(), Some("ms"));
    let rtt = whole
        .observed_value
        .as_ref()
        .and_then(Value::as_f64)
        .unwrap();
    assert!(rtt > 0.0 && rtt < 2000.0, "{rtt}");

    let orders = GrpcCheck::new(channel.clone())
        .service("pkg.Orders")
        .check()
        .await;
    assert_eq!(orders.status, Status::Ok, "{orders:?}");
    assert_eq!(details(&orders)["service"], "pkg.Orders");

    let billing = GrpcCheck::new(channel.clone())
        .service("pkg.Billing")
        .endpoint(format!("http://{addr}"))
        .check()
        .await;
    assert_eq!(billing.status, Status::Down, "{billing:?}");
    assert_eq!(
        error(&billing),
        format!("service pkg.Billing at http://{addr} is NOT_SERVING")
    );
    assert_eq!(details(&billing)["serving_status"], "NOT_SERVING");
    assert_eq!(details(&billing)["endpoint"], format!("http://{addr}"));

    // The reporter's changes show at the next run.
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let whole = GrpcCheck::new(channel.clone()).check().await;
    assert_eq!(whole.status, Status::Down, "{whole:?}");
    reporter
        .set_service_status("", ServingStatus::Unknown)
        .await;
    let whole = GrpcCheck::new(channel).check().await;
    assert_eq!(whole.status, Status::Degraded, "{whole:?}");
    assert_eq!(details(&whole)["serving_status"], "UNKNOWN");
}

#[tokio::test]
async fn grpc_an_unknown_service_is_degraded() {
    let (listener, addr) = bind().await;
    let (_server, _reporter) = GrpcServer::health(&listener);
    let result = GrpcCheck::new(channel(addr))
        .service("pkg.Missing")
        .check()
        .await;
    assert_eq!(result.status, Status::Degraded, "{result:?}");
    assert_eq!(
        error(&result),
        "service pkg.Missing is not registered with the server's health service (NOT_FOUND)"
    );
    assert_eq!(details(&result)["grpc_code"], "NOT_FOUND");
}

#[tokio::test]
async fn grpc_a_server_without_the_health_service_is_down() {
    let (listener, addr) = bind().await;
    let _server = GrpcServer::without_health(&listener);
    let result = GrpcCheck::new(channel(addr)).check().await;
    assert_eq!(result.status, Status::Down, "{result:?}");
    assert!(
        error(&result).contains("does not implement grpc.health.v1.Health (UNIMPLEMENTED)"),
        "{result:?}"
    );
    assert_eq!(details(&result)["grpc_code"], "UNIMPLEMENTED");
}

#[tokio::test]
async fn grpc_a_server_that_never_answers_is_down_within_the_timeout() {
    // Accepts connections and holds them without a word.
    let (listener, addr) = bind().await;
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let result = GrpcCheck::new(channel(addr)).timeout(timeout).check().await;
    let took = started.elapsed();
    holder.abort();
    assert_eq!(result.status, Status::Down, "{result:?}");
    assert_eq!(
        error(&result),
        "the server did not answer the health check within 300 ms"
    );
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(1),
        "took {took:?}"
    );
}

#[tokio::test]
async fn grpc_nothing_listening_is_down() {
    let (listener, addr) = bind().await;
    drop(listener);
    let result = GrpcCheck::new(channel(addr))
        .timeout(Duration::from_millis(500))
        .check()
        .await;
    assert_eq!(result.status, Status::Down, "{result:?}");
    assert!(
        error(&result).starts_with("the server is unavailable (UNAVAILABLE)"),
        "{result:?}"
    );
}

/// Down when the server stops, ok when a new one serves the same port, as a
/// client of the status endpoint sees it; the endpoint's credentials never
/// show.
#[tokio::test(flavor = "current_thread")]
async fn grpc_ok_down_ok_through_a_layer() {
    let logged = Logged::default();
    // Current-thread runtime: the background check logs under it.
    let _guard = tracing::subscriber::set_default(logged.subscriber());

    let (listener, addr) = bind().await;
    let (server, _reporter) = GrpcServer::health(&listener);
    let timeout = Duration::from_millis(300);
    let every = Duration::from_millis(400);
    let check = GrpcCheck::new(channel(addr))
        .timeout(timeout)
        .endpoint(format!("http://probe:s3cret@{addr}"));
    assert!(!format!("{check:?}").contains("s3cret"));
    // The transition log looks often enough to see the short down phase.
    let layer = StatusLayer::new()
        .watch_interval(Duration::from_millis(50))
        .check(
            HealthCheck::new("upstream", check)
                .timeout(Duration::from_secs(1))
                .freshness(Freshness::Background { every }),
        );
    let app = serve_hello(&layer).await;
    // Bound for each change: the check's timeout plus one interval, with
    // room for a busy machine.
    let bound = timeout + every + Duration::from_secs(2);

    let (ok, _) = status_until(app, "upstream", "ok", STEP).await;
    let ok = component(&ok, "upstream").clone();
    assert_eq!(ok["details"]["serving_status"], "SERVING", "{ok}");
    assert_eq!(ok["details"]["endpoint"], format!("http://***@{addr}"));

    server.stop().await;
    let (down, took) = status_until(app, "upstream", "down", bound).await;
    let down = component(&down, "upstream").clone();
    assert!(took < bound, "down after {took:?}");
    assert_eq!(
        down["error"],
        format!("the server at http://***@{addr} did not answer the health check within 300 ms"),
        "{down}"
    );

    let (_server, _reporter) = GrpcServer::health(&listener);
    let (ok, took) = status_until(app, "upstream", "ok", bound).await;
    let ok = component(&ok, "upstream").clone();
    assert!(took < bound, "ok again after {took:?}");
    assert_eq!(ok["details"]["serving_status"], "SERVING", "{ok}");

    let report = fetch(&http1_client(), app, Method::GET, "/status").await;
    let body = String::from_utf8_lossy(&report.body);
    assert!(!body.contains("s3cret"), "{body}");
    let logged = logged.text();
    assert!(!logged.contains("s3cret"), "{logged}");
    // The transition to down was logged, with the redacted endpoint.
    assert!(
        logged
            .lines()
            .any(|l| l.contains("status changed") && l.contains(&format!("http://***@{addr}"))),
        "{logged}"
    );
}

// ---------------------------------------------------------------- TLS

const NAME: &str = "upstream.test";

/// A private CA.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn new_ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf certificate and its key.
struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

/// A leaf for `name` valid from `from` to `until` from now (negative:
/// before now), issued by `ca` or self-signed.
fn leaf(ca: Option<&Ca>, name: &str, from: i64, until: i64) -> Leaf {
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    let now = OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::seconds(from);
    params.not_after = now + time::Duration::seconds(until);
    let key = KeyPair::generate().unwrap();
    let cert = match ca {
        Some(ca) => params.signed_by(&key, &ca.issuer).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    Leaf {
        chain: vec![cert.der().clone()],
        key: key.serialize_der(),
    }
}

fn days(n: i64) -> i64 {
    n * 86_400
}

/// A TLS server (tokio-rustls) on a kept listener: completes handshakes
/// with `leaf`, then closes.
struct TlsServer {
    task: JoinHandle<()>,
}

impl TlsServer {
    fn start(listener: &Arc<TcpListener>, leaf: &Leaf) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                leaf.chain.clone(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.clone())),
            )
            .expect("server certificate");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = Arc::clone(listener);
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                conns.spawn(async move {
                    if let Ok(Ok(mut tls)) =
                        tokio::time::timeout(STEP, acceptor.accept(socket)).await
                    {
                        use tokio::io::AsyncWriteExt;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        Self { task }
    }

    /// Stops accepting (the kept listener queues connections nobody serves).
    fn stop(self) {}
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        // The connection tasks are in the aborted task's JoinSet.
        self.task.abort();
    }
}

async fn tls_server(leaf: &Leaf) -> (TlsServer, SocketAddr) {
    let (listener, addr) = bind().await;
    (TlsServer::start(&listener, leaf), addr)
}

fn tls_check(addr: SocketAddr, ca: &Ca) -> TlsCheck {
    TlsCheck::new(addr.to_string())
        .unwrap()
        .server_name(NAME)
        .root_certificate(&ca.pem)
        .timeout(Duration::from_secs(2))
}

fn days_left(result: &CheckResult) -> f64 {
    assert_eq!(result.observed_unit.as_deref(), Some("days"), "{result:?}");
    result
        .observed_value
        .as_ref()
        .and_then(Value::as_f64)
        .expect("days left")
}

#[tokio::test]
async fn tls_a_leaf_valid_90_days_is_ok() {
    let ca = new_ca("Test CA");
    let (_server, addr) = tls_server(&leaf(Some(&ca), NAME, -days(1), days(90))).await;
    let result = tls_check(addr, &ca).check().await;
    assert_eq!(result.status, Status::Ok, "{result:?}");
    let left = days_left(&result);
    assert!((89.9..=90.0).contains(&left), "{left}");
    let d = details(&result);
    assert_eq!(d["server_name"], NAME);
    assert_eq!(d["subject"], format!("CN={NAME}"));
    assert_eq!(d["issuer"], "CN=Test CA");
    assert_eq!(d["trusted"], true);
    let not_after = d["not_after"].as_str().unwrap();
    let parsed = humantime::parse_rfc3339(not_after).expect("RFC 3339");
    let expected = std::time::SystemTime::now() + 90 * DAY;
    let off = expected
        .duration_since(parsed)
        .unwrap_or_else(|e| e.duration());
    assert!(off < Duration::from_secs(60), "{not_after}");
    assert!(d["handshake_ms"].as_f64().unwrap() > 0.0, "{d}");

    // The same CA given as DER, and the default warning window.
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(ca.pem.as_bytes())
        .map(|c: CertificateDer<'static>| c.to_vec())
        .unwrap();
    let result = TlsCheck::new(addr.to_string())
        .unwrap()
        .server_name(NAME)
        .root_certificate(der)
        .check()
        .await;
    assert_eq!(result.status, Status::Ok, "{result:?}");
}

#[tokio::test]
async fn tls_expiring_in_2_days_is_degraded() {
    let ca = new_ca("Test CA");
    let (_server, addr) = tls_server(&leaf(Some(&ca), NAME, -days(88), days(2))).await;
    let result = tls_check(addr, &ca).check().await;
    assert_eq!(result.status, Status::Degraded, "{result:?}");
    let not_after = details(&result)["not_after"].as_str().unwrap().to_owned();
    assert_eq!(
        error(&result),
        format!("certificate for {NAME} expires in 2 days ({not_after})")
    );
    let left = days_left(&result);
    assert!((1.9..=2.0).contains(&left), "{left}");
    // Outside a 1-day warning window it is ok.
    let result = tls_check(addr, &ca).warn_within(1).check().await;
    assert_eq!(result.status, Status::Ok, "{result:?}");
}

#[tokio::test]
async fn tls_expired_is_down_with_its_days() {
    let ca = new_ca("Test CA");
    let (_server, addr) = tls_server(&leaf(Some(&ca), NAME, -days(90), -days(3))).await;
    let result = tls_check(addr, &ca).check().await;
    assert_eq!(result.status, Status::Down, "{result:?}");
    let not_after = details(&result)["not_after"].as_str().unwrap().to_owned();
    assert_eq!(
        error(&result),
        format!("certificate for {NAME} expired 3 days ago ({not_after})")
    );
    // Trusted otherwise: only the dates are wrong.
    assert_eq!(details(&result)["trusted"], true);
    let left = days_left(&result);
    assert!((-3.01..=-2.99).contains(&left), "{left}");
}

/// An intermediate CA valid from `from` to `until` from now, under `ca`;
/// its certificate goes in the chain the server sends.
fn intermediate(ca: &Ca, from: i64, until: i64) -> (Ca, CertificateDer<'static>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "Test Intermediate");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::seconds(from);
    params.not_after = now + time::Duration::seconds(until);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let der = cert.der().clone();
    (
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        },
        der,
    )
}

/// The leaf is within its dates, the intermediate it was issued by is
/// not: the chain is not valid, and the leaf's own dates do not hide it.
#[tokio::test]
async fn tls_an_expired_intermediate_is_down() {
    let ca = new_ca("Test CA");
    let (expired, expired_der) = intermediate(&ca, -days(60), -days(1));
    let mut chained = leaf(Some(&expired), NAME, -days(10), days(80));
    chained.chain.push(expired_der);
    let (_server, addr) = tls_server(&chained).await;
    let result = tls_check(addr, &ca).check().await;
    assert_eq!(result.status, Status::Down, "{result:?}");
    assert!(error(&result).contains("not trusted"), "{result:?}");
    assert!(days_left(&result) > 79.0, "{result:?}");

    // The same chain with a valid intermediate is ok.
    let (valid, valid_der) = intermediate(&ca, -days(60), days(300));
    let mut chained = leaf(Some(&valid), NAME, -days(10), days(80));
    chained.chain.push(valid_der);
    let (_server, addr) = tls_server(&chained).await;
    let result = tls_check(addr, &ca).check().await;
    assert_eq!(result.status, Status::Ok, "{result:?}");
}

#[tokio::test]
async fn tls_not_yet_valid_is_down() {
    let ca = new_ca("Test CA");
    let (_server, addr) = tls_server(&leaf(Some(&ca), NAME, days(2), days(30))).await;
    let result = tls_check(addr, &ca).check().await;
    assert_eq!(result.status, Status::Down, "{result:?}");
    assert!(error(&result).contains("is not valid before"), "{result:?}");
    assert!(error(&result).ends_with("(in 2 days)"), "{result:?}");
}

#[tokio::test]
async fn tls_a_leaf_for_another_name_is_down() {
    let ca = new_ca("Test CA");
    let (_server, addr) = tls_server(&leaf(Some(&ca), "other.test", -days(1), days(90))).await;
    let result = tls_check(addr, &ca).check().await;
    assert_eq!(result.status, Status::Down, "{result:?}");
    assert_eq!(
        error(&result),
        format!("certificate for {NAME} is not trusted: it is not valid for the name {NAME}")
    );
    assert_eq!(details(&result)["trusted"], false);
    // Its dates are still read.
    assert!(days_left(&result) > 89.0);
}

#[tokio::test]
async fn tls_a_self_signed_leaf_is_down() {
    let ca = new_ca("Test CA");
    let (_server, addr) = tls_server(&leaf(None, NAME, -days(1), days(90))).await;
    let result = tls_check(addr, &ca).check().await;
    assert_eq!(result.status, Status::Down, "{result:?}");
    assert_eq!(
        error(&result),
        format!("certificate for {NAME} is not trusted: it is not issued by a trusted CA (unknown issuer)")
    );
    // Another CA than the one trusted: the same.
    let other = new_ca("Other CA");
    let (_server, addr) = tls_server(&leaf(Some(&other), NAME, -days(1), days(90))).await;
    let result = tls_check(addr, &ca).check().await;
    assert_eq!(result.status, Status::Down, "{result:?}");
    assert!(error(&result).contains("unknown issuer"), "{result:?}");
    // Both untrusted and expired: both said.
    let (_server, addr) = tls_server(&leaf(None, NAME, -days(90), -days(3))).await;
    let result = tls_check(addr, &ca).check().await;
    assert_eq!(result.status, Status::Down, "{result:?}");
    assert!(
        error(&result).contains("unknown issuer") && error(&result).contains("expired 3 days ago"),
        "{result:?}"
    );
}

#[tokio::test]
async fn tls_a_stopped_server_is_down() {
    let ca = new_ca("Test CA");
    let (listener, addr) = bind().await;
    drop(listener);
    let result = tls_check(addr, &ca).check().await;
    assert_eq!(result.status, Status::Down, "{result:?}");
    assert!(
        error(&result).starts_with(&format!("connecting to {addr}:")),
        "{result:?}"
    );

    // Accepts and holds: down within the timeout.
    let (listener, addr) = bind().await;
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let result = tls_check(addr, &ca)
        .timeout(Duration::from_millis(300))
        .check()
        .await;
    let took = started.elapsed();
    holder.abort();
    assert_eq!(result.status, Status::Down, "{result:?}");
    assert_eq!(
        error(&result),
        format!("no TLS handshake with {addr} ({NAME}) within 300 ms")
    );
    assert!(took < Duration::from_millis(1300), "took {took:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn tls_ok_down_ok_through_a_layer() {
    let ca = new_ca("Test CA");
    let cert = leaf(Some(&ca), NAME, -days(1), days(90));
    let (listener, addr) = bind().await;
    let server = TlsServer::start(&listener, &cert);
    let timeout = Duration::from_millis(300);
    let every = Duration::from_millis(400);
    let layer = StatusLayer::new().check(
        HealthCheck::new("cert", tls_check(addr, &ca).timeout(timeout))
            .timeout(Duration::from_secs(1))
            .freshness(Freshness::Background { every }),
    );
    let app = serve_hello(&layer).await;
    let bound = timeout + every + Duration::from_secs(2);

    let (ok, _) = status_until(app, "cert", "ok", STEP).await;
    let ok = component(&ok, "cert").clone();
    assert_eq!(ok["observed_unit"], "days", "{ok}");
    assert_eq!(ok["details"]["subject"], format!("CN={NAME}"), "{ok}");

    server.stop();
    let (down, took) = status_until(app, "cert", "down", bound).await;
    let down = component(&down, "cert").clone();
    assert!(took < bound, "down after {took:?}");
    assert!(
        down["error"].as_str().unwrap().contains("no TLS handshake"),
        "{down}"
    );

    let _server = TlsServer::start(&listener, &cert);
    let (_, took) = status_until(app, "cert", "ok", bound).await;
    assert!(took < bound, "ok again after {took:?}");
}
