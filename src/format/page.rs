//! The status page: what a browser asking for the status gets.
//!
//! One self-contained HTML document: its CSS and script inline, its
//! charts inline SVG, no request to anywhere but the page's own
//! `{status_path}/watch`. It runs under the strict
//! `Content-Security-Policy` of [`page_csp`], which allows exactly the
//! inline style and script by their hashes; nothing on the page has a
//! `style` attribute or an event-handler attribute. Every text is
//! escaped; colours always stand next to a word (or, in an uptime bar, a
//! cell's hidden text, shown on hover and focus).
//!
//! A caller without details gets the overall status only: the input then
//! has no [`PageDetails`]. With them: the components with their 24-hour
//! uptime bars (48 cells of 30 minutes, each the worst status of its
//! minutes), response time and traffic charts over the last hour (per
//! minute) and the last day (per 10 minutes), the SLOs, the recent
//! transitions.
//!
//! Live updates: the script listens to the `status` events of the watch
//! stream (`EventSource`, same origin, no credentials of its own). It
//! changes the overall status, each component's status when the event
//! carries components, adds the event's transitions to the list, and
//! says when it last heard ("updated 10:42:07 UTC") and whether the
//! stream is connected. An `EventSource` cannot send headers: a caller
//! who saw details through an API-key header sees them updated only when
//! the browser sends that header on the stream's request too (a proxy or
//! extension that adds it); otherwise the stream is anonymous, carries
//! the overall status only, and the page says that its component
//! statuses are as of its loading.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use http::header::{HeaderName, HeaderValue, CONTENT_SECURITY_POLICY, REFERRER_POLICY};
use http::StatusCode;
use sha2::{Digest as _, Sha256};

use super::badge::{escape_into, percent};
use super::Rendered;
use crate::report::{Notice, Status, Timestamp, Transition};

/// Media type of the page.
pub(crate) const MEDIA_TYPE: &str = "text/html; charset=utf-8";

/// What the status page shows, for one caller.
///
/// Fill the top fields from the report as this caller may see it (a
/// redacted report has no service, version, environment or notice), and
/// `details` only for a caller who may see details.
#[derive(Clone, Debug)]
pub(crate) struct PageInput {
    /// Name of the service.
    pub(crate) service: Option<String>,
    /// Version of the service.
    pub(crate) version: Option<String>,
    /// Deployment environment.
    pub(crate) environment: Option<String>,
    /// Overall status.
    pub(crate) status: Status,
    /// When the report was made.
    pub(crate) timestamp: Timestamp,
    /// The service is draining before shutdown.
    pub(crate) draining: bool,
    /// The maintenance notice in force.
    pub(crate) notice: Option<Notice>,
    /// Path of the status endpoint (`/status`): the page listens to
    /// `{status_path}/watch`. A path that does not start with a single
    /// `/` (so could leave the origin) gives a page without live updates.
    pub(crate) status_path: String,
    /// What only a caller with details sees.
    pub(crate) details: Option<PageDetails>,
}

/// The part of the page for callers with details.
///
/// The per-slot vectors (`overall`, `traffic`, each component's `slots`)
/// run parallel to `slot_starts`; a shorter one has no data for the
/// remaining slots.
#[derive(Clone, Debug, Default)]
pub(crate) struct PageDetails {
    /// Start of each history slot (one per minute), oldest first; the
    /// last one is "now" for the bars and charts.
    pub(crate) slot_starts: Vec<Timestamp>,
    /// The overall status in each slot (`None`: no data).
    pub(crate) overall: Vec<Option<Status>>,
    /// Overall uptime over the last hour, in percent.
    pub(crate) uptime_1h: Option<f64>,
    /// Overall uptime over the last 24 hours, in percent.
    pub(crate) uptime_24h: Option<f64>,
    /// The wrapped service's traffic in each slot.
    pub(crate) traffic: Vec<SlotTraffic>,
    /// The components, in the order shown.
    pub(crate) components: Vec<PageComponent>,
    /// Recent transitions, in any order: the newest
    /// [`MAX_TRANSITIONS`] are shown, newest first.
    pub(crate) transitions: Vec<Transition>,
    /// The service level objectives.
    pub(crate) slos: Vec<PageSlo>,
}

/// The wrapped service's traffic in one slot.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct SlotTraffic {
    /// Requests.
    pub(crate) requests: u64,
    /// Of which errors.
    pub(crate) errors: u64,
    /// Median response time, in milliseconds (`None` without requests).
    pub(crate) p50_ms: Option<f64>,
    /// 99th percentile response time, in milliseconds.
    pub(crate) p99_ms: Option<f64>,
}

/// One component on the page.
#[derive(Clone, Debug)]
pub(crate) struct PageComponent {
    /// Name.
    pub(crate) name: String,
    /// Current status.
    pub(crate) status: Status,
    /// Whether a failure takes the service down.
    pub(crate) critical: bool,
    /// Why it is not healthy.
    pub(crate) error: Option<String>,
    /// Failing components it depends on.
    pub(crate) blocked_by: Vec<String>,
    /// Uptime over the last hour, in percent.
    pub(crate) uptime_1h: Option<f64>,
    /// Uptime over the last 24 hours, in percent.
    pub(crate) uptime_24h: Option<f64>,
    /// Its worst status in each slot (`None`: no data).
    pub(crate) slots: Vec<Option<Status>>,
}

/// One service level objective on the page.
#[derive(Clone, Debug)]
pub(crate) struct PageSlo {
    /// What it measures (`availability`, `latency under 300 ms`).
    pub(crate) name: String,
    /// The target share of good requests (`0.999`).
    pub(crate) objective: f64,
    /// The share of good requests over the history span.
    pub(crate) achieved: Option<f64>,
    /// The share of the error budget left over the history span: 1
    /// untouched, 0 spent, below 0 overspent.
    pub(crate) budget_left: Option<f64>,
    /// Burn rates over several windows.
    pub(crate) burn_rates: Vec<BurnRate>,
    /// What the objective says about health now (`ok` unless burning).
    pub(crate) status: Status,
}

/// The error budget's burn rate over one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct BurnRate {
    /// The window (5 minutes, 1 hour, ...).
    pub(crate) window: Duration,
    /// How fast the budget burns: 1 spends it exactly over the SLO period.
    pub(crate) rate: Option<f64>,
    /// The rate from which it alerts (`14.4`), if any.
    pub(crate) threshold: Option<f64>,
}

/// At most this many transitions are listed.
pub(crate) const MAX_TRANSITIONS: usize = 20;
/// Errors in the transition list are cut to this many characters.
const TRANSITION_ERROR_CHARS: usize = 200;
/// An uptime bar: this many cells ...
const BAR_CELLS: i64 = 48;
/// ... of this many minutes.
const BAR_MINUTES: i64 = 30;
/// The day charts: this many points ...
const DAY_POINTS: i64 = 144;
/// ... of this many minutes.
const DAY_MINUTES: i64 = 10;
/// The hour charts: one point a minute.
const HOUR_POINTS: i64 = 60;

