//! Access control: API keys, who may see the status, and who sees details.
//!
//! Keys come from a header (`X-Api-Key` by default) and/or
//! `Authorization: Bearer`. [`ApiKeys`] maps each key to an [`Identity`]
//! with [`Permissions`]: from code, from an environment variable, or from an
//! async lookup (a database, say) whose answers are cached briefly. Keys are
//! kept only as SHA-256 digests, compared in constant time, and never
//! logged or echoed.
//!
//! Access is decided before any check runs: a request that is refused
//! never makes the service do work. Missing, unknown or malformed keys get
//! 401 (with `WWW-Authenticate: Bearer` when Bearer is accepted), a key
//! without the permission 403, and a lookup that panics or times out 503.
//! Probes that need no key ignore credentials they cannot use, so a proxy's
//! own `Authorization` header never fails an orchestrator's probe.
//!
//! ```
//! use tower_status::auth::{ApiKeys, Endpoint, Identity, Permissions, Visibility};
//! use tower_status::StatusLayer;
//!
//! let layer = StatusLayer::new().api_keys(
//!     ApiKeys::new()
//!         .key("s3cret-ops-key", Identity::new("ops"))
//!         .key("lb-key", Identity::new("load-balancer").permissions(Permissions::STATUS)),
//! )
//! // The defaults, spelled out: the report needs a key, probes are open,
//! // details only for callers allowed to see them.
//! .require_key(Endpoint::Report, true)
//! .require_key(Endpoint::Probes, false)
//! .show_details(Visibility::WhenAuthorized);
//! # let _ = layer;
//! ```

mod counter;
mod credential;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::BoxFuture;
use http::header::HeaderName;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::guarded::{self, Failure};
use crate::report::Timestamp;

pub(crate) use counter::CallerCounter;
pub use counter::MAX_TRACKED_CALLERS;
pub(crate) use credential::{credential, Credential};

/// What an identity may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Permissions {
    status: bool,
    details: bool,
    metrics: bool,
}

impl Permissions {
    /// Nothing: a known key that may not see the status (answered 403).
    pub const NONE: Self = Self {
        status: false,
        details: false,
        metrics: false,
    };
    /// The overall status only.
    pub const STATUS: Self = Self {
        status: true,
        details: false,
        metrics: false,
    };
    /// The status with every detail.
    pub const ALL: Self = Self {
        status: true,
        details: true,
        metrics: true,
    };
    /// The Prometheus metrics (`PATH/metrics`) only: a scraper's key. It
    /// is refused (403) on the report and every other resource that needs
    /// the status, and treated as anonymous on open probes.
    ///
    /// ```
    /// use tower_status::auth::{ApiKeys, Identity, Permissions};
    /// use tower_status::StatusLayer;
    ///
    /// let layer = StatusLayer::new()
    ///     .serve_metrics(true)
    ///     .api_keys(
    ///         ApiKeys::new()
    ///             .key("s3cret-ops-key", Identity::new("ops"))
    ///             .key("scrape-key", Identity::new("prometheus").permissions(Permissions::METRICS)),
    ///     );
    /// # let _ = layer;
    /// ```
    pub const METRICS: Self = Self {
        status: false,
        details: false,
        metrics: true,
    };

    /// May see the status.
    #[must_use]
    pub fn status(self) -> bool {
        self.status
    }

    /// May see details: components, errors, versions, traffic.
    #[must_use]
    pub fn details(self) -> bool {
        self.details
    }

    /// May scrape the Prometheus metrics ([`ALL`](Self::ALL) and
    /// [`METRICS`](Self::METRICS)).
    #[must_use]
    pub fn metrics(self) -> bool {
        self.metrics
    }
}

/// Who a key belongs to.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Identity {
    /// Name of the caller (an account, a team, a tool).
    pub name: String,
    /// What the caller may do.
    #[serde(skip)]
    pub permissions: Permissions,
    /// Any other data: tier, limits, ...
    #[serde(flatten)]
    pub attributes: Map<String, Value>,
}

impl Identity {
    /// An identity with every permission.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            permissions: Permissions::ALL,
            attributes: Map::new(),
        }
    }

    /// Sets the permissions.
    #[must_use]
    pub fn permissions(mut self, permissions: Permissions) -> Self {
        self.permissions = permissions;
        self
    }

    /// Adds an attribute (`"tier"`, `"limit"`, ...). In the report's
    /// `caller` section, attributes named like its own fields (`name`,
    /// `requests_in_window`, `window_ends`) are left out; formats still see
    /// them on the identity.
    #[must_use]
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }
}

