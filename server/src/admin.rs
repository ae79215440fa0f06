//! The admin listener: invalidations (CloudFront semantics), health. One blocking thread of
//! its own, off the workers' event loops; it touches the slab directly (the index is shared).
//!
//! - `POST /invalidations` with `{"paths": ["/simple/*", "/index.html"]}` → 201 with an id
//! - `GET /invalidations/<id>` → `InProgress` or `Completed`
//! - `GET /invalidations` → every invalidation since start
//! - `GET /healthz` → 200 while serving, 503 while draining
//! - `GET /metrics` → every worker's counters summed, Prometheus text format
//! - `GET /` → the dashboard (one embedded page), `GET /stats` → its data, JSON
//!   (`docs/dashboard.md`)
//!
//! With `[admin] token` set, every request needs `Authorization: Bearer <token>`; a browser
//! can give the token once (`POST /login`, the form `GET /` shows) and keep it in an HttpOnly,
//! SameSite=Strict cookie, which GET requests accept instead.

mod dashboard;

use crate::proxy::{Invalidation, Shared};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Most paths in one invalidation (CloudFront's limit).
const MAX_PATHS: usize = 3000;
const MAX_REQUEST: usize = 1 << 20;

/// What the admin handlers need.
pub struct Admin {
    pub token: Option<String>,
    pub shared: Option<Arc<Shared>>,
    /// The distributions served (names), for `/distributions/<name>/invalidations`.
    pub distributions: Arc<std::sync::RwLock<Vec<String>>>,
    pub draining: Arc<AtomicBool>,
    pub metrics: Vec<Arc<crate::observe::WorkerMetrics>>,
    pub log_sink: Option<Arc<crate::observe::LogSink>>,
    /// The workers' dashboard statistics.
    pub stats: Arc<crate::stats::Stats>,
    /// The fleet's control plane: invalidations go through etcd (`cluster`).
    pub cluster: Option<Arc<crate::cluster::Handle>>,
    /// CloudFront's REST API under `/2020-05-31/` (SigV4, not the token).
    pub cloudfront: Option<Arc<crate::cfapi::Api>>,
}

/// Binds the admin listener and serves it on a thread of its own.
pub fn start(addr: SocketAddr, admin: Admin) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    let sampler = crate::stats::view::Sampler::start(admin.stats.clone())?;
    let admin = Arc::new(admin);
    std::thread::Builder::new()
        .name("slabfront-admin".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let (admin, sampler) = (admin.clone(), sampler.clone());
                // Each request on a short-lived thread: a slow client cannot hold the others.
                let _ = std::thread::Builder::new()
                    .name("slabfront-admin-conn".into())
                    .spawn(move || handle(&admin, &sampler, stream));
            }
        })?;
    Ok(local)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    paths: Vec<String>,
}

#[derive(Serialize)]
struct InvalidationView<'a> {
    id: &'a str,
    status: &'static str,
    paths: &'a [String],
    created: u64,
    removed: usize,
}

impl<'a> From<&'a Invalidation> for InvalidationView<'a> {
    fn from(i: &'a Invalidation) -> Self {
        InvalidationView {
            id: &i.id,
            status: if i.completed { "Completed" } else { "InProgress" },
            paths: &i.paths,
            created: i.created,
            removed: i.removed,
        }
    }
}

struct Reply {
    status: u16,
    body: String,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
}

fn json(status: u16, v: impl Serialize) -> Reply {
    Reply {
        status,
        body: serde_json::to_string_pretty(&v).unwrap_or_default() + "\n",
        content_type: "application/json",
        headers: Vec::new(),
    }
}

fn text(status: u16, body: String, content_type: &'static str) -> Reply {
    Reply {
        status,
        body,
        content_type,
        headers: Vec::new(),
    }
}

fn error(status: u16, message: &str) -> Reply {
    json(status, serde_json::json!({ "error": message }))
}

fn handle(admin: &Admin, sampler: &crate::stats::view::Sampler, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let reply = match read_request(&mut stream) {
        Ok(req) => route(admin, sampler, &req),
        Err(why) => error(400, why),
    };
    let reason = crate::http::Status(reply.status).reason();
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.content_type,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(reply.body.as_bytes());
}

