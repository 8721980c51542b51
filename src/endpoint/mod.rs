//! The status endpoint: the route table, one handler per resource, and the
//! responses they share.
//!
//! [`respond`] is the one entry: it counts the request, decides who is
//! asking (before any work, so a refused request costs none), dispatches to
//! the resource's handler, and finishes the answer (error format, `HEAD`).

mod events;
mod handlers;
pub(crate) mod openapi;
mod page;
mod responses;
mod routes;
mod signals;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use http::request::Parts;
use http::{Method, Response};

use crate::auth::Caller;
use crate::state::Shared;

pub(crate) use events::StatusBody;
use responses::{finish, json, method_not_allowed, not_found, refused};
pub(crate) use routes::{is_status_path, route, Resource, Route};

/// The endpoint's answer to one request.
pub(crate) type StatusFuture = Pin<Box<dyn Future<Output = Response<StatusBody>> + Send>>;

/// Answers a request on the status path.
pub(crate) fn respond(shared: Arc<Shared>, route: Route, parts: Parts) -> StatusFuture {
    shared.recorder.count_status_request();
    let started = Instant::now();
    Box::pin(async move {
        let head = parts.method == Method::HEAD;
        let access = &shared.config.access;
        // Decided before any check runs, and for every method: each request
        // carrying a key counts against it, a 405 too.
        let caller = match route.access() {
            Some(group) => {
                let metrics = route.resource() == Some(Resource::Metrics);
                access.authorize(group, metrics, &parts.headers).await
            }
            // Open: it holds no health data.
            None => Ok(Caller::default()),
        };
        if parts.method != Method::GET && !head {
            return finish(&shared, method_not_allowed(), false).map(StatusBody::from);
        }
        let caller = match caller {
            Ok(caller) => caller,
            Err(refusal) => {
                return finish(&shared, refused(refusal, access.bearer()), head)
                    .map(StatusBody::from)
            }
        };
        shared.recorder.ensure_ticker();
        crate::state::start(&shared);
        let query = routes::Query::parse(parts.uri.query());
        if route.resource().is_some_and(Resource::details) && !caller.details {
            let refusal = handlers::details_refusal(&caller, access.details_need_key());
            return finish(&shared, refused(refusal, access.bearer()), head).map(StatusBody::from);
        }
        let res = match route {
            Route::Fixed(Resource::Report) => {
                handlers::report(&shared, query, caller, &parts.headers, started).await
            }
            Route::Fixed(Resource::Live) => handlers::live(&shared),
            Route::Fixed(Resource::Ready) => handlers::ready(&shared, query, caller.details).await,
            Route::Fixed(Resource::Watch) => return handlers::watch(&shared, &caller, head),
            Route::Fixed(Resource::OpenApi) => {
                json(http::StatusCode::OK, &openapi::document(&shared.config))
            }
            Route::Fixed(Resource::Metrics) => {
                handlers::metrics(&shared, query, caller, &parts.headers).await
            }
            Route::Fixed(Resource::Transitions) => {
                json(http::StatusCode::OK, &shared.verdicts.log())
            }
            Route::Fixed(Resource::History) => json(http::StatusCode::OK, &shared.past.report()),
            Route::Fixed(Resource::StatusBadge) => handlers::status_badge(&shared).await,
            Route::Fixed(Resource::UptimeBadge) => handlers::uptime_badge(&shared),
            Route::Component(name) => handlers::component(&shared, &name).await,
            Route::Fixed(Resource::Component) | Route::Unknown => {
                not_found("no such status resource")
            }
        };
        finish(&shared, res, head).map(StatusBody::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::report::Status;
    use std::time::Duration;

    use bytes::Bytes;
    use http::header::HeaderValue;
    use http::StatusCode;
    use http_body_util::Full;

    /// `GET uri` on `layer` (through its service), with an API key: status and body.
    fn get(layer: &crate::StatusLayer, uri: &str, key: Option<&str>) -> (StatusCode, Bytes) {
        use http_body_util::BodyExt;
        use tower::{Layer, ServiceExt};
        let svc = layer.layer(tower::service_fn(
            |_req: http::Request<Full<Bytes>>| async {
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                    b"hi",
                ))))
            },
        ));
        let mut req = http::Request::get(uri).body(Full::default()).unwrap();
        if let Some(key) = key {
            req.headers_mut()
                .insert("x-api-key", HeaderValue::from_str(key).unwrap());
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let res = svc.oneshot(req).await.unwrap();
            let status = res.status();
            (status, res.into_body().collect().await.unwrap().to_bytes())
        })
    }

    /// The default JSON written from stored results, with every optional
    /// part of the report present, holds what the typed report holds.
    #[test]
    fn default_json_reuses_stored_results() {
        use crate::auth::{ApiKeys, Identity};
        use crate::check::{CheckResult, Freshness, HealthCheck, TrafficRule};

        let layer = crate::StatusLayer::new()
            .version("1.2.3")
            .check(HealthCheck::new("z-last", || async { true }))
            .check(HealthCheck::new("a \"quoted\" \u{e9}\n", || async {
                CheckResult::degraded("slow \"disk\"")
                    .with_details(serde_json::json!({"retries": 3, "x": [1.5, null]}))
                    .with_observed(12.25, "ms")
            }))
            .check(
                HealthCheck::new("pushed-over", || async { false })
                    .component_type("datastore")
                    .critical(false)
                    .freshness(Freshness::OnDemand {
                        ttl: Duration::from_secs(3600),
                    }),
            )
            .traffic_rule(TrafficRule::error_rate_above(0.5, Status::Degraded))
            .section("jobs", || async { serde_json::json!({"total": 100}) })
            .api_keys(
                ApiKeys::new().key(
                    "k",
                    Identity::new("ops")
                        .attribute("tier", "gold")
                        .attribute("limit", 10),
                ),
            )
            .check(HealthCheck::pushed("m-pushed").critical(false));
        let handle = layer.clone().build();
        for uri in ["/status", "/status?exclude=z-last"] {
            let (status, body) = get(&layer, uri, Some("k"));
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        }
        handle.set_component("pushed-over", CheckResult::ok());
        handle.set_component("m-pushed", CheckResult::down("gone"));
        handle.start_draining();
        handle.set_maintenance(
            crate::report::Notice::new("upgrade")
                .estimated_completion(std::time::SystemTime::now() + Duration::from_secs(60)),
        );
        let (status, body) = get(&layer, "/status", Some("k"));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let text = String::from_utf8_lossy(&body);
        for part in [
            "\"notice\"",
            "\"draining\":true",
            "\"caller\"",
            "\"sections\"",
            "\"m-pushed\"",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
        // A key is required: without one, refused before any report.
        let (status, _) = get(&layer, "/status", None);
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // Allowed without a key but not shown details: the minimal body, as
        // `JsonFormat` renders it.
        // A builder call makes another layer, with a state of its own.
        let layer = layer.require_key(crate::auth::Endpoint::Report, false);
        layer
            .clone()
            .build()
            .set_maintenance(crate::report::Notice::new("upgrade"));
        let (status, body) = get(&layer, "/status", None);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["status", "timestamp"], "{v}");
        assert_eq!(v["status"], "maintenance", "{v}");

        // All checks cached, nothing else: the joined board, then parts
        // again once something is pushed.
        let ttl = Freshness::OnDemand {
            ttl: Duration::from_secs(3600),
        };
        let layer = crate::StatusLayer::new()
            .check(HealthCheck::new("b", || async { false }).freshness(ttl))
            .check(HealthCheck::new("a", || async { CheckResult::degraded("x") }).freshness(ttl));
        // The typed report of the same state, as a format would get it.
        let typed = |layer: &crate::StatusLayer| -> serde_json::Value {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let report = rt.block_on(layer.clone().build().report());
            serde_json::to_value(report.components).unwrap()
        };
        let members = |body: &Bytes| -> serde_json::Value {
            serde_json::from_slice::<serde_json::Value>(body).unwrap()["components"].clone()
        };
        let components = |body: &Bytes| -> Vec<String> {
            members(body).as_object().unwrap().keys().cloned().collect()
        };
        let first = get(&layer, "/status", None);
        let second = get(&layer, "/status", None);
        assert_eq!(first.0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(second.0, first.0);
        // The second from the cached board: the same stored results.
        assert_eq!(members(&second.1), members(&first.1));
        assert_eq!(members(&first.1), typed(&layer));
        assert_eq!(components(&first.1), ["a", "b"]);
        layer.clone().build().set_component("a0", CheckResult::ok());
        let (_, body) = get(&layer, "/status", None);
        assert_eq!(components(&body), ["a", "a0", "b"]);
        assert_eq!(members(&body), typed(&layer));

        // A custom aggregation rule sees the typed components.
        let layer = crate::StatusLayer::new()
            .check(HealthCheck::new("b", || async { false }))
            .check(HealthCheck::new("a", || async { true }))
            .aggregation(|components| {
                assert_eq!(components.keys().collect::<Vec<_>>(), ["a", "b"]);
                Status::Ok
            });
        for _ in 0..2 {
            let (status, body) = get(&layer, "/status", None);
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        }
        // Nothing at all beside the head: no `components` member.
        let (_, body) = get(&crate::StatusLayer::new(), "/status", None);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["status"], "ok", "{v}");
        assert!(v.get("components").is_none(), "{v}");
    }
}