/// Finds the identity of a key elsewhere (a database, a secrets service).
///
/// Implemented by async closures `Fn(String) -> impl Future<Output = Option<Identity>>`.
/// To implement it by hand, return a boxed future (`Box::pin(async { .. })`).
pub trait KeyLookup: Send + Sync + 'static {
    /// The identity of `key`, or `None` when it is unknown.
    fn lookup(&self, key: String) -> Pin<Box<dyn Future<Output = Option<Identity>> + Send + '_>>;
}

impl<F, Fut> KeyLookup for F
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<Identity>> + Send + 'static,
{
    fn lookup(&self, key: String) -> BoxFuture<'_, Option<Identity>> {
        Box::pin(self(key))
    }
}

/// The SHA-256 digest of a key: all that is kept of it.
type KeyDigest = [u8; 32];

fn digest(key: &[u8]) -> KeyDigest {
    Sha256::digest(key).into()
}

/// Lookup answers by key digest, with when they were made.
type LookupCache = HashMap<KeyDigest, (Instant, Option<Arc<Identity>>)>;

/// Most lookup answers cached at once.
const LOOKUP_CACHE_SIZE: usize = 4096;

/// The keys the status endpoint accepts.
#[derive(Clone)]
pub struct ApiKeys {
    pub(crate) header: Option<HeaderName>,
    pub(crate) bearer: bool,
    /// Keys given in code, as digests (the keys themselves are not kept).
    keys: Vec<(KeyDigest, Arc<Identity>)>,
    lookup: Option<Arc<dyn KeyLookup>>,
    cache_ttl: Duration,
    lookup_timeout: Duration,
    cache: Arc<Mutex<LookupCache>>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys themselves are never printed.
        f.debug_struct("ApiKeys")
            .field("header", &self.header)
            .field("bearer", &self.bearer)
            .field("keys", &self.keys.len())
            .field("lookup", &self.lookup.is_some())
            .field("cache_ttl", &self.cache_ttl)
            .finish()
    }
}

impl Default for ApiKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiKeys {
    /// No keys yet; accepted from `X-Api-Key` and `Authorization: Bearer`.
    #[must_use]
    pub fn new() -> Self {
        Self {
            header: Some(HeaderName::from_static("x-api-key")),
            bearer: true,
            keys: Vec::new(),
            lookup: None,
            cache_ttl: Duration::from_secs(30),
            lookup_timeout: Duration::from_secs(2),
            cache: Arc::default(),
        }
    }

    /// Reads keys from this header instead of `X-Api-Key`. Header names are
    /// case-insensitive: a request's `X-Status-Token` is read for
    /// `x-status-token`. A `HeaderName` is always valid, so a misspelt name
    /// can no longer turn the key header off unnoticed:
    /// [`HeaderName::from_static`] takes a lowercase literal (and panics on
    /// anything else), `HeaderName::try_from` reports a name that is not
    /// valid.
    ///
    /// ```
    /// use http::header::HeaderName;
    /// use tower_status::auth::{ApiKeys, Identity};
    ///
    /// let keys = ApiKeys::new()
    ///     .header(HeaderName::from_static("x-status-token"))
    ///     .key("s3cret", Identity::new("ops"));
    /// // A name known only at run time: `HeaderName::try_from` says when
    /// // it is not a valid header name.
    /// let name = HeaderName::try_from("X-Status-Token").expect("a header name");
    /// let keys = keys.header(name);
    /// # let _ = keys;
    /// ```
    #[must_use]
    pub fn header(mut self, name: HeaderName) -> Self {
        self.header = Some(name);
        self
    }

    /// Stops reading a key header: only `Authorization: Bearer`.
    #[must_use]
    pub fn no_header(mut self) -> Self {
        self.header = None;
        self
    }

    /// Whether `Authorization: Bearer <key>` is accepted (default `true`).
    #[must_use]
    pub fn bearer(mut self, accept: bool) -> Self {
        self.bearer = accept;
        self
    }