struct AdminRequest {
    method: String,
    path: String,
    authorization: Option<String>,
    cookie: Option<String>,
    /// Every header, for the CloudFront API's signature.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request(stream: &mut TcpStream) -> Result<AdminRequest, &'static str> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).map_err(|_| "read failed")?;
        if n == 0 {
            return Err("incomplete request");
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST {
            return Err("request too large");
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(head_len)) = req.parse(&buf) else {
            continue;
        };
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
        };
        let len: usize = header("content-length")
            .map(|v| v.trim().parse().map_err(|_| "invalid Content-Length"))
            .transpose()?
            .unwrap_or(0);
        if len > MAX_REQUEST {
            return Err("request too large");
        }
        let out = AdminRequest {
            method: req.method.unwrap_or("").to_string(),
            path: req.path.unwrap_or("").to_string(),
            authorization: header("authorization"),
            cookie: header("cookie"),
            headers: req
                .headers
                .iter()
                .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                .collect(),
            body: Vec::new(),
        };
        let mut body = buf[head_len..].to_vec();
        while body.len() < len {
            let n = stream.read(&mut chunk).map_err(|_| "read failed")?;
            if n == 0 {
                return Err("incomplete body");
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(len);
        return Ok(AdminRequest { body, ..out });
    }
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bearer token, or (for GET requests) the dashboard's cookie, matches `[admin] token`.
fn authorized(admin: &Admin, req: &AdminRequest) -> bool {
    let Some(token) = admin.token.as_deref().filter(|t| !t.is_empty()) else {
        return true;
    };
    let bearer = req
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or("");
    if same(bearer.trim().as_bytes(), token.as_bytes()) {
        return true;
    }
    // The cookie is SameSite=Strict; it is still not taken for changes (POST).
    req.method == "GET"
        && req
            .cookie
            .as_deref()
            .and_then(dashboard::cookie_token)
            .is_some_and(|c| same(c.as_bytes(), token.as_bytes()))
}

fn route(admin: &Admin, sampler: &crate::stats::view::Sampler, req: &AdminRequest) -> Reply {
    let path = req.path.split('?').next().unwrap_or("");
    if (req.method.as_str(), path) == ("POST", "/login") {
        return dashboard::login(admin, req);
    }
    if path.starts_with("/2020-05-31/") {
        return cloudfront(admin, req);
    }
    if !authorized(admin, req) {
        if (req.method.as_str(), path) == ("GET", "/") {
            return dashboard::login_page("");
        }
        return error(401, "a valid bearer token is required");
    }
    match (req.method.as_str(), path) {
        ("GET", "/") => dashboard::page(),
        ("GET", "/stats") => dashboard::stats(admin, sampler),
        ("GET", "/healthz") => {
            if admin.draining.load(Ordering::Acquire) {
                text(503, "draining\n".into(), "text/plain; charset=utf-8")
            } else if req.path.contains("verbose") {
                text(
                    200,
                    format!("ok\n{}", crate::proxy::health::verbose()),
                    "text/plain; charset=utf-8",
                )
            } else {
                text(200, "ok\n".into(), "text/plain; charset=utf-8")
            }
        }
        ("GET", "/metrics") => text(
            200,
            metrics(admin, sampler),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        ("POST", "/invalidations") => {
            // The distribution of a file of one; with several, the request must name one.
            let names = admin
                .distributions
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            match names.as_slice() {
                [one] => create(admin, one, &req.body),
                [] => create(admin, config::IMPLICIT_NAME, &req.body),
                _ => error(
                    400,
                    "several distributions are served: POST /distributions/<name>/invalidations",
                ),
            }
        }
        ("POST", p) if p.starts_with("/distributions/") && p.ends_with("/invalidations") => {
            let name = &p["/distributions/".len()..p.len() - "/invalidations".len()];
            let known = admin
                .distributions
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name));
            if !known {
                return error(404, &format!("no distribution named {name:?}"));
            }
            create(admin, name, &req.body)
        }
        ("GET", "/invalidations") => {
            let Some(shared) = &admin.shared else {
                return json(200, serde_json::json!({ "invalidations": [] }));
            };
            let list = shared.invalidations.lock().unwrap_or_else(|e| e.into_inner());
            let views: Vec<InvalidationView<'_>> = list.iter().map(Into::into).collect();
            json(200, serde_json::json!({ "invalidations": views }))
        }
        ("GET", p) if p.starts_with("/invalidations/") => {
            let id = &p["/invalidations/".len()..];
            if let Some(c) = &admin.cluster {
                return fleet_progress(c, id);
            }
            let Some(shared) = &admin.shared else {
                return error(404, "no such invalidation");
            };
            let list = shared.invalidations.lock().unwrap_or_else(|e| e.into_inner());
            match list.iter().find(|i| i.id == id) {
                Some(i) => json(200, InvalidationView::from(i)),
                None => error(404, "no such invalidation"),
            }
        }
        (_, "/" | "/stats" | "/login" | "/healthz" | "/invalidations" | "/metrics") => {
            error(405, "method not allowed")
        }
        _ => error(404, "not found"),
    }
}

/// CloudFront's API: authenticated by its own SigV4 check, answered in its XML.
fn cloudfront(admin: &Admin, req: &AdminRequest) -> Reply {
    let Some(api) = &admin.cloudfront else {
        return Reply {
            status: 403,
            body: crate::cfapi::xml::error(
                "AccessDenied",
                "the CloudFront API is not enabled on this admin listener",
                "0",
            ),
            content_type: "text/xml",
            headers: Vec::new(),
        };
    };
    let r = api.handle(&crate::cfapi::Request {
        method: &req.method,
        target: &req.path,
        headers: &req.headers,
        body: &req.body,
    });
    Reply {
        status: r.status,
        body: r.body,
        content_type: "text/xml",
        headers: r.headers,
    }
}

fn metrics(admin: &Admin, sampler: &crate::stats::view::Sampler) -> String {
    let slab = admin.shared.as_ref().map(|s| {
        let invalidations = s
            .invalidations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|i| i.completed)
            .count() as u64;
        (s.store.stats(), invalidations)
    });
    let failures = admin
        .log_sink
        .as_ref()
        .map_or(0, |s| s.dropped.load(Ordering::Relaxed));
    let mut text = crate::observe::prometheus(
        &admin.metrics,
        slab,
        failures,
        admin.draining.load(Ordering::Acquire),
    );
    text.push_str(&sampler.prometheus());
    crate::proxy::health::prometheus(&mut text);
    crate::functions::edge::prometheus(&mut text);
    crate::edge::waf::prometheus(&mut text);
    text
}