/// The page's style sheet, inline (allowed by its hash).
const STYLE: &str = "\
:root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--mu:#59636e;--bd:#d1d9e0;\
--ok:#1a7f37;--deg:#bf8700;--down:#d1242f;--mnt:#0969da;--none:#c8d1da;\
--c1:#0969da;--c2:#bc4c00;--err:#d1242f}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--mu:#9198a1;\
--bd:#3d444d;--ok:#3fb950;--deg:#d29922;--down:#f85149;--mnt:#4493f8;--none:#3d444d;\
--c1:#4493f8;--c2:#f0883e;--err:#ff7b72}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:60rem;padding:1rem;background:var(--bg);color:var(--fg);\
font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}
h1{font-size:1.5rem;margin:0}h2{font-size:1.2rem;margin:1.75rem 0 .5rem}\
h3{font-size:1rem;margin:0;overflow-wrap:anywhere}
p{margin:.25rem 0}
.mu,.id,.meta,.up,.axis,figcaption,.legend{color:var(--mu);font-size:.875rem}
.ov{font-size:1.25rem;margin:.75rem 0;padding:.6rem 1rem;border:1px solid var(--bd);\
border-left:.5rem solid var(--c);border-radius:.5rem}
.s-ok{--c:var(--ok)}.s-degraded{--c:var(--deg)}.s-down{--c:var(--down)}\
.s-maintenance{--c:var(--mnt)}.s-none{--c:var(--none)}
.st{white-space:nowrap}
.st::before,.live::before{content:\"\";display:inline-block;width:.65em;height:.65em;\
border-radius:50%;background:var(--c);margin-right:.35em}
.live.on{--c:var(--ok)}.live.off{--c:var(--mu)}
.notice{border:1px solid var(--mnt);border-radius:.5rem;padding:.5rem 1rem;margin:1rem 0}
.notice h2{margin:0}
.comps,.tr,.burn{list-style:none;padding:0;margin:0}
.comp{padding:.6rem 0;border-top:1px solid var(--bd)}
.row{display:flex;flex-wrap:wrap;gap:0 1rem;align-items:baseline;justify-content:space-between}
.tag{font-weight:normal;font-size:.75rem;border:1px solid var(--bd);border-radius:1em;padding:0 .5em}
.err{color:var(--err);overflow-wrap:anywhere}
.bar{display:flex;gap:1px;height:1.75rem;list-style:none;padding:0;margin:.35rem 0 0}
.bar>li{flex:1;min-width:2px;background:var(--c,var(--ok));border-radius:1px;position:relative}
.bar>li:hover,.bar>li:focus{outline:2px solid var(--fg);outline-offset:1px;z-index:1}
.bar i{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap;\
font-style:normal}
.bar>li:hover i,.bar>li:focus i{width:auto;height:auto;overflow:visible;clip-path:none;\
bottom:calc(100% + 6px);left:50%;transform:translateX(-50%);background:var(--fg);color:var(--bg);\
font-size:.8rem;padding:.1rem .45rem;border-radius:.25rem}
.bar>li:nth-child(-n+8) i{left:0;transform:none}
.bar>li:nth-last-child(-n+8) i{left:auto;right:0;transform:none}
.axis{display:flex;justify-content:space-between;margin:0}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(16rem,1fr));gap:1rem}
figure{margin:0}
.key::before{content:\"\";display:inline-block;width:1em;height:3px;vertical-align:middle;\
margin:0 .3em 0 .6em;background:var(--k)}
.k1,.l1{--k:var(--c1)}.k2,.l2{--k:var(--c2)}.k3,.l3{--k:var(--err)}
.ymax{display:block;font-size:.75rem;color:var(--mu)}
svg{display:block;width:100%;height:8rem;border:1px solid var(--bd);border-radius:.25rem}
path{fill:none;stroke:var(--k);stroke-width:2;vector-effect:non-scaling-stroke;\
stroke-linejoin:round;stroke-linecap:round}
.g{stroke:var(--bd);stroke-width:1}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid var(--bd)}
.hot{color:var(--err);font-weight:600}
.tr li{padding:.3rem 0;border-top:1px solid var(--bd)}
footer{margin-top:2rem}
@media (max-width:30rem){body{padding:.75rem}.ov{font-size:1.1rem}h2{margin-top:1.25rem}}";

/// The page's script, inline (allowed by its hash): live updates from the
/// watch stream. No `//` in it, nor any URL: it reads the stream's path
/// from the body's `data-watch`.
const SCRIPT: &str = "\
(function(){
var d=document,b=d.body,path=b.getAttribute('data-watch'),live=d.getElementById('live'),
ov=d.getElementById('overall'),upd=d.getElementById('updated'),stale=d.getElementById('stale'),
tl=d.getElementById('transitions'),none=d.getElementById('no-tr'),
prefix=d.title.replace(/\\w+$/,''),
H={ok:'All systems operational',degraded:'Degraded performance',down:'Service down',\
maintenance:'Under maintenance'};
function state(text,on){live.textContent=text;live.className='live '+(on?'on':'off');}
function mark(el,s){el.className=el.className.replace(/\\s*\\bs-\\w+/g,'')+' s-'+s;}
function word(s){var e=d.createElement('span');e.className='st s-'+(H[s]?s:'none');
e.textContent=s||'none';return e;}
function onStatus(e){
var m;try{m=JSON.parse(e.data);}catch(x){return;}
var s=m.status;if(!H[s])return;
state('live',true);
mark(ov,s);ov.querySelector('strong').textContent=s;ov.querySelector('.h').textContent=H[s];
d.title=prefix+s;
var cs=m.components||{},seen=false;
d.querySelectorAll('[data-c]').forEach(function(el){
var c=cs[el.getAttribute('data-c')];if(!H[c])return;
seen=true;var st=el.querySelector('.st');mark(st,c);st.textContent=c;});
if(stale)stale.hidden=seen;
if(tl&&m.transitions)m.transitions.forEach(function(t){
var li=d.createElement('li'),tm=d.createElement('time'),who=d.createElement('b');
tm.dateTime=t.at;tm.textContent=String(t.at).slice(0,19).replace('T',' ');
who.textContent=t.component||'overall';
li.append(tm,' ',who,': ',word(t.from),' \\u2192 ',word(t.to));
if(t.error){var er=d.createElement('span');er.className='err';er.textContent=t.error;li.append(' ',er);}
tl.insertBefore(li,tl.firstChild);if(none)none.hidden=true;});
var now=new Date().toISOString();
upd.dateTime=now;upd.textContent='updated '+now.slice(11,19)+' UTC';}
if(!path||!window.EventSource)return;
var es,timer;
function connect(){
state('connecting',false);
es=new EventSource(path);
es.onopen=function(){state('live',true);};
es.onerror=function(){state('disconnected',false);
if(es.readyState===2){es.close();clearTimeout(timer);timer=setTimeout(connect,15000);}};
es.addEventListener('status',onStatus);}
connect();
})();";

/// `base64(sha256(text))`, as a CSP source expression hashes it.
fn hash(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

/// The policy for a page whose only inline style and script are these.
fn csp_for(style: &str, script: &str) -> String {
    format!(
        "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; \
         connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'",
        hash(style),
        hash(script)
    )
}

/// The `Content-Security-Policy` to send with every page: nothing but
/// the page's own inline style and script (by their SHA-256), the watch
/// stream on the same origin, and the empty `data:` icon (which keeps
/// browsers from asking for `/favicon.ico`). Computed once.
pub(crate) fn page_csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| csp_for(STYLE, SCRIPT))
}

/// The page as a response: HTML with its `Content-Security-Policy`,
/// `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and
/// `Cache-Control: no-store`. The endpoint adds `Vary` as its negotiation
/// needs.
pub(crate) fn page_response(code: StatusCode, input: &PageInput) -> Rendered {
    let mut rendered = Rendered::new(code, MEDIA_TYPE, render_page(input))
        .header(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        )
        .header(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(csp) = HeaderValue::from_str(page_csp()) {
        rendered.headers.insert(CONTENT_SECURITY_POLICY, csp);
    }
    rendered
}

/// What the page says about an overall status.
fn headline(status: Status) -> &'static str {
    match status {
        Status::Ok => "All systems operational",
        Status::Degraded => "Degraded performance",
        Status::Down => "Service down",
        Status::Maintenance => "Under maintenance",
    }
}

/// Writes formatted text; writing to a `String` cannot fail.
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