    /// Accepts `key` for `identity`; a key given again is accepted for the
    /// latest identity. Empty keys are ignored. Only the key's SHA-256
    /// digest is kept.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>, identity: Identity) -> Self {
        let key = key.into();
        if !key.is_empty() {
            let key = digest(key.as_bytes());
            self.keys.retain(|(k, _)| *k != key);
            self.keys.push((key, Arc::new(identity)));
        }
        self
    }

    /// Accepts each comma-separated key in the environment variable `var`
    /// (when set) for `identity`.
    #[must_use]
    pub fn keys_from_env(mut self, var: &str, identity: Identity) -> Self {
        if let Ok(value) = std::env::var(var) {
            for key in value.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                self = self.key(key, identity.clone());
            }
        }
        self
    }

    /// Asks `lookup` about keys not given in code; answers (found or not)
    /// are cached for the cache TTL.
    #[must_use]
    pub fn lookup(mut self, lookup: impl KeyLookup) -> Self {
        self.lookup = Some(Arc::new(lookup));
        self
    }

    /// How long lookup answers are cached (default 30 s).
    #[must_use]
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// The static key matching `key`: see [`find_digest`](Self::find_digest).
    pub(crate) fn find_static(&self, key: &[u8]) -> Option<&Arc<Identity>> {
        self.find_digest(&digest(key))
    }

    /// The static key whose digest is `key`. Every stored digest is
    /// compared, in constant time and without an early exit; all digests
    /// have the same length, so timing says nothing about which key
    /// matched, nor about the length of any key.
    fn find_digest(&self, key: &KeyDigest) -> Option<&Arc<Identity>> {
        // Index of the match, chosen without a branch on the comparison.
        let mut found = u64::MAX;
        for (index, (candidate, _)) in (0u64..).zip(&self.keys) {
            // `subtle` compares slices; both are 32 bytes, so every byte is compared.
            let equal = candidate.as_slice().ct_eq(key.as_slice());
            found.conditional_assign(&index, equal);
        }
        let found = usize::try_from(found).ok()?;
        self.keys.get(found).map(|(_, identity)| identity)
    }

    /// How long one lookup may take before the request is answered 503
    /// (default 2 s).
    #[must_use]
    pub fn lookup_timeout(mut self, timeout: Duration) -> Self {
        self.lookup_timeout = timeout;
        self
    }

    /// The identity of `key`, from code or the lookup; an error when the
    /// lookup panicked or timed out.
    pub(crate) async fn identify(&self, key: &str) -> Result<Option<Arc<Identity>>, &'static str> {
        let hashed = digest(key.as_bytes());
        if let Some(identity) = self.find_digest(&hashed) {
            return Ok(Some(Arc::clone(identity)));
        }
        let Some(lookup) = self.lookup.as_ref() else {
            return Ok(None);
        };
        let now = Instant::now();
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, answer)) = cache.get(&hashed) {
                if now.saturating_duration_since(*at) < self.cache_ttl {
                    return Ok(answer.clone());
                }
            }
        }
        let answer = match guarded::run(lookup.lookup(key.to_owned()), self.lookup_timeout).await {
            Ok(answer) => answer.map(Arc::new),
            Err(Failure::Panicked(_)) => return Err("the API key lookup failed"),
            Err(Failure::TimedOut(_)) => return Err("the API key lookup timed out"),
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= LOOKUP_CACHE_SIZE {
            // Bounded: expired answers go first, then everything.
            let ttl = self.cache_ttl;
            cache.retain(|_, (at, _)| now.saturating_duration_since(*at) < ttl);
            if cache.len() >= LOOKUP_CACHE_SIZE {
                cache.clear();
            }
        }
        cache.insert(hashed, (now, answer.clone()));
        Ok(answer)
    }
}

/// Groups of status endpoints that access rules apply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// The full report and single components.
    Report,
    /// `live` and `ready`, for orchestrators.
    Probes,
}

/// Who sees details (component names, errors, versions, traffic), as Spring
/// Boot's `show-details` names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Nobody: only the overall status.
    Never,
    /// Callers whose key has the details permission.
    #[default]
    WhenAuthorized,
    /// Everyone allowed to see the status.
    Always,
}