/// Checks CloudFront's path rules: each path starts with `/` (or is `*`), `*` only last.
pub(crate) fn check_paths(paths: &[String]) -> Result<(), String> {
    if paths.is_empty() {
        return Err("\"paths\" must list at least one path".into());
    }
    if paths.len() > MAX_PATHS {
        return Err(format!("at most {MAX_PATHS} paths per invalidation"));
    }
    for p in paths {
        if p != "*" && !p.starts_with('/') {
            return Err(format!("{p:?}: a path starts with '/'"));
        }
        if p.find('*').is_some_and(|i| i != p.len() - 1) {
            return Err(format!("{p:?}: '*' is only allowed at the end"));
        }
        if p.bytes().any(|b| b.is_ascii_control()) {
            return Err(format!("{p:?}: control characters are not allowed"));
        }
    }
    Ok(())
}

fn create(admin: &Admin, distribution: &str, body: &[u8]) -> Reply {
    let Some(shared) = admin.shared.clone() else {
        return error(409, "this distribution has no cache (no custom origins)");
    };
    let parsed: CreateBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => return error(400, &format!("expected {{\"paths\": [..]}}: {e}")),
    };
    if let Err(e) = check_paths(&parsed.paths) {
        return error(400, &e);
    }
    if let Some(c) = &admin.cluster {
        return fleet_create(c, distribution, parsed.paths);
    }
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let id = {
        let mut list = shared.invalidations.lock().unwrap_or_else(|e| e.into_inner());
        let id = format!("I{:X}{:04X}", created, list.len() % 0x10000);
        list.push(Invalidation {
            id: id.clone(),
            paths: parsed.paths.clone(),
            created,
            completed: false,
            removed: 0,
        });
        id
    };
    let removed = shared.invalidate_in(&crate::sites::key_prefix(distribution), &parsed.paths);
    // Tombstones are written into the slab mapping: they survive a crash of the process.
    let _ = shared.store.flush();
    let view = {
        let mut list = shared.invalidations.lock().unwrap_or_else(|e| e.into_inner());
        let Some(i) = list.iter_mut().find(|i| i.id == id) else {
            return error(500, "invalidation record lost");
        };
        i.completed = true;
        i.removed = removed;
        serde_json::to_value(InvalidationView::from(&*i)).unwrap_or_default()
    };
    tracing::info!(id, distribution, paths = ?parsed.paths, removed, "invalidation completed");
    json(201, view)
}

