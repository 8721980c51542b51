//! Plain hyper 1 with the status endpoint, serving HTTP/1.1 and h2 on one
//! port (hyper-util's `auto::Builder`).
//!
//! ```sh
//! cargo run --example hyper
//! curl localhost:3000/
//! curl localhost:3000/status
//! curl --http2-prior-knowledge localhost:3000/status
//! ```
//!
//! Listens on `STATUS_ADDR` (default `127.0.0.1:3000`); stops on ctrl-c,
//! letting open connections finish.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::{service_fn, Layer};
use tower_status::StatusLayer;

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let res = match req.uri().path() {
        "/" => Response::new(Full::new(Bytes::from_static(b"hello\n"))),
        _ => {
            let mut res = Response::new(Full::new(Bytes::from_static(b"not found\n")));
            *res.status_mut() = StatusCode::NOT_FOUND;
            res
        }
    };
    Ok(res)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let layer = StatusLayer::new()
        .service_name(tower_status::app_name!())
        .version(tower_status::app_version!());
    let svc = layer.layer(service_fn(handle));

    let addr = std::env::var("STATUS_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}/status", listener.local_addr()?);

    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(conn) => conn,
                    Err(err) => {
                        eprintln!("accept failed: {err}");
                        continue;
                    }
                };
                let conn = builder.serve_connection(
                    TokioIo::new(stream),
                    TowerToHyperService::new(svc.clone()),
                );
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(err) = conn.await {
                        eprintln!("connection error: {err}");
                    }
                });
            }
            _ = &mut ctrl_c => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
