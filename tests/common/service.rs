//! Requests through a clone of a service, read into a [`Got`].

use std::fmt::Debug;

use bytes::Bytes;
use http::header::{HeaderName, RETRY_AFTER};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tower::{Layer, Service, ServiceExt};
use tower_status::StatusLayer;

use super::{bounded, parse_json, request};

/// A response as the test saw it.
#[derive(Debug)]
pub struct Got {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Got {
    /// The body as JSON, showing it when it is not.
    pub fn json(&self) -> Value {
        parse_json(&self.body)
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as text, failing when it is not UTF-8.
    pub fn utf8(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("UTF-8 body")
    }

    /// Header `name` as text, failing when it is missing.
    pub fn header(&self, name: HeaderName) -> &str {
        self.headers
            .get(&name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .expect("text header")
    }

    /// `Retry-After` in seconds, when present.
    pub fn retry_after(&self) -> Option<u64> {
        self.headers.get(RETRY_AFTER).map(|v| {
            v.to_str()
                .expect("ASCII Retry-After")
                .parse()
                .expect("Retry-After in seconds")
        })
    }
}

/// Sends one request through a clone of `svc` and reads the whole response.
pub async fn call<S, B>(svc: &S, method: Method, uri: &str) -> Got
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: Debug,
    B: Body,
    B::Error: Debug,
{
    let res = bounded(uri, svc.clone().oneshot(request(method, uri)))
        .await
        .expect("service error");
    let (parts, body) = res.into_parts();
    let body = bounded("body", body.collect())
        .await
        .expect("body error")
        .to_bytes();
    Got {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// `GET uri` through a clone of `svc`.
pub async fn call_get<S, B>(svc: &S, uri: &str) -> Got
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: Debug,
    B: Body,
    B::Error: Debug,
{
    call(svc, Method::GET, uri).await
}

/// `GET uri`, returning the status code and the JSON body (any status,
/// unlike `common::get_json`, which requires 200).
pub async fn call_json<S, B>(svc: &S, uri: &str) -> (StatusCode, Value)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: Debug,
    B: Body,
    B::Error: Debug,
{
    let got = call_get(svc, uri).await;
    (got.status, got.json())
}

/// Sends `request` through `layer` wrapped around
/// [`hello_service`](super::hello_service) with `oneshot`.
pub async fn call_layer(layer: &StatusLayer, request: Request<Full<Bytes>>) -> Got {
    let (parts, body) = super::send(layer.layer(super::hello_service()), request).await;
    Got {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}