/// Access rules of a layer.
#[derive(Clone, Debug, Default)]
pub(crate) struct Access {
    pub(crate) keys: Option<ApiKeys>,
    /// Whether each [`Endpoint`] needs a key (report, probes), when set
    /// explicitly; else the report does when keys are configured.
    pub(crate) require: [Option<bool>; 2],
    /// Who sees details, when set explicitly; else `WhenAuthorized` with
    /// keys configured and `Always` without.
    pub(crate) details: Option<Visibility>,
    pub(crate) counter: Option<Arc<CallerCounter>>,
    /// Count passed-through requests that carry a known static key.
    pub(crate) count_passthrough: bool,
}

/// Who is asking, as the report and formats see it.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Caller {
    pub(crate) identity: Option<Arc<Identity>>,
    pub(crate) details: bool,
    pub(crate) requests_in_window: Option<u64>,
    pub(crate) window_ends: Option<Timestamp>,
}

impl Caller {
    /// The caller's identity, when a valid key came with the request.
    #[must_use]
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_deref()
    }

    /// Whether this caller sees details.
    #[must_use]
    pub fn details(&self) -> bool {
        self.details
    }

    /// Requests of this caller in the current counting window, when counted
    /// (`None` without counting, and for a caller the counter could not
    /// track: see [`MAX_TRACKED_CALLERS`]).
    #[must_use]
    pub fn requests_in_window(&self) -> Option<u64> {
        self.requests_in_window
    }

    /// When the counting window ends, when this caller's requests are counted.
    #[must_use]
    pub fn window_ends(&self) -> Option<Timestamp> {
        self.window_ends
    }

    /// A caller who sees everything: for in-process reports.
    pub(crate) fn full() -> Self {
        Caller {
            details: true,
            ..Caller::default()
        }
    }
}

