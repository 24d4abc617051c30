//! The collector's HTTP endpoints.
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /csc-event?…` | one event (Divolte's pixel): a 1×1 GIF with Divolte's cache headers; 304 without an event when `If-None-Match` carries the sentinel ETag (a browser re-sending a pixel) |
//! | `POST /csc-event` | a batch: one event query string per line (the tracker's beacon and keep-alive POSTs); 204 |
//! | `POST /json?p=<party>` | Divolte's JSON source; 204, 400 with the reason, 413 past the size limit |
//! | `GET /eddy.js`, `/divolte.js` | the tracker |
//! | `GET /`, `/demo/…` | the demo page; `/demo/events?party=` lists that party's latest events when the node can query |
//! | `GET /ping` | `pong`, or 503 with the sink's problem |
//! | `GET /metrics` | Prometheus metrics |
//!
//! An event is answered only after the sink holds its record (or its bad row): 503 with
//! `Retry-After` when the sink is down, slow or the queue is full.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use serde_json::json;

use crate::Collector;
use crate::metrics;
use crate::pipeline::{Outcome, Request};
use crate::protocol::query::Params;
use crate::protocol::{Invalid, ViolationKind, browser, json};
use crate::sink::{SinkError, Topic};

/// Divolte's sentinel ETag: a browser that re-sends a cached pixel request sends it back.
pub const SENTINEL_ETAG: &str = "\"6b3edc43-20ec-4078-bc47-e965dd76b88a\"";

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

pub fn router(c: Arc<Collector>) -> Router {
    let config = &c.config;
    let mut r = Router::new()
        .route(
            &config.event_path,
            get(pixel).post(batch).options(preflight),
        )
        .route(
            &config.json_path,
            axum::routing::post(json_event).options(preflight),
        )
        .route("/eddy.js", get(script))
        .route("/divolte.js", get(script))
        .route("/ping", get(ping))
        .route(
            "/metrics",
            get(|| async { eddy_runtime::telemetry::render_metrics() }),
        );
    if config.demo {
        r = r
            .route("/", get(demo_page))
            .route("/demo/events", get(demo_events))
            .route("/demo/{*rest}", get(demo_page));
    }
    r.with_state(c)
}

fn count(endpoint: &str, answer: &str) {
    metrics::REQUESTS
        .with_label_values(&[endpoint, answer])
        .inc();
}

fn client_ip(c: &Collector, peer: SocketAddr, headers: &HeaderMap) -> Option<IpAddr> {
    if c.config.use_x_forwarded_for {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .next_back();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    Some(peer.ip())
}

fn cors(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

async fn preflight() -> Response {
    let mut h = HeaderMap::new();
    cors(&mut h);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    (StatusCode::NO_CONTENT, h).into_response()
}

/// Divolte's headers on every pixel answer.
fn pixel_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    h.insert(header::ETAG, HeaderValue::from_static(SENTINEL_ETAG));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache, proxy-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::EXPIRES,
        HeaderValue::from_static("Fri, 14 Apr 1995 11:30:00 GMT"),
    );
    h
}

fn unavailable(endpoint: &str, e: &SinkError) -> Response {
    let answer = match e {
        SinkError::Overloaded(_) => "overloaded",
        _ => "unavailable",
    };
    count(endpoint, answer);
    let mut h = HeaderMap::new();
    cors(&mut h);
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    (StatusCode::SERVICE_UNAVAILABLE, h, format!("{e}\n")).into_response()
}

/// Sends the outcomes' records; every event of the request is durable when this returns Ok.
async fn deliver(c: &Collector, outcomes: Vec<Outcome>) -> Result<(), SinkError> {
    let (mut records, mut bad, mut discarded) = (Vec::new(), Vec::new(), Vec::new());
    for o in outcomes {
        match o {
            Outcome::Record(r) => records.push(r),
            Outcome::BadRow(r) => bad.push(r),
            Outcome::Discarded(why) => discarded.push(why),
        }
    }
    let (n_records, n_bad) = (records.len() as u64, bad.len() as u64);
    let result = async {
        c.sink.send(Topic::Events, records).await?;
        c.sink.send(Topic::BadRows, bad).await
    }
    .await;
    match &result {
        Ok(()) => {
            metrics::EVENTS
                .with_label_values(&["recorded"])
                .inc_by(n_records);
            metrics::EVENTS
                .with_label_values(&["bad_row"])
                .inc_by(n_bad);
            for why in discarded {
                metrics::EVENTS.with_label_values(&[why]).inc();
            }
        }
        Err(_) => metrics::EVENTS
            .with_label_values(&["rejected"])
            .inc_by(n_records + n_bad),
    }
    result
}

fn request<'a>(
    c: &Collector,
    method: &'a str,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    body: &'a [u8],
    client: Option<IpAddr>,
    params: Option<&'a Params<'a>>,
) -> Request<'a> {
    Request {
        method,
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers,
        body,
        client,
        received: c.clock.now_ms(),
        params,
    }
}

fn too_large(what: &str, limit: usize, setting: &str) -> Invalid {
    Invalid::new(
        ViolationKind::Size,
        format!("the {what} is larger than {limit} bytes (collector.{setting})"),
    )
}

async fn pixel(
    State(c): State<Arc<Collector>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == SENTINEL_ETAG)) {
        count("pixel", "duplicate_etag");
        return (StatusCode::NOT_MODIFIED, pixel_headers()).into_response();
    }
    let client = client_ip(&c, peer, &headers);
    let query = uri.query().unwrap_or("");
    let outcome = if query.len() > c.config.max_request_bytes {
        let req = request(&c, "GET", &uri, &headers, b"", client, None);
        Outcome::BadRow(c.pipeline.bad_row(
            &req,
            &too_large(
                "query string",
                c.config.max_request_bytes,
                "max_request_bytes",
            ),
        ))
    } else {
        let params = Params::parse(query);
        let req = request(&c, "GET", &uri, &headers, b"", client, Some(&params));
        c.pipeline
            .process(&req, browser::parse(&params, req.received))
    };
    match deliver(&c, vec![outcome]).await {
        Ok(()) => {
            count("pixel", "accepted");
            (StatusCode::OK, pixel_headers(), Bytes::from_static(PIXEL)).into_response()
        }
        Err(e) => unavailable("pixel", &e),
    }
}

/// Reads at most `limit` bytes; `Err(prefix)` when the body is longer.
async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, Vec<u8>> {
    let mut out = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { return Err(out) };
        if out.len() + chunk.len() > limit {
            let room = (limit + 1).saturating_sub(out.len()).min(chunk.len());
            out.extend_from_slice(&chunk[..room]);
            return Err(out);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

async fn batch(
    State(c): State<Arc<Collector>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let client = client_ip(&c, peer, &headers);
    let limit = c.config.max_request_bytes;
    let (outcomes, status) = match read_limited(body, limit).await {
        Err(prefix) => {
            let req = request(&c, "POST", &uri, &headers, &prefix, client, None);
            let bad = c
                .pipeline
                .bad_row(&req, &too_large("batch", limit, "max_request_bytes"));
            (vec![Outcome::BadRow(bad)], StatusCode::PAYLOAD_TOO_LARGE)
        }
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let outcomes = text
                .split('\n')
                .map(|l| l.trim_end_matches('\r'))
                .filter(|l| !l.is_empty())
                .map(|line| {
                    let params = Params::parse(line);
                    let req = request(
                        &c,
                        "POST",
                        &uri,
                        &headers,
                        line.as_bytes(),
                        client,
                        Some(&params),
                    );
                    c.pipeline
                        .process(&req, browser::parse(&params, req.received))
                })
                .collect();
            (outcomes, StatusCode::NO_CONTENT)
        }
    };
    match deliver(&c, outcomes).await {
        Ok(()) => {
            count(
                "batch",
                if status == StatusCode::NO_CONTENT {
                    "accepted"
                } else {
                    "too_large"
                },
            );
            let mut h = HeaderMap::new();
            cors(&mut h);
            (status, h).into_response()
        }
        Err(e) => unavailable("batch", &e),
    }
}

async fn json_event(
    State(c): State<Arc<Collector>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let client = client_ip(&c, peer, &headers);
    let limit = c.config.json_max_body_bytes;
    let params = Params::parse(uri.query().unwrap_or(""));
    let party = params.get(&c.config.json_party_param).map(str::to_string);
    let (outcome, status, error) = match read_limited(body, limit).await {
        Err(prefix) => {
            let invalid = too_large("body", limit, "json_max_body_bytes");
            let req = request(&c, "POST", &uri, &headers, &prefix, client, None);
            (
                Outcome::BadRow(c.pipeline.bad_row(&req, &invalid)),
                StatusCode::PAYLOAD_TOO_LARGE,
                Some(invalid.message),
            )
        }
        Ok(bytes) => {
            let req = request(&c, "POST", &uri, &headers, &bytes, client, None);
            let parsed = json::parse(party.as_deref(), &bytes, req.received);
            let error = parsed.as_ref().err().map(|e| e.message.clone());
            let status = if error.is_some() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::NO_CONTENT
            };
            (c.pipeline.process(&req, parsed), status, error)
        }
    };
    let mut h = HeaderMap::new();
    cors(&mut h);
    match deliver(&c, vec![outcome]).await {
        Ok(()) => match error {
            None => {
                count("json", "accepted");
                (status, h).into_response()
            }
            Some(message) => {
                count(
                    "json",
                    if status == StatusCode::PAYLOAD_TOO_LARGE {
                        "too_large"
                    } else {
                        "invalid"
                    },
                );
                (status, h, axum::Json(json!({"error": message}))).into_response()
            }
        },
        Err(e) => unavailable("json", &e),
    }
}

async fn script(State(c): State<Arc<Collector>>, method: Method, headers: HeaderMap) -> Response {
    let s = &c.script;
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(v) = HeaderValue::from_str(&s.etag) {
        h.insert(header::ETAG, v);
    }
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(s.etag.as_str());
    if cached {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let body = if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        s.gzip.clone()
    } else {
        s.plain.clone()
    };
    if method == Method::HEAD {
        return (StatusCode::OK, h).into_response();
    }
    (StatusCode::OK, h, body).into_response()
}

async fn ping(State(c): State<Arc<Collector>>) -> Response {
    match c.sink.health.problem() {
        None => (StatusCode::OK, "pong\n").into_response(),
        Some(p) => (StatusCode::SERVICE_UNAVAILABLE, format!("{p}\n")).into_response(),
    }
}

async fn demo_page() -> Response {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    (StatusCode::OK, h, crate::tracker::DEMO_PAGE).into_response()
}

#[derive(serde::Deserialize)]
struct PartyQuery {
    party: String,
}

async fn demo_events(State(c): State<Arc<Collector>>, Query(q): Query<PartyQuery>) -> Response {
    let Some(demo) = &c.demo else {
        return (
            StatusCode::NOT_FOUND,
            "this collector cannot query events\n",
        )
            .into_response();
    };
    match demo.recent(&q.party).await {
        Ok(rows) => axum::Json(rows).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}