/// The page for `input`.
pub(crate) fn render_page(input: &PageInput) -> String {
    let mut out = String::with_capacity(if input.details.is_some() {
        48 * 1024
    } else {
        8 * 1024
    });
    let word = input.status.as_str();
    out.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"/>\n\
         <meta name=\"color-scheme\" content=\"light dark\"/>\n\
         <meta name=\"referrer\" content=\"no-referrer\"/>\n\
         <link rel=\"icon\" href=\"data:,\"/>\n<title>",
    );
    escape_into(
        &mut out,
        input.service.as_deref().unwrap_or("Service status"),
    );
    w!(
        out,
        ": {word}</title>\n<style>{STYLE}</style>\n</head>\n<body"
    );
    if let Some(watch) = watch_path(&input.status_path) {
        out.push_str(" data-watch=\"");
        escape_into(&mut out, &watch);
        out.push('"');
    }
    out.push_str(">\n<header>\n<h1>");
    escape_into(
        &mut out,
        input.service.as_deref().unwrap_or("Service status"),
    );
    out.push_str("</h1>\n");
    let identity: Vec<String> = [
        input.version.as_deref().map(|v| format!("version {v}")),
        input.environment.clone().filter(|e| !e.is_empty()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !identity.is_empty() {
        out.push_str("<p class=\"id\">");
        escape_into(&mut out, &identity.join(" · "));
        out.push_str("</p>\n");
    }
    w!(
        out,
        "<p id=\"overall\" class=\"ov s-{word}\" aria-live=\"polite\"><strong class=\"st\">{word}</strong> \
         <span class=\"h\">{}</span></p>\n",
        headline(input.status)
    );
    w!(
        out,
        "<p class=\"meta\"><span id=\"live\" class=\"live off\">live updates off</span> · \
         <time id=\"updated\" datetime=\"{}\">as of {} UTC</time></p>\n</header>\n<main>\n",
        input.timestamp,
        datetime(input.timestamp)
    );
    if let Some(notice) = &input.notice {
        out.push_str(
            "<section class=\"notice\" aria-labelledby=\"h-notice\">\
             <h2 id=\"h-notice\">Maintenance</h2>\n<p>",
        );
        escape_into(&mut out, &notice.message);
        out.push_str("</p>\n");
        if let Some(end) = notice.estimated_completion {
            w!(
                out,
                "<p>Expected to end <time datetime=\"{end}\">{} UTC</time>.</p>\n",
                datetime(end)
            );
        }
        out.push_str("</section>\n");
    }
    if input.draining {
        out.push_str(
            "<p class=\"notice\">This instance is draining: it is shutting down \
             and takes no new work.</p>\n",
        );
    }
    match &input.details {
        None => out.push_str("<p class=\"mu\">Details are shown to authorized callers.</p>\n"),
        Some(details) => render_details(&mut out, details),
    }
    w!(
        out,
        "</main>\n<footer><p class=\"mu\">Times are UTC.</p></footer>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    );
    out
}

/// `{status_path}/watch`, when it stays on the page's origin.
fn watch_path(status_path: &str) -> Option<String> {
    let base = status_path.trim_end_matches('/');
    let same_origin = status_path.starts_with('/')
        && !status_path.starts_with("//")
        && !status_path.contains('\\')
        && !status_path.chars().any(char::is_control);
    same_origin.then(|| format!("{base}/watch"))
}

/// The history's slots as minutes since the epoch, and the last one.
struct Timeline {
    minutes: Vec<i64>,
    end: i64,
}

impl Timeline {
    fn new(starts: &[Timestamp]) -> Option<Self> {
        let minutes: Vec<i64> = starts.iter().map(|t| minute(*t)).collect();
        let end = *minutes.iter().max()?;
        Some(Self { minutes, end })
    }

    /// For `count` periods of `length` minutes aligned on multiples of
    /// `length`, the last one holding the last slot: the first period's
    /// start, and each slot's period (`None` when outside).
    fn periods(&self, count: i64, length: i64) -> (i64, Vec<Option<usize>>) {
        let first = (self.end.div_euclid(length) - (count - 1)) * length;
        let of = self
            .minutes
            .iter()
            .map(|&m| {
                let index = (m - first).div_euclid(length);
                (0..count)
                    .contains(&index)
                    .then(|| usize::try_from(index).unwrap_or(0))
            })
            .collect();
        (first, of)
    }
}

/// Minutes since the epoch (negative before it).
fn minute(t: Timestamp) -> i64 {
    let seconds = match t.0.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    seconds.div_euclid(60)
}

/// `HH:MM` of a minute since the epoch.
fn clock(minute: i64) -> String {
    let of_day = minute.rem_euclid(24 * 60);
    format!("{:02}:{:02}", of_day / 60, of_day % 60)
}

/// `YYYY-MM-DD HH:MM:SS`.
fn datetime(t: Timestamp) -> String {
    let text = humantime::format_rfc3339_seconds(t.0).to_string();
    text.get(..19).unwrap_or(&text).replacen('T', " ", 1)
}

fn render_details(out: &mut String, details: &PageDetails) {
    let timeline = Timeline::new(&details.slot_starts);
    // Components, the overall status first, with their bars.
    w!(
        out,
        "<section aria-labelledby=\"h-c\"><h2 id=\"h-c\">{}</h2>\n",
        if details.components.is_empty() {
            "Uptime"
        } else {
            "Components"
        }
    );
    out.push_str(
        "<p class=\"legend\">Last 24 hours, 30 minutes a cell: <span class=\"st s-ok\">ok</span> \
         <span class=\"st s-degraded\">degraded</span> <span class=\"st s-down\">down</span> \
         <span class=\"st s-maintenance\">maintenance</span> <span class=\"st s-none\">no data</span>\
         </p>\n<ul class=\"comps\">\n<li class=\"comp\"><div class=\"row\"><h3>Overall</h3>",
    );
    uptime(out, details.uptime_1h, details.uptime_24h);
    out.push_str("</div>\n");
    let bars = timeline.as_ref().map(|t| t.periods(BAR_CELLS, BAR_MINUTES));
    if let Some((first, of)) = &bars {
        bar(out, "Overall", *first, of, &details.overall);
        w!(
            out,
            "<p class=\"axis\"><span>{}</span><span>now</span></p>\n",
            clock(*first)
        );
    } else {
        out.push_str("<p class=\"mu\">No history yet.</p>\n");
    }
    out.push_str("</li>\n");
    for component in &details.components {
        out.push_str("<li class=\"comp\" data-c=\"");
        escape_into(out, &component.name);
        out.push_str("\"><div class=\"row\"><h3>");
        escape_into(out, &component.name);
        if component.critical {
            out.push_str(" <span class=\"tag\">critical</span>");
        }
        let word = component.status.as_str();
        w!(
            out,
            "</h3><span class=\"st s-{word}\">{word}</span></div>\n"
        );
        if let Some(error) = &component.error {
            out.push_str("<p class=\"err\">");
            escape_into(out, error);
            out.push_str("</p>\n");
        }
        if !component.blocked_by.is_empty() {
            out.push_str("<p class=\"mu\">Blocked by ");
            escape_into(out, &component.blocked_by.join(", "));
            out.push_str("</p>\n");
        }
        out.push_str("<p class=\"up\">");
        uptime(out, component.uptime_1h, component.uptime_24h);
        out.push_str("</p>\n");
        if let Some((first, of)) = &bars {
            bar(out, &component.name, *first, of, &component.slots);
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ul>\n");
    if !details.components.is_empty() {
        out.push_str(
            "<p id=\"stale\" class=\"mu\" hidden=\"\">The live updates carry the overall status \
             only: component statuses are as of this page's loading. Reload for current ones.</p>\n",
        );
    }
    out.push_str("</section>\n");

    if let Some(timeline) = &timeline {
        charts(out, timeline, &details.traffic);
    }
    if !details.slos.is_empty() {
        slos(out, &details.slos);
    }
    transitions(out, &details.transitions);
}

/// "uptime 99.9% (1 h) · 99.5% (24 h)".
fn uptime(out: &mut String, hour: Option<f64>, day: Option<f64>) {
    let say = |p: Option<f64>| {
        p.filter(|p| !p.is_nan())
            .map_or("no data".to_owned(), percent)
    };
    w!(
        out,
        "<span class=\"up\">uptime {} (1 h) · {} (24 h)</span>",
        say(hour),
        say(day)
    );
}

/// An uptime bar: one focusable cell per period, coloured by the worst
/// status of its slots, its time and status in text.
fn bar(
    out: &mut String,
    name: &str,
    first: i64,
    of: &[Option<usize>],
    statuses: &[Option<Status>],
) {
    // Minutes in each status (ok, degraded, down, maintenance), per cell.
    let mut cells = vec![[0u32; 4]; usize::try_from(BAR_CELLS).unwrap_or(0)];
    for (cell, status) in of.iter().zip(statuses) {
        if let (Some(cell), Some(status)) = (cell, status) {
            cells[*cell][rank(*status)] += 1;
        }
    }
    out.push_str("<ol class=\"bar\" aria-label=\"");
    escape_into(out, name);
    out.push_str(", last 24 hours\">");
    let mut start = first;
    for counts in &cells {
        let worst = (0..4).rev().find(|&i| counts[i] > 0).map(|i| STATUSES[i]);
        let label = worst.map_or("no data", Status::as_str);
        match worst {
            Some(Status::Ok) => out.push_str("<li tabindex=\"0\">"),
            _ => w!(
                out,
                "<li tabindex=\"0\" class=\"s-{}\">",
                worst.map_or("none", Status::as_str)
            ),
        }
        // `i`, the shortest element, holds the cell's words: a bar is most
        // of the page's bytes.
        w!(out, "<i>{} {label}", clock(start));
        // A cell not all of one status says how long each failing one lasted.
        let mixed = counts.iter().filter(|c| **c > 0).count() > 1;
        if mixed && worst != Some(Status::Ok) {
            let parts: Vec<String> = STATUSES
                .iter()
                .zip(counts.iter().copied())
                .skip(1)
                .rev()
                .filter(|(_, minutes)| *minutes > 0)
                .map(|(status, minutes)| format!("{minutes} min {status}"))
                .collect();
            w!(out, " ({})", parts.join(", "));
        }
        out.push_str("</i></li>");
        start += BAR_MINUTES;
    }
    out.push_str("</ol>\n");
}

/// The statuses, from best to worst.
const STATUSES: [Status; 4] = [
    Status::Ok,
    Status::Degraded,
    Status::Down,
    Status::Maintenance,
];

/// A status's place in [`STATUSES`].
fn rank(status: Status) -> usize {
    match status {
        Status::Ok => 0,
        Status::Degraded => 1,
        Status::Down => 2,
        Status::Maintenance => 3,
    }
}

/// One point of a chart: the traffic of the slots of one period.
#[derive(Clone, Copy, Default)]
struct Point {
    /// Slots with data.
    slots: u32,
    requests: u64,
    errors: u64,
    /// Sum of p50 weighted by requests, and the weights.
    p50_sum: f64,
    p50_weight: f64,
    p99: Option<f64>,
}

impl Point {
    fn add(&mut self, slot: &SlotTraffic) {
        self.slots += 1;
        self.requests += slot.requests;
        self.errors += slot.errors;
        #[allow(clippy::cast_precision_loss)]
        let weight = slot.requests.max(1) as f64;
        if let Some(p50) = slot.p50_ms.filter(|v| v.is_finite()) {
            self.p50_sum += p50 * weight;
            self.p50_weight += weight;
        }
        if let Some(p99) = slot.p99_ms.filter(|v| v.is_finite()) {
            self.p99 = Some(self.p99.map_or(p99, |m: f64| m.max(p99)));
        }
    }

    fn p50(&self) -> Option<f64> {
        (self.p50_weight > 0.0).then(|| self.p50_sum / self.p50_weight)
    }

    /// Requests and errors a minute.
    #[allow(clippy::cast_precision_loss)]
    fn rates(&self) -> Option<(f64, f64)> {
        (self.slots > 0).then(|| {
            let minutes = f64::from(self.slots);
            (self.requests as f64 / minutes, self.errors as f64 / minutes)
        })
    }
}

/// The response time and traffic charts, last hour and last day.
fn charts(out: &mut String, timeline: &Timeline, traffic: &[SlotTraffic]) {
    let windows = [
        ("Last hour", "per minute", HOUR_POINTS, 1),
        ("Last 24 hours", "per 10 minutes", DAY_POINTS, DAY_MINUTES),
    ];
    let series: Vec<(i64, Vec<Point>)> = windows
        .iter()
        .map(|&(_, _, count, length)| {
            let (first, of) = timeline.periods(count, length);
            let mut points = vec![Point::default(); usize::try_from(count).unwrap_or(0)];
            for (period, slot) in of.iter().zip(traffic) {
                if let Some(period) = period {
                    points[*period].add(slot);
                }
            }
            (first, points)
        })
        .collect();

    out.push_str(
        "<section aria-labelledby=\"h-l\"><h2 id=\"h-l\">Response time</h2><div class=\"charts\">\n",
    );
    for ((caption, per, _, length), (first, points)) in windows.iter().zip(&series) {
        let p50: Vec<Option<f64>> = points.iter().map(Point::p50).collect();
        let p99: Vec<Option<f64>> = points.iter().map(|p| p.p99).collect();
        let summary = match peak(&p99) {
            None => format!("{caption}: no requests"),
            Some((at, value)) => format!(
                "{caption}: p99 peaked at {} ms at {} UTC; latest p50 {} ms, p99 {} ms",
                number(value),
                clock(first + offset(at) * length),
                latest(&p50),
                latest(&p99),
            ),
        };
        let keys = [("k1", "p50"), ("k2", "p99")];
        let lines = [("l1", &p50[..]), ("l2", &p99[..])];
        chart(
            out,
            &format!("{caption}, {per}"),
            &keys,
            &lines,
            "ms",
            *first,
            &summary,
        );
    }
    out.push_str("</div></section>\n");

    out.push_str(
        "<section aria-labelledby=\"h-t\"><h2 id=\"h-t\">Traffic</h2><div class=\"charts\">\n",
    );
    for ((caption, per, _, length), (first, points)) in windows.iter().zip(&series) {
        let rates: Vec<Option<(f64, f64)>> = points.iter().map(Point::rates).collect();
        let requests: Vec<Option<f64>> = rates.iter().map(|r| r.map(|r| r.0)).collect();
        let errors: Vec<Option<f64>> = rates.iter().map(|r| r.map(|r| r.1)).collect();
        let total: u64 = points.iter().map(|p| p.requests).sum();
        let failed: u64 = points.iter().map(|p| p.errors).sum();
        let summary = match peak(&requests) {
            Some((at, value)) if total > 0 => {
                #[allow(clippy::cast_precision_loss)]
                let share = failed as f64 / total as f64 * 100.0;
                format!(
                    "{caption}: {total} requests, {failed} errors ({}%); peak {} requests a minute at {} UTC",
                    number(share),
                    number(value),
                    clock(first + offset(at) * length),
                )
            }
            _ => format!("{caption}: no requests"),
        };
        let keys = [("k1", "requests"), ("k3", "errors")];
        let lines = [("l1", &requests[..]), ("l3", &errors[..])];
        chart(
            out,
            &format!("{caption}, {per}"),
            &keys,
            &lines,
            "requests/min",
            *first,
            &summary,
        );
    }
    out.push_str("</div></section>\n");
}

/// A point's index as minutes' multiplier.
fn offset(index: usize) -> i64 {
    i64::try_from(index).unwrap_or(0)
}

/// The highest value and where.
fn peak(values: &[Option<f64>]) -> Option<(usize, f64)> {
    values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .fold(None, |best, (i, v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((i, v)),
        })
}

/// The last value, as text.
fn latest(values: &[Option<f64>]) -> String {
    values
        .iter()
        .rev()
        .find_map(|v| *v)
        .map_or("none".to_owned(), number)
}

/// A figure for people: two decimals below 1, one below 10, none above.
fn number(value: f64) -> String {
    if value < 1.0 {
        format!("{value:.2}")
    } else if value < 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// A burn rate: two decimals below 1, else at most one (`14.4`, `16`).
fn multiple(value: f64) -> String {
    if value < 1.0 {
        return format!("{value:.2}");
    }
    let text = format!("{value:.1}");
    text.strip_suffix(".0")
        .map_or_else(|| text.clone(), str::to_owned)
}

/// The smallest of 1, 2, 2.5, 5 times a power of ten at least `max`.
fn nice_top(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|top| *top >= max)
        .unwrap_or(10.0 * power)
}

/// A line chart: the SVG in a figure with its caption, legend, scale and
/// time axis. x is the point's index, y from 0 (top) to 100 (bottom).
fn chart(
    out: &mut String,
    caption: &str,
    keys: &[(&str, &str)],
    lines: &[(&str, &[Option<f64>])],
    unit: &str,
    first: i64,
    summary: &str,
) {
    let count = lines.first().map_or(0, |(_, v)| v.len());
    let right = count.saturating_sub(1).max(1);
    let max = lines
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(0.0f64, |m, v| m.max(*v));
    let top = nice_top(max);
    out.push_str("<figure><figcaption>");
    escape_into(out, caption);
    for (class, label) in keys {
        w!(out, " <span class=\"key {class}\">{label}</span>");
    }
    w!(
        out,
        "</figcaption>\n<span class=\"ymax\">{} {unit}</span><svg viewBox=\"0 -3 {right} 106\" \
         preserveAspectRatio=\"none\" role=\"img\"><title>",
        number(top)
    );
    escape_into(out, summary);
    w!(
        out,
        "</title><path class=\"g\" d=\"M0 0H{right}M0 50H{right}M0 100H{right}\"/>"
    );
    for (class, values) in lines {
        w!(out, "<path class=\"{class}\" d=\"");
        path(out, values, top);
        out.push_str("\"/>");
    }
    w!(
        out,
        "</svg>\n<p class=\"axis\"><span>{}</span><span>now</span></p></figure>\n",
        clock(first)
    );
}

/// Path data of a line through `values` (gaps where `None`); a point
/// alone is drawn as a dot.
fn path(out: &mut String, values: &[Option<f64>], top: f64) {
    let y = |v: f64| {
        // At most 100: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let scaled = (v / top * 100.0).round().clamp(0.0, 100.0) as i64;
        100 - scaled
    };
    let mut i = 0;
    while i < values.len() {
        let Some(v) = values[i] else {
            i += 1;
            continue;
        };
        w!(out, "M{i} {}", y(v));
        let mut j = i + 1;
        while let Some(Some(v)) = values.get(j) {
            w!(out, " {j} {}", y(*v));
            j += 1;
        }
        if j == i + 1 {
            out.push_str("h0");
        }
        i = j;
    }
}

/// The objectives' table.
fn slos(out: &mut String, slos: &[PageSlo]) {
    out.push_str(
        "<section aria-labelledby=\"h-s\"><h2 id=\"h-s\">Objectives</h2><div class=\"scroll\">\
         <table>\n<thead><tr><th scope=\"col\">Objective</th><th scope=\"col\">Status</th>\
         <th scope=\"col\">Target</th><th scope=\"col\">Achieved</th>\
         <th scope=\"col\">Error budget left</th><th scope=\"col\">Burn rate</th></tr></thead>\n<tbody>\n",
    );
    for slo in slos {
        out.push_str("<tr><th scope=\"row\">");
        escape_into(out, &slo.name);
        let word = slo.status.as_str();
        w!(
            out,
            "</th><td><span class=\"st s-{word}\">{word}</span></td><td>{}</td><td>{}</td><td>",
            exact_percent(slo.objective),
            slo.achieved
                .filter(|a| !a.is_nan())
                .map_or("no data".to_owned(), |a| percent(a * 100.0)),
        );
        match slo.budget_left.filter(|b| !b.is_nan()) {
            None => out.push_str("no data"),
            Some(left) => {
                w!(
                    out,
                    "<meter min=\"0\" max=\"1\" low=\"0.25\" high=\"0.5\" optimum=\"1\" \
                     value=\"{:.3}\" aria-hidden=\"true\"></meter> ",
                    left.clamp(0.0, 1.0)
                );
                let text = format!("{:.0}%", left * 100.0);
                if left < 0.0 {
                    w!(out, "<span class=\"hot\">{text} (overspent)</span>");
                } else {
                    out.push_str(&text);
                }
            }
        }
        out.push_str("</td><td><ul class=\"burn\">");
        for burn in &slo.burn_rates {
            let window = humantime::format_duration(Duration::from_secs(burn.window.as_secs()));
            let rate = burn.rate.filter(|r| !r.is_nan());
            let hot = matches!((rate, burn.threshold), (Some(r), Some(t)) if r >= t);
            let text = format!(
                "{window}: {}",
                rate.map_or("no data".to_owned(), |r| format!("{}×", multiple(r)))
            );
            match (hot, burn.threshold) {
                (true, Some(t)) => {
                    w!(
                        out,
                        "<li class=\"hot\">{text} (alert from {}×)</li>",
                        multiple(t)
                    );
                }
                _ => {
                    w!(out, "<li>{text}</li>");
                }
            }
        }
        out.push_str("</ul></td></tr>\n");
    }
    out.push_str("</tbody></table></div></section>\n");
}

/// A ratio as a percentage, as precise as written: 0.999 is `99.9%`.
fn exact_percent(ratio: f64) -> String {
    let text = format!("{:.4}", ratio * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// The recent transitions, newest first.
fn transitions(out: &mut String, transitions: &[Transition]) {
    // Newest first; among equal times, the later in the (oldest first) log.
    let mut recent: Vec<&Transition> = transitions.iter().rev().collect();
    recent.sort_by_key(|t| std::cmp::Reverse(t.at));
    recent.truncate(MAX_TRANSITIONS);
    out.push_str("<section aria-labelledby=\"h-r\"><h2 id=\"h-r\">Recent changes</h2>\n");
    if recent.is_empty() {
        out.push_str("<p id=\"no-tr\" class=\"mu\">None recorded.</p>\n");
    }
    out.push_str("<ol id=\"transitions\" class=\"tr\">\n");
    for t in recent {
        w!(
            out,
            "<li><time datetime=\"{}\">{}</time> <b>",
            t.at,
            datetime(t.at)
        );
        escape_into(out, t.component.as_deref().unwrap_or("overall"));
        let from = t.from.map_or("none", Status::as_str);
        let to = t.to.as_str();
        w!(
            out,
            "</b>: <span class=\"st s-{from}\">{from}</span> → <span class=\"st s-{to}\">{to}</span>"
        );
        if let Some(error) = &t.error {
            out.push_str(" <span class=\"err\">");
            let mut chars = error.chars();
            let cut: String = chars.by_ref().take(TRANSITION_ERROR_CHARS).collect();
            escape_into(out, &cut);
            if chars.next().is_some() {
                out.push('…');
            }
            out.push_str("</span>");
        }
        if !t.blocked_by.is_empty() {
            out.push_str(" <span class=\"mu\">blocked by ");
            escape_into(out, &t.blocked_by.join(", "));
            out.push_str("</span>");
        }
        if let (Some(from), Some(ms)) = (t.from, t.previous_lasted_ms) {
            w!(
                out,
                " <span class=\"mu\">({from} for {})</span>",
                humantime::format_duration(Duration::from_secs(ms / 1000))
            );
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ol></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::time::SystemTime;

    /// A minute in November 2025.
    const NOW: i64 = 29_400_000;

    fn at(minute: i64) -> Timestamp {
        Timestamp(UNIX_EPOCH + Duration::from_secs(u64::try_from(minute * 60).unwrap()))
    }

    fn transition(minute: i64, component: Option<&str>, from: Status, to: Status) -> Transition {
        serde_json::from_value(serde_json::json!({
            "component": component,
            "from": from,
            "to": to,
            "at": at(minute),
            "error": (to != Status::Ok).then_some("connection refused by peer after 3 attempts"),
            "previous_lasted_ms": 754_000,
        }))
        .unwrap()
    }

    /// A day of history with `count` components, as a caller with
    /// details sees it.
    fn day(count: usize) -> PageInput {
        let minutes: Vec<i64> = (NOW - 1439..=NOW).collect();
        let components: Vec<PageComponent> = (0..count)
            .map(|k| {
                let slots: Vec<Option<Status>> = minutes
                    .iter()
                    .enumerate()
                    .map(|(i, _)| {
                        if i < 30 {
                            None
                        } else if (i / 53 + k) % 41 == 0 {
                            Some(Status::Down)
                        } else if (i / 37 + k) % 23 == 0 {
                            Some(Status::Degraded)
                        } else {
                            Some(Status::Ok)
                        }
                    })
                    .collect();
                let status = slots.last().copied().flatten().unwrap_or_default();
                PageComponent {
                    name: format!("component-{k:02}-store"),
                    status,
                    critical: k % 3 == 0,
                    error: (k % 4 == 1).then(|| {
                        format!("connection refused: dial tcp 10.0.0.{k}:5432: i/o timeout after 3 attempts")
                    }),
                    blocked_by: if k == 5 { vec!["component-01-store".into()] } else { Vec::new() },
                    uptime_1h: Some(99.5 + k as f64 / 100.0),
                    uptime_24h: Some(98.0 + k as f64 / 10.0),
                    slots,
                }
            })
            .collect();
        let overall = (0..minutes.len())
            .map(|i| components.iter().filter_map(|c| c.slots[i]).max())
            .collect();
        let traffic = (0..minutes.len())
            .map(|i| SlotTraffic {
                requests: 1000 + (i as u64 % 60) * 10,
                errors: i as u64 % 7,
                p50_ms: Some(10.0 + (i % 30) as f64 * 0.5),
                p99_ms: Some(100.0 + ((i * 7) % 90) as f64),
            })
            .collect();
        let transitions = (0..60i64)
            .map(|i| {
                let name = format!("component-{:02}-store", i as usize % count.max(1));
                let (from, to) = if i % 2 == 0 {
                    (Status::Ok, Status::Down)
                } else {
                    (Status::Down, Status::Ok)
                };
                transition(NOW - 1400 + i * 20, Some(&name), from, to)
            })
            .collect();
        let burns = |fast: f64| {
            vec![
                BurnRate {
                    window: Duration::from_secs(300),
                    rate: Some(fast),
                    threshold: Some(14.4),
                },
                BurnRate {
                    window: Duration::from_secs(3600),
                    rate: Some(2.0),
                    threshold: Some(14.4),
                },
                BurnRate {
                    window: Duration::from_secs(1800),
                    rate: Some(1.2),
                    threshold: Some(6.0),
                },
                BurnRate {
                    window: Duration::from_secs(6 * 3600),
                    rate: None,
                    threshold: Some(6.0),
                },
            ]
        };
        PageInput {
            service: Some("orders-api".into()),
            version: Some("2.14.1".into()),
            environment: Some("production".into()),
            status: Status::Degraded,
            timestamp: at(NOW),
            draining: false,
            notice: Some(
                Notice::new("Database upgrade in progress").estimated_completion(
                    UNIX_EPOCH + Duration::from_secs(u64::try_from((NOW + 60) * 60).unwrap()),
                ),
            ),
            status_path: "/status".into(),
            details: Some(PageDetails {
                slot_starts: minutes.iter().map(|m| at(*m)).collect(),
                overall,
                uptime_1h: Some(100.0),
                uptime_24h: Some(99.93),
                traffic,
                components,
                transitions,
                slos: vec![
                    PageSlo {
                        name: "availability".into(),
                        objective: 0.999,
                        achieved: Some(0.9993),
                        budget_left: Some(0.3),
                        burn_rates: burns(16.0),
                        status: Status::Down,
                    },
                    PageSlo {
                        name: "latency under 300 ms".into(),
                        objective: 0.99,
                        achieved: Some(0.97),
                        budget_left: Some(-2.0),
                        burn_rates: burns(0.5),
                        status: Status::Ok,
                    },
                ],
            }),
        }
    }

    /// The page's inline script, the page without it (for an XML parser:
    /// the page is otherwise well-formed XML), and its inline style.
    fn split(page: &str) -> (&str, String, &str) {
        let inner = |open: &str, close: &str| {
            assert_eq!(page.matches(open).count(), 1, "one {open}");
            let start = page.find(open).unwrap() + open.len();
            let end = start + page[start..].find(close).unwrap();
            (start, end)
        };
        let (s0, s1) = inner("<script>", "</script>");
        let (c0, c1) = inner("<style>", "</style>");
        let without = format!("{}{}", &page[..s0], &page[s1..]);
        (&page[s0..s1], without, &page[c0..c1])
    }

    /// Parses the page (but its script) as XML.
    fn parse(page: &str) -> roxmltree::Document<'static> {
        let (_, xml, _) = split(page);
        let xml: &'static str = Box::leak(xml.into_boxed_str());
        let options = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        };
        roxmltree::Document::parse_with_options(xml, options).unwrap_or_else(|e| panic!("{e}"))
    }

    fn elements<'a>(
        doc: &'a roxmltree::Document<'a>,
        name: &'a str,
    ) -> impl Iterator<Item = roxmltree::Node<'a, 'a>> + 'a {
        doc.descendants().filter(move |n| n.has_tag_name(name))
    }

    fn class_is(node: &roxmltree::Node<'_, '_>, class: &str) -> bool {
        node.attribute("class")
            .is_some_and(|c| c.split(' ').any(|c| c == class))
    }

    /// All text under `node`.
    fn text(node: roxmltree::Node<'_, '_>) -> String {
        node.descendants()
            .filter(roxmltree::Node::is_text)
            .filter_map(|n| n.text())
            .collect()
    }

    #[test]
    fn anonymous_pages_show_the_overall_status_only() {
        let full = day(10);
        let anonymous = PageInput {
            service: None,
            version: None,
            environment: None,
            notice: None,
            details: None,
            ..full.clone()
        };
        let page = render_page(&anonymous);
        let doc = parse(&page);
        for component in &full.details.as_ref().unwrap().components {
            assert!(!page.contains(&component.name), "{}", component.name);
            if let Some(error) = &component.error {
                assert!(!page.contains(error.as_str()));
            }
        }
        for hidden in [
            "orders-api",
            "2.14.1",
            "production",
            "Database upgrade",
            "availability",
        ] {
            assert!(!page.contains(hidden), "{hidden}");
        }
        assert_eq!(elements(&doc, "svg").count(), 0);
        assert_eq!(
            doc.descendants()
                .filter(|n| n.has_attribute("data-c"))
                .count(),
            0
        );
        let overall = doc
            .descendants()
            .find(|n| n.attribute("id") == Some("overall"))
            .unwrap();
        assert_eq!(text(overall), "degraded Degraded performance");
        assert!(class_is(&overall, "s-degraded"));
        assert!(page.contains("<title>Service status: degraded</title>"));
        // Still small, and still live.
        assert!(page.len() < 12 * 1024, "{}", page.len());
        assert_eq!(
            doc.descendants()
                .find(|n| n.has_tag_name("body"))
                .unwrap()
                .attribute("data-watch"),
            Some("/status/watch")
        );
    }

    #[test]
    fn a_day_of_ten_components_is_under_50_kb() {
        let input = day(10);
        let page = render_page(&input);
        eprintln!("a day, 10 components: {} bytes", page.len());
        assert!(page.len() < 50 * 1024, "{} bytes", page.len());
        // Every error at the longest a check keeps.
        let mut long = input.clone();
        let details = long.details.as_mut().unwrap();
        let error = "e".repeat(crate::report::MAX_ERROR_LEN);
        for component in &mut details.components {
            component.error = Some(error.clone());
        }
        for t in &mut details.transitions {
            t.error = Some(error.clone());
        }
        let page = render_page(&long);
        eprintln!(
            "the same, every error {} bytes: {} bytes",
            error.len(),
            page.len()
        );
        let anonymous = render_page(&PageInput {
            details: None,
            ..input
        });
        eprintln!("anonymous: {} bytes", anonymous.len());
    }

    #[test]
    fn the_page_shows_what_the_input_holds() {
        let input = day(10);
        let details = input.details.as_ref().unwrap();
        let page = render_page(&input);
        let doc = parse(&page);
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "html");
        assert_eq!(root.attribute("lang"), Some("en"));
        for tag in ["header", "main", "footer", "h1", "table"] {
            assert!(elements(&doc, tag).next().is_some(), "{tag}");
        }
        assert!(elements(&doc, "meta").any(|m| m.attribute("name") == Some("viewport")));
        // Components in order, each with its status in words.
        let shown: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_attribute("data-c"))
            .collect();
        assert_eq!(shown.len(), 10);
        for (node, component) in shown.iter().zip(&details.components) {
            assert_eq!(node.attribute("data-c"), Some(component.name.as_str()));
            let status = node.descendants().find(|n| class_is(n, "st")).unwrap();
            assert_eq!(text(status), component.status.as_str());
            assert!(class_is(&status, &format!("s-{}", component.status)));
            let body = text(*node);
            if let Some(error) = &component.error {
                assert!(body.contains(error.as_str()));
            }
            assert!(
                body.contains(&percent(component.uptime_24h.unwrap())),
                "{body}"
            );
        }
        // One bar for the overall status and one per component, 48
        // focusable cells each, each saying its time and status.
        let bars: Vec<_> = doc.descendants().filter(|n| class_is(n, "bar")).collect();
        assert_eq!(bars.len(), 11);
        let cell_text = |cell: roxmltree::Node<'_, '_>| text(cell);
        for bar in &bars {
            let cells: Vec<_> = bar.children().filter(|n| n.has_tag_name("li")).collect();
            assert_eq!(cells.len(), 48);
            assert!(bar
                .attribute("aria-label")
                .unwrap()
                .ends_with("last 24 hours"));
            for cell in &cells {
                assert_eq!(cell.attribute("tabindex"), Some("0"));
                let said = cell_text(*cell);
                let (time, status) = said.split_at(5);
                assert!(time.as_bytes()[2] == b':', "{said}");
                let status = status.trim_start();
                let word = ["ok", "degraded", "down", "maintenance", "no data"]
                    .into_iter()
                    .find(|w| status.starts_with(w))
                    .unwrap_or_else(|| panic!("{said}"));
                // The colour is the word's.
                match cell.attribute("class") {
                    None => assert_eq!(word, "ok"),
                    Some(class) => {
                        assert_eq!(class, format!("s-{}", word.replace("no data", "none")))
                    }
                }
            }
        }
        // The cells of 30 minutes are aligned on the clock, the last holding now.
        let last = bars[0].children().rfind(|n| n.has_tag_name("li")).unwrap();
        assert!(cell_text(last).starts_with(&clock(NOW - NOW % 30)));
        // Four charts: response time and traffic, last hour and last day.
        let charts: Vec<_> = elements(&doc, "svg").collect();
        assert_eq!(charts.len(), 4);
        for (chart, points) in charts.iter().zip([60, 144, 60, 144]) {
            assert_eq!(
                chart.attribute("viewBox"),
                Some(format!("0 -3 {} 106", points - 1).as_str())
            );
            assert_eq!(chart.attribute("role"), Some("img"));
            let title = chart.children().find(|n| n.has_tag_name("title")).unwrap();
            assert!(title.text().unwrap().contains("UTC"), "{:?}", title.text());
            let lines: Vec<_> = chart
                .children()
                .filter(|n| n.has_tag_name("path"))
                .skip(1)
                .collect();
            assert_eq!(lines.len(), 2);
            for line in lines {
                let d = line.attribute("d").unwrap();
                let numbers: Vec<i64> = d
                    .trim_start_matches('M')
                    .split([' ', 'M'])
                    .map(|n| n.parse().unwrap())
                    .collect();
                // Every point there, no gap: one segment of x, y pairs.
                assert_eq!(numbers.len(), 2 * points);
                for pair in numbers.chunks(2) {
                    assert!((0..=100).contains(&pair[1]), "{d}");
                }
            }
        }
        // The newest transitions first, at most 20.
        let list = doc
            .descendants()
            .find(|n| n.attribute("id") == Some("transitions"))
            .unwrap();
        let items: Vec<_> = list.children().filter(|n| n.has_tag_name("li")).collect();
        assert_eq!(items.len(), MAX_TRANSITIONS);
        let times: Vec<_> = items
            .iter()
            .map(|i| {
                i.first_element_child()
                    .unwrap()
                    .attribute("datetime")
                    .unwrap()
            })
            .collect();
        assert!(times.windows(2).all(|w| w[0] > w[1]), "{times:?}");
        assert_eq!(times[0], at(NOW - 1400 + 59 * 20).to_string());
        assert!(
            text(items[0]).contains("(down for 12m 34s)"),
            "{}",
            text(items[0])
        );
        // SLOs, with the alerting burn rate marked in words.
        let rows: Vec<_> = elements(&doc, "tr").skip(1).collect();
        assert_eq!(rows.len(), 2);
        let first = text(rows[0]);
        assert!(first.starts_with("availabilitydown99.9%99.93%"), "{first}");
        assert!(first.contains("5m: 16× (alert from 14.4×)"), "{first}");
        assert!(
            first.contains("1h: 2×") && first.contains("30m: 1.2×"),
            "{first}"
        );
        assert!(first.contains("6h: no data"), "{first}");
        assert!(
            text(rows[1]).contains("-200% (overspent)"),
            "{}",
            text(rows[1])
        );
        // The notice.
        let notice = doc.descendants().find(|n| class_is(n, "notice")).unwrap();
        assert!(text(notice).contains("Database upgrade in progress"));
        assert!(text(notice).contains("Expected to end"));
        let identity = doc.descendants().find(|n| class_is(n, "id")).unwrap();
        assert_eq!(text(identity), "version 2.14.1 · production");
    }

    #[test]
    fn a_cell_says_how_long_each_failure_lasted() {
        let minutes: Vec<i64> = (NOW - 59..=NOW).collect();
        // The cell before the last, which holds now.
        let cell_start = NOW - NOW % 30 - 30;
        let slots = minutes
            .iter()
            .map(|m| match m - cell_start {
                3..=5 => Some(Status::Down),
                7 => Some(Status::Degraded),
                _ => Some(Status::Ok),
            })
            .collect();
        let input = PageInput {
            details: Some(PageDetails {
                slot_starts: minutes.iter().map(|m| at(*m)).collect(),
                components: vec![PageComponent {
                    name: "db".into(),
                    status: Status::Ok,
                    critical: true,
                    error: None,
                    blocked_by: Vec::new(),
                    uptime_1h: None,
                    uptime_24h: None,
                    slots,
                }],
                ..PageDetails::default()
            }),
            ..day(0)
        };
        let page = render_page(&input);
        let doc = parse(&page);
        let bar = doc
            .descendants()
            .filter(|n| class_is(n, "bar"))
            .nth(1)
            .unwrap();
        let cells: Vec<_> = bar.children().collect();
        let failed = cells[cells.len() - 2];
        assert_eq!(failed.attribute("class"), Some("s-down"));
        assert_eq!(
            text(failed),
            format!("{} down (3 min down, 1 min degraded)", clock(cell_start))
        );
        assert_eq!(
            text(cells[cells.len() - 1]),
            format!("{} ok", clock(cell_start + 30))
        );
        assert_eq!(cells[cells.len() - 1].attribute("class"), None);
        // Before the history: no data, in grey.
        assert_eq!(cells[0].attribute("class"), Some("s-none"));
        assert!(text(cells[0]).ends_with("no data"));
        // No traffic: the charts say so.
        assert!(page.contains("Last hour: no requests"));
        assert!(page.contains("uptime no data (1 h) · no data (24 h)"));
    }

    #[test]
    fn hostile_text_is_escaped() {
        let evil = "<script>alert(1)</script>";
        let attr = "\"><img src=x onerror=alert(1)>";
        let mut input = day(3);
        input.service = Some(evil.into());
        input.version = Some(attr.into());
        input.environment = Some("'&'".into());
        input.notice = Some(Notice::new(format!("</p>{evil}")));
        input.status_path = format!("/status{attr}");
        let details = input.details.as_mut().unwrap();
        details.components[0].name = attr.into();
        details.components[0].error = Some(evil.into());
        details.components[1].name = evil.into();
        details.components[1].blocked_by = vec![attr.into(), "a&b".into()];
        details.components[2].error = Some("tab\tctrl\u{0}\u{1b}".into());
        let mut t = transition(NOW, Some(evil), Status::Ok, Status::Down);
        t.error = Some(attr.into());
        t.blocked_by = vec![evil.into()];
        details.transitions.push(t);
        details.slos[0].name = evil.into();
        let page = render_page(&input);

        assert_eq!(page.matches("<script").count(), 1);
        assert!(!page.contains("<img"));
        let doc = parse(&page);
        // No element or attribute the input brought in.
        let tags: BTreeSet<&str> = doc
            .descendants()
            .filter(|n| n.is_element())
            .map(|n| n.tag_name().name())
            .collect();
        let allowed = [
            "html",
            "head",
            "meta",
            "link",
            "title",
            "style",
            "body",
            "header",
            "h1",
            "h2",
            "h3",
            "p",
            "strong",
            "span",
            "time",
            "main",
            "section",
            "ul",
            "ol",
            "li",
            "div",
            "figure",
            "figcaption",
            "svg",
            "path",
            "table",
            "thead",
            "tbody",
            "tr",
            "th",
            "td",
            "meter",
            "b",
            "i",
            "footer",
            "script",
        ];
        for tag in &tags {
            assert!(allowed.contains(tag), "{tag}");
        }
        for node in doc.descendants().filter(|n| n.is_element()) {
            for a in node.attributes() {
                assert!(!a.name().starts_with("on"), "{}", a.name());
                assert_ne!(a.name(), "style");
                assert_ne!(a.name(), "src");
            }
        }
        // Each hostile string is there as text, intact.
        let texts: Vec<String> = doc
            .descendants()
            .filter(|n| n.is_element())
            .map(text)
            .collect();
        let holds = |s: &str| texts.iter().any(|t| t == s);
        assert!(holds(evil));
        assert!(holds(attr));
        assert!(holds(&format!("</p>{evil}")));
        assert!(holds(&format!("version {attr} · '&'")));
        assert!(
            holds(&format!("blocked by {attr}, a&b")) || holds(&format!("Blocked by {attr}, a&b"))
        );
        assert!(holds("tab\tctrl\u{fffd}\u{fffd}"));
        assert!(doc
            .descendants()
            .any(|n| n.attribute("data-c") == Some(attr)));
        assert_eq!(
            doc.descendants()
                .find(|n| n.has_tag_name("body"))
                .unwrap()
                .attribute("data-watch"),
            Some(format!("/status{attr}/watch").as_str())
        );
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_style_and_script() {
        for input in [
            day(10),
            PageInput {
                details: None,
                ..day(1)
            },
        ] {
            let page = render_page(&input);
            let (script, _, style) = split(&page);
            assert_eq!((script, style), (SCRIPT, STYLE));
            let digest = |text: &str| {
                base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
            };
            let csp = page_csp();
            assert!(
                csp.contains(&format!("style-src 'sha256-{}'", digest(style))),
                "{csp}"
            );
            assert!(
                csp.contains(&format!("script-src 'sha256-{}'", digest(script))),
                "{csp}"
            );
            assert!(csp.starts_with("default-src 'none';"));
            for directive in [
                "connect-src 'self'",
                "base-uri 'none'",
                "form-action 'none'",
                "frame-ancestors 'none'",
            ] {
                assert!(csp.contains(directive), "{directive}");
            }
            // Nothing the policy would block: no style or handler attribute.
            let doc = parse(&page);
            for node in doc.descendants().filter(|n| n.is_element()) {
                for a in node.attributes() {
                    assert!(
                        a.name() != "style" && !a.name().starts_with("on"),
                        "{}",
                        a.name()
                    );
                }
            }
        }
        let rendered = page_response(StatusCode::OK, &day(1));
        assert_eq!(rendered.headers["content-security-policy"], page_csp());
        assert_eq!(rendered.headers["content-type"], MEDIA_TYPE);
        assert_eq!(rendered.headers["cache-control"], "no-store");
        assert_eq!(rendered.headers["x-content-type-options"], "nosniff");
    }

    #[test]
    fn nothing_leaves_the_origin() {
        for input in [
            day(10),
            PageInput {
                details: None,
                ..day(1)
            },
        ] {
            let page = render_page(&input);
            for url in ["http:", "https:", "//", "url(", "@import"] {
                assert!(!page.contains(url), "{url}");
            }
            let doc = parse(&page);
            let mut references = Vec::new();
            for node in doc.descendants().filter(|n| n.is_element()) {
                for a in node.attributes() {
                    if ["href", "src", "action", "formaction", "data-watch"].contains(&a.name()) {
                        references.push((node.tag_name().name(), a.name(), a.value()));
                    }
                }
            }
            assert_eq!(
                references,
                [
                    ("link", "href", "data:,"),
                    ("body", "data-watch", "/status/watch")
                ]
            );
        }
        assert_eq!(watch_path("/status"), Some("/status/watch".into()));
        assert_eq!(watch_path("/ops/status/"), Some("/ops/status/watch".into()));
        for leaves in [
            "//evil.example/status",
            "https://evil.example",
            "status",
            "/\\evil",
            "",
        ] {
            assert_eq!(watch_path(leaves), None, "{leaves}");
        }
        let page = render_page(&PageInput {
            status_path: "//evil.example".into(),
            ..day(1)
        });
        assert!(!page.contains(" data-watch=") && !page.contains("evil"));
    }

    #[test]
    fn the_script_says_what_the_page_says() {
        for status in STATUSES {
            assert!(
                SCRIPT.contains(&format!("{status}:'{}'", headline(status))),
                "{status}"
            );
        }
        // What the script looks for is on the page.
        let page = render_page(&day(2));
        for id in ["live", "overall", "updated", "stale", "transitions"] {
            assert!(page.contains(&format!("id=\"{id}\"")), "{id}");
            assert!(SCRIPT.contains(&format!("'{id}'")), "{id}");
        }
        assert!(page.contains("<strong class=\"st\">") && page.contains("class=\"h\""));
        assert!(SCRIPT.contains("addEventListener('status'"));
        assert!(SCRIPT.contains("new EventSource(path)"));
        // The clock the page speaks.
        let t = Timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(86_400 + 3_723));
        assert_eq!(datetime(t), "1970-01-02 01:02:03");
        assert_eq!(clock(minute(t)), "01:02");
    }

    #[test]
    fn figures_read_well() {
        assert_eq!(exact_percent(0.999), "99.9%");
        assert_eq!(exact_percent(0.99), "99%");
        assert_eq!(exact_percent(0.9995), "99.95%");
        assert_eq!(exact_percent(1.0), "100%");
        assert_eq!(nice_top(0.0), 1.0);
        assert_eq!(nice_top(7.0), 10.0);
        assert_eq!(nice_top(180.0), 200.0);
        assert_eq!(nice_top(210.0), 250.0);
        assert_eq!(nice_top(1000.0), 1000.0);
        assert_eq!(number(0.123), "0.12");
        assert_eq!(number(4.56), "4.6");
        assert_eq!(number(123.4), "123");
        assert_eq!(multiple(0.5), "0.50");
        assert_eq!(multiple(14.4), "14.4");
        assert_eq!(multiple(16.0), "16");
        let mut d = String::new();
        path(
            &mut d,
            &[
                Some(0.0),
                Some(50.0),
                None,
                Some(100.0),
                None,
                Some(25.0),
                Some(25.0),
            ],
            100.0,
        );
        assert_eq!(d, "M0 100 1 50M3 0h0M5 75 6 75");
    }
}