/// Why access was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 401: no key, unknown key or a malformed header.
    Unauthenticated(&'static str),
    /// 403: a valid key without the permission.
    Forbidden(&'static str),
    /// 503: the key lookup failed (panicked or timed out).
    Unavailable(&'static str),
}

impl Access {
    fn index(endpoint: Endpoint) -> usize {
        match endpoint {
            Endpoint::Report => 0,
            Endpoint::Probes => 1,
        }
    }

    pub(crate) fn set_required(&mut self, endpoint: Endpoint, required: bool) {
        self.require[Self::index(endpoint)] = Some(required);
    }

    pub(crate) fn required(&self, endpoint: Endpoint) -> bool {
        self.require[Self::index(endpoint)]
            .unwrap_or(self.keys.is_some() && endpoint == Endpoint::Report)
    }

    /// Who sees details, as configured or by default.
    pub(crate) fn visibility(&self) -> Visibility {
        self.details.unwrap_or(if self.keys.is_some() {
            Visibility::WhenAuthorized
        } else {
            Visibility::Always
        })
    }

    /// Whether `endpoint` answers every caller: probes that need no key
    /// serve unusable, unknown and permission-less keys, and failed
    /// lookups, as anonymous. Any other endpoint, with keys configured, can
    /// refuse (401, 403, 503).
    pub(crate) fn open(&self, endpoint: Endpoint) -> bool {
        !self.required(endpoint) && endpoint == Endpoint::Probes
    }

    /// Whether a key could ever unlock details for this caller.
    pub(crate) fn details_need_key(&self) -> bool {
        self.keys.is_some() && self.visibility() == Visibility::WhenAuthorized
    }

    /// Whether a Bearer challenge goes with a 401.
    pub(crate) fn bearer(&self) -> bool {
        self.keys.as_ref().is_some_and(|k| k.bearer)
    }

    /// Decides who is asking and what they may see, before any work.
    /// `metrics`: the request is for the Prometheus metrics, which a key
    /// with the metrics permission may see even without the status or
    /// details permission.
    pub(crate) async fn authorize(
        &self,
        endpoint: Endpoint,
        metrics: bool,
        headers: &http::HeaderMap,
    ) -> Result<Caller, Refusal> {
        let required = self.required(endpoint);
        let identity = match &self.keys {
            None => None,
            Some(keys) => {
                // Open probes ignore credentials they cannot use (a proxy's
                // Basic auth, say): orchestrators must always get an answer.
                let lenient = self.open(endpoint);
                match credential(headers, keys.header.as_ref(), keys.bearer) {
                    Credential::None if required => {
                        return Err(Refusal::Unauthenticated("an API key is required"))
                    }
                    Credential::None => None,
                    Credential::Malformed(_) if lenient => None,
                    Credential::Malformed(why) => return Err(Refusal::Unauthenticated(why)),
                    Credential::Key(key) => match keys.identify(key).await {
                        Ok(Some(identity)) => Some(identity),
                        Ok(None) if lenient => None,
                        Ok(None) => {
                            return Err(Refusal::Unauthenticated("the API key is not valid"))
                        }
                        // Open probes answer whatever happens to the lookup.
                        Err(_) if lenient => None,
                        Err(why) => return Err(Refusal::Unavailable(why)),
                    },
                }
            }
        };
        let open = self.open(endpoint);
        // A scraper's key grants the metrics and nothing else.
        let scraper = |i: &Identity| metrics && i.permissions.metrics();
        let identity = match identity {
            Some(identity) if scraper(&identity) => Some(identity),
            // An open probe serves a key without the permission as it serves anyone.
            Some(identity) if !identity.permissions.status() && open => None,
            Some(identity) if !identity.permissions.status() => {
                return Err(Refusal::Forbidden("this API key may not see the status"))
            }
            identity => identity,
        };
        let details = match self.visibility() {
            Visibility::Never => false,
            Visibility::Always => true,
            Visibility::WhenAuthorized => identity
                .as_ref()
                .is_some_and(|i| i.permissions.details() || scraper(i)),
        };
        let mut caller = Caller {
            identity,
            details,
            requests_in_window: None,
            window_ends: None,
        };
        if let (Some(counter), Some(identity)) = (&self.counter, &caller.identity) {
            // An untracked caller (the counter's table is full of callers
            // of the current window) has neither a count nor a window end.
            let now = SystemTime::now();
            if let Some(count) = counter.count_at(&identity.name, now) {
                caller.requests_in_window = Some(count);
                caller.window_ends = Some(Timestamp(counter.current_window(now).1));
            }
        }
        Ok(caller)
    }

    /// Counts a passed-through request carrying a known static key.
    #[inline]
    pub(crate) fn count_passthrough(&self, headers: &http::HeaderMap) {
        let (Some(keys), Some(counter)) = (&self.keys, &self.counter) else {
            return;
        };
        if let Credential::Key(key) = credential(headers, keys.header.as_ref(), keys.bearer) {
            if let Some(identity) = keys.find_static(key.as_bytes()) {
                let _ = counter.count(&identity.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    fn access() -> Access {
        let mut a = Access {
            keys: Some(
                ApiKeys::new()
                    .key("good", Identity::new("ops"))
                    .key("lb", Identity::new("lb").permissions(Permissions::STATUS))
                    .key("none", Identity::new("x").permissions(Permissions::NONE))
                    .key(
                        "scrape",
                        Identity::new("prometheus").permissions(Permissions::METRICS),
                    ),
            ),
            details: Some(Visibility::WhenAuthorized),
            ..Access::default()
        };
        a.set_required(Endpoint::Report, true);
        a
    }

    #[tokio::test]
    async fn decisions() {
        let a = &access();
        let r = |h: http::HeaderMap| async move { a.authorize(Endpoint::Report, false, &h).await };
        assert!(matches!(
            r(headers(&[])).await,
            Err(Refusal::Unauthenticated(_))
        ));
        assert!(matches!(
            r(headers(&[("x-api-key", b"bad")])).await,
            Err(Refusal::Unauthenticated(_))
        ));
        assert!(matches!(
            r(headers(&[("x-api-key", b"none")])).await,
            Err(Refusal::Forbidden(_))
        ));
        let ok = r(headers(&[("x-api-key", b"good")])).await.unwrap();
        assert!(ok.details);
        let lb = r(headers(&[("authorization", b"Bearer lb")]))
            .await
            .unwrap();
        assert!(!lb.details);
        assert!(matches!(
            r(headers(&[("authorization", b"Basic Zm9vOmJhcg==")])).await,
            Err(Refusal::Unauthenticated(_))
        ));
        let anon = a
            .authorize(Endpoint::Probes, false, &headers(&[]))
            .await
            .unwrap();
        assert!(anon.identity.is_none() && !anon.details);
        // Open probes treat unusable credentials as anonymous.
        let basic = headers(&[("authorization", b"Basic Zm9vOmJhcg==")]);
        assert!(a
            .authorize(Endpoint::Probes, false, &basic)
            .await
            .unwrap()
            .identity
            .is_none());
        let unknown = headers(&[("x-api-key", b"nope")]);
        assert!(a
            .authorize(Endpoint::Probes, false, &unknown)
            .await
            .unwrap()
            .identity
            .is_none());
    }

    #[tokio::test]
    async fn a_metrics_key_grants_the_metrics_only() {
        let a = &access();
        let scrape = headers(&[("x-api-key", b"scrape")]);
        let caller = a.authorize(Endpoint::Report, true, &scrape).await.unwrap();
        assert_eq!(caller.identity.as_ref().unwrap().name, "prometheus");
        assert!(caller.details, "the metrics are made of details");
        // Anything else under the report's rules: a key without the status permission.
        assert_eq!(
            a.authorize(Endpoint::Report, false, &scrape)
                .await
                .unwrap_err(),
            Refusal::Forbidden("this API key may not see the status")
        );
        // Open probes: anonymous, as any key without the permission.
        let probe = a.authorize(Endpoint::Probes, false, &scrape).await.unwrap();
        assert!(probe.identity.is_none() && !probe.details);
        // The other keys are as they were on the metrics.
        let lb = headers(&[("x-api-key", b"lb")]);
        assert!(
            !a.authorize(Endpoint::Report, true, &lb)
                .await
                .unwrap()
                .details
        );
        let none = headers(&[("x-api-key", b"none")]);
        assert!(matches!(
            a.authorize(Endpoint::Report, true, &none).await,
            Err(Refusal::Forbidden(_))
        ));
        let bad = headers(&[("x-api-key", b"scrape2")]);
        assert!(matches!(
            a.authorize(Endpoint::Report, true, &bad).await,
            Err(Refusal::Unauthenticated(_))
        ));
        // Nobody sees details: not the scraper either.
        let mut never = access();
        never.details = Some(Visibility::Never);
        assert!(
            !never
                .authorize(Endpoint::Report, true, &scrape)
                .await
                .unwrap()
                .details
        );
        assert!(Permissions::ALL.metrics() && Permissions::METRICS.metrics());
        assert!(!Permissions::STATUS.metrics() && !Permissions::NONE.metrics());
        assert!(!Permissions::METRICS.status() && !Permissions::METRICS.details());
    }

    #[tokio::test]
    async fn failing_lookups_are_unavailable_not_panics() {
        let panicking = ApiKeys::new().lookup(|_key: String| async { panic!("db gone") });
        assert_eq!(
            panicking.identify("k").await,
            Err("the API key lookup failed")
        );
        let hanging = ApiKeys::new()
            .lookup(|_key: String| std::future::pending::<Option<Identity>>())
            .lookup_timeout(Duration::from_millis(20));
        assert_eq!(
            hanging.identify("k").await,
            Err("the API key lookup timed out")
        );
    }

    #[test]
    fn static_keys_compare_in_constant_time() {
        // The comparison goes through `subtle`: every key is compared, none short-circuits.
        let keys = ApiKeys::new()
            .key("abc", Identity::new("a"))
            .key("abd", Identity::new("b"));
        assert_eq!(keys.find_static(b"abd").unwrap().name, "b");
        assert_eq!(keys.find_static(b"abc").unwrap().name, "a");
        assert!(keys.find_static(b"ab").is_none());
        assert!(keys.find_static(b"abcd").is_none());
        assert!(keys.find_static(b"").is_none());
        assert!(bool::from(b"abc".as_slice().ct_eq(b"abc")));
    }

    #[test]
    fn static_keys_are_kept_only_as_digests() {
        let keys = ApiKeys::new()
            .key("abc", Identity::new("first"))
            .key("", Identity::new("empty"))
            .key("other", Identity::new("o"))
            .key("abc", Identity::new("second"));
        // SHA-256("abc"), the FIPS 180-2 test vector.
        let abc: KeyDigest = [
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
            0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
            0xf2, 0x00, 0x15, 0xad,
        ];
        assert_eq!(digest(b"abc"), abc);
        let stored: Vec<(KeyDigest, &str)> = keys
            .keys
            .iter()
            .map(|(d, i)| (*d, i.name.as_str()))
            .collect();
        // The empty key is ignored; a key given again takes the latest identity.
        assert_eq!(stored, [(digest(b"other"), "o"), (abc, "second")]);
        assert_eq!(keys.find_static(b"abc").unwrap().name, "second");
        // Neither the keys nor their digests are printed: only how many.
        let shown = format!("{keys:?}");
        assert!(shown.contains("keys: 2"), "{shown}");
        assert!(
            !shown.contains("abc") && !shown.contains("186, 120"),
            "{shown}"
        );
    }

    #[test]
    fn the_key_header_is_a_header_name() {
        let keys = ApiKeys::new()
            .key("k", Identity::new("ops"))
            .header(HeaderName::from_static("x-status-token"));
        let a = Access {
            keys: Some(keys),
            ..Access::default()
        };
        let read = |pairs: &[(&str, &[u8])]| {
            let h = headers(pairs);
            match credential(&h, a.keys.as_ref().unwrap().header.as_ref(), false) {
                Credential::Key(key) => Some(key.to_owned()),
                _ => None,
            }
        };
        assert_eq!(read(&[("X-Status-Token", b"k")]).as_deref(), Some("k"));
        assert_eq!(read(&[("x-api-key", b"k")]), None);
        // Parsed at run time, any spelling is the same header.
        let keys = ApiKeys::new().header(HeaderName::try_from("X-API-Key").unwrap());
        assert_eq!(keys.header, Some(HeaderName::from_static("x-api-key")));
        assert_eq!(ApiKeys::new().no_header().header, None);
    }

    #[tokio::test]
    async fn untracked_callers_have_no_count() {
        let mut a = access();
        let counter = Arc::new(CallerCounter::new(Duration::from_secs(400 * 24 * 3600)));
        a.counter = Some(Arc::clone(&counter));
        let key = headers(&[("x-api-key", b"good")]);
        let counted = a.authorize(Endpoint::Report, false, &key).await.unwrap();
        assert_eq!(counted.requests_in_window, Some(1));
        let ends = counted.window_ends.expect("a window end").0;
        assert_eq!(ends, counter.get("ops").1);
        // Full of callers whose window is running: "lb" is not tracked, and
        // is still served.
        for i in 0..MAX_TRACKED_CALLERS {
            let _ = counter.count(&format!("caller{i}"));
        }
        let lb = headers(&[("x-api-key", b"lb")]);
        let untracked = a.authorize(Endpoint::Report, false, &lb).await.unwrap();
        assert_eq!(untracked.identity.unwrap().name, "lb");
        assert_eq!(untracked.requests_in_window, None);
        assert_eq!(untracked.window_ends, None);
        // A tracked caller still is.
        let again = a.authorize(Endpoint::Report, false, &key).await.unwrap();
        assert_eq!(again.requests_in_window, Some(2));
    }

    #[test]
    fn auth_stands_alone() {
        // Access control depends on no other module of the crate but `report`.
        let other = concat!("crate::", "check");
        for (file, source) in [
            ("mod.rs", include_str!("mod.rs")),
            ("counter.rs", include_str!("counter.rs")),
            ("credential.rs", include_str!("credential.rs")),
        ] {
            assert!(!source.contains(other), "{file} uses {other}");
        }
    }

    #[test]
    fn lookups_are_futures_util_box_futures() {
        struct Table;
        impl KeyLookup for Table {
            fn lookup(&self, key: String) -> futures_util::future::BoxFuture<'_, Option<Identity>> {
                Box::pin(async move { (key == "t").then(|| Identity::new("table")) })
            }
        }
        let keys = ApiKeys::new().lookup(Table);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let found = rt.block_on(keys.identify("t")).unwrap().unwrap();
        assert_eq!(found.name, "table");
    }

    #[tokio::test]
    async fn lookups_are_cached() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = calls.clone();
        let keys = ApiKeys::new().lookup(move |key: String| {
            let c = c.clone();
            async move {
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                (key == "db-key").then(|| Identity::new("from-db"))
            }
        });
        for _ in 0..5 {
            assert_eq!(
                keys.identify("db-key").await.unwrap().unwrap().name,
                "from-db"
            );
            assert!(keys.identify("other").await.unwrap().is_none());
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Answers are cached by digest: the keys themselves are not kept.
        let cache = keys.cache.lock().unwrap();
        let mut cached: Vec<KeyDigest> = cache.keys().copied().collect();
        cached.sort_unstable();
        let mut expected = [digest(b"db-key"), digest(b"other")];
        expected.sort_unstable();
        assert_eq!(cached, expected);
    }
}