/// An invalidation for the whole fleet: written to etcd, applied by every node's watch;
/// 503 when etcd cannot take it (nothing is created: the caller retries).
fn fleet_create(c: &crate::cluster::Handle, distribution: &str, paths: Vec<String>) -> Reply {
    match c.create(distribution, paths) {
        Ok(r) => {
            tracing::info!(id = %r.id, distribution, paths = ?r.paths, "invalidation written to etcd");
            json(
                201,
                serde_json::json!({ "id": r.id, "status": "InProgress", "paths": r.paths, "created": r.created }),
            )
        }
        Err(e) => error(503, &format!("{e}; the invalidation was not created, try again")),
    }
}

/// `Completed` once every live node has acknowledged it.
fn fleet_progress(c: &crate::cluster::Handle, id: &str) -> Reply {
    match c.progress(id) {
        Ok(Some(p)) => json(
            200,
            serde_json::json!({
                "id": p.record.id,
                "status": if p.completed() { "Completed" } else { "InProgress" },
                "paths": p.record.paths,
                "created": p.record.created,
                "nodes": p.live,
                "acknowledged": p.acked,
            }),
        ),
        Ok(None) => error(404, "no such invalidation"),
        Err(e) => error(503, &e),
    }
}

/// `slabfront invalidate`: creates an invalidation and waits until it completes.
pub fn invalidate_cli(
    admin_url: &str,
    token: Option<&str>,
    distribution: Option<&str>,
    paths: &[String],
) -> anyhow::Result<String> {
    let body = serde_json::to_string(&serde_json::json!({ "paths": paths }))?;
    let path = match distribution {
        Some(d) => format!("/distributions/{d}/invalidations"),
        None => "/invalidations".to_string(),
    };
    let (status, reply) = call(admin_url, "POST", &path, token, Some(&body))?;
    if status != 201 {
        anyhow::bail!("admin answered {status}: {}", reply.trim());
    }
    let v: serde_json::Value = serde_json::from_str(&reply)?;
    let id = v["id"].as_str().unwrap_or_default().to_string();
    let mut status_text = v["status"].as_str().unwrap_or_default().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while status_text != "Completed" {
        if std::time::Instant::now() > deadline {
            anyhow::bail!("invalidation {id} still {status_text} after 120 s");
        }
        std::thread::sleep(Duration::from_millis(200));
        let (code, reply) = call(admin_url, "GET", &format!("/invalidations/{id}"), token, None)?;
        if code != 200 {
            anyhow::bail!("admin answered {code}: {}", reply.trim());
        }
        let v: serde_json::Value = serde_json::from_str(&reply)?;
        status_text = v["status"].as_str().unwrap_or_default().to_string();
    }
    Ok(id)
}

/// A minimal HTTP/1.1 client for the admin API (plain HTTP, loopback or LAN).
fn call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let hostport = base
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("--admin must be an http:// URL, e.g. http://127.0.0.1:9901"))?
        .trim_end_matches('/');
    let mut s =
        TcpStream::connect(hostport).map_err(|e| anyhow::anyhow!("cannot connect to {hostport}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    req.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(n) = resp.parse(&raw)? else {
        anyhow::bail!("incomplete reply from {hostport}");
    };
    Ok((
        resp.code.unwrap_or(0),
        String::from_utf8_lossy(&raw[n..]).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rules() {
        assert!(check_paths(&["/a".into(), "/b/*".into(), "*".into()]).is_ok());
        assert!(check_paths(&[]).is_err());
        assert!(check_paths(&["a".into()]).is_err());
        assert!(check_paths(&["/a*/b".into()]).is_err());
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }
}
