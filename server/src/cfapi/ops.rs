//! The operations: routing, authentication, and each of CloudFront's distribution and
//! invalidation calls, answering in CloudFront's XML with its error codes.

use super::state::{Invalidation, Record};
use super::{sigv4, xml, Api, Inner};
use config::{Config, Distribution};
use serde_json::{json, Value};
use sha2::Digest;
use std::sync::MutexGuard;

/// An answer: status, XML body, extra headers.
pub struct Response {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

/// A request as the admin listener read it.
pub struct Request<'a> {
    pub method: &'a str,
    /// Path and query, as sent.
    pub target: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Request<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}

/// A CloudFront error: code, HTTP status, message.
struct Error(&'static str, u16, String);

fn invalid(message: impl Into<String>) -> Error {
    Error("InvalidArgument", 400, message.into())
}

fn internal(e: impl std::fmt::Display) -> Error {
    tracing::error!(error = %e, "CloudFront API: cannot write the state directory");
    Error("InternalError", 500, format!("cannot save the change: {e}"))
}

type Result<T> = std::result::Result<T, Error>;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn random_id(prefix: char) -> String {
    std::iter::once(prefix)
        .chain((0..13).map(|_| ALNUM[fastrand::usize(..ALNUM.len())] as char))
        .collect()
}

/// A stable id from a name (distributions of the configuration file keep theirs across
/// restarts).
fn hashed_id(prefix: char, what: &str) -> String {
    let digest = sha2::Sha256::digest(what.as_bytes());
    std::iter::once(prefix)
        .chain(
            digest
                .iter()
                .take(13)
                .map(|b| ALNUM[*b as usize % ALNUM.len()] as char),
        )
        .collect()
}

/// Now, as CloudFront writes times (`2026-01-02T03:04:05.678Z`).
pub(super) fn now_iso() -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&fmt)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".into())
}

fn arn(id: &str) -> String {
    format!("arn:aws:cloudfront::000000000000:distribution/{id}")
}

/// A distribution as the API shows it, from the state or from the configuration file.
struct View {
    id: String,
    etag: String,
    domain: String,
    modified: String,
    config: Value,
    status: &'static str,
    /// The distribution's name in the configuration model (its cache-key prefix).
    name: String,
    from_file: bool,
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

fn max_items(query: &str) -> Result<usize> {
    match query_param(query, "MaxItems") {
        None => Ok(100),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err(invalid(format!("MaxItems: {v:?} is not a number from 1 to 1000"))),
        },
    }
}

/// Every `Quantity` matches its `Items`.
fn quantities(v: &Value, at: &str) -> Result<()> {
    match v {
        Value::Object(m) => {
            if let Some(q) = m.get("Quantity").and_then(Value::as_u64) {
                let n = m.get("Items").and_then(Value::as_array).map_or(0, Vec::len) as u64;
                if q != n {
                    return Err(Error(
                        "InconsistentQuantities",
                        400,
                        format!("{at}: Quantity is {q} but Items holds {n}"),
                    ));
                }
            }
            for (k, child) in m {
                quantities(child, &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| quantities(item, &format!("{at}[{i}]"))),
        _ => Ok(()),
    }
}

fn parse_body(body: &[u8], root: &str) -> Result<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error(
            "MissingBody",
            400,
            format!("the request needs a {root} body"),
        ));
    }
    let (name, v) = xml::parse(body).map_err(|e| Error("MalformedInput", 400, e))?;
    if name != root {
        return Err(Error(
            "MalformedInput",
            400,
            format!("the body's root element is {name}, not {root}"),
        ));
    }
    quantities(&v, root)?;
    Ok(v)
}

fn caller_reference(v: &Value) -> Result<String> {
    match v.get("CallerReference").and_then(Value::as_str) {
        Some(c) if !c.is_empty() => Ok(c.to_string()),
        _ => Err(invalid("CallerReference: required")),
    }
}

fn xml_response(status: u16, root: &str, v: &Value) -> Response {
    Response {
        status,
        body: xml::document(root, v),
        headers: Vec::new(),
    }
}

/// What the summary of a list shows of a DistributionConfig, with CloudFront's defaults for
/// members the config leaves out.
/// A member's default, made when needed.
type MakeDefault = fn() -> Value;

const SUMMARY_MEMBERS: [(&str, MakeDefault); 15] = [
    ("Aliases", || json!({"Quantity": 0})),
    ("Origins", || json!({"Quantity": 0})),
    ("OriginGroups", || json!({"Quantity": 0})),
    ("DefaultCacheBehavior", || json!({})),
    ("CacheBehaviors", || json!({"Quantity": 0})),
    ("CustomErrorResponses", || json!({"Quantity": 0})),
    ("Comment", || json!("")),
    ("PriceClass", || json!("PriceClass_All")),
    ("Enabled", || json!(true)),
    (
        "ViewerCertificate",
        || json!({"CloudFrontDefaultCertificate": true}),
    ),
    (
        "Restrictions",
        || json!({"GeoRestriction": {"RestrictionType": "none", "Quantity": 0}}),
    ),
    ("WebACLId", || json!("")),
    ("HttpVersion", || json!("http1.1")),
    ("IsIPV6Enabled", || json!(false)),
    ("Staging", || json!(false)),
];

impl View {
    fn distribution(&self) -> Value {
        json!({
            "Id": self.id,
            "ARN": arn(&self.id),
            "Status": self.status,
            "LastModifiedTime": self.modified,
            "InProgressInvalidationBatches": 0,
            "DomainName": self.domain,
            "ActiveTrustedSigners": {"Enabled": false, "Quantity": 0},
            "ActiveTrustedKeyGroups": {"Enabled": false, "Quantity": 0},
            "DistributionConfig": self.config,
        })
    }

    fn summary(&self) -> Value {
        let mut s = json!({
            "Id": self.id,
            "ARN": arn(&self.id),
            "ETag": self.etag,
            "Status": self.status,
            "LastModifiedTime": self.modified,
            "DomainName": self.domain,
        });
        for (k, default) in SUMMARY_MEMBERS {
            s[k] = self.config.get(k).cloned().unwrap_or_else(default);
        }
        s
    }

    fn with_etag(&self, mut r: Response) -> Response {
        r.headers.push(("ETag", self.etag.clone()));
        r
    }
}

fn invalidation_view(i: &Invalidation) -> Value {
    json!({
        "Id": i.id,
        "Status": i.status,
        "CreateTime": i.create_time,
        "InvalidationBatch": {
            "Paths": {"Quantity": i.paths.len(), "Items": i.paths},
            "CallerReference": i.caller_reference,
        },
    })
}

/// Header values must stay one line of visible ASCII.
fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
        .collect()
}

impl Api {
    /// Answers one API request (authenticated here).
    pub fn handle(&self, req: &Request<'_>) -> Response {
        let request_id = random_id('R').to_ascii_lowercase();
        let mut resp = match self.dispatch(req) {
            Ok(r) => r,
            Err(Error(code, status, message)) => {
                if status >= 500 {
                    tracing::error!(code, message, "CloudFront API");
                } else {
                    tracing::debug!(code, message, "CloudFront API refused a request");
                }
                Response {
                    status,
                    body: xml::error(code, &message, &request_id),
                    headers: Vec::new(),
                }
            }
        };
        resp.headers.push(("x-amzn-RequestId", request_id));
        resp
    }

    fn dispatch(&self, req: &Request<'_>) -> Result<Response> {
        if self.keys.is_empty() {
            return Err(Error(
                "AccessDenied",
                403,
                "no [[admin.access_keys]] are configured: the CloudFront API is closed".into(),
            ));
        }
        let signed = sigv4::Request {
            method: req.method,
            target: req.target,
            headers: req.headers,
            body: req.body,
        };
        let key = sigv4::verify(&self.keys, &signed, std::time::SystemTime::now()).map_err(|r| {
            let (code, status) = r.code();
            Error(code, status, r.message())
        })?;
        let (path, query) = req.target.split_once('?').unwrap_or((req.target, ""));
        let rest = path.strip_prefix("/2020-05-31/").unwrap_or("");
        let parts: Vec<&str> = rest.split('/').collect();
        let if_match = req.header("if-match");
        let resp = match (req.method, parts.as_slice()) {
            ("POST", ["distribution"]) => self.create(req.body, &key),
            ("GET", ["distribution"]) => self.list(query),
            ("GET", ["distribution", id]) => self.get(id, false),
            ("GET", ["distribution", id, "config"]) => self.get(id, true),
            ("PUT", ["distribution", id, "config"]) => self.update(id, if_match, req.body, &key),
            ("DELETE", ["distribution", id]) => self.delete(id, if_match, &key),
            ("POST", ["distribution", id, "invalidation"]) => self.create_invalidation(id, req.body),
            ("GET", ["distribution", id, "invalidation"]) => self.list_invalidations(id, query),
            ("GET", ["distribution", id, "invalidation", inv]) => self.get_invalidation(id, inv),
            _ => Err(Error(
                "NotImplemented",
                501,
                format!("slabfront does not implement {} {path}", req.method),
            )),
        }?;
        Ok(resp)
    }

    fn lock(&self) -> (MutexGuard<'_, Config>, MutexGuard<'_, Inner>) {
        // Always the file before the state: the one order every caller takes them in.
        let file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (file, inner)
    }

    fn file_view(&self, d: &Distribution) -> View {
        let config = config::cloudfront::api::distribution_to_json(d);
        View {
            id: hashed_id('E', &d.name),
            etag: hashed_id('E', &config.to_string()),
            domain: d.name.clone(),
            modified: self.started.clone(),
            config,
            status: "Deployed",
            name: d.name.clone(),
            from_file: true,
        }
    }

    fn record_view(&self, inner: &Inner, r: &Record) -> View {
        View {
            id: r.id.clone(),
            etag: r.etag.clone(),
            domain: r.domain_name.clone(),
            modified: r.last_modified_time.clone(),
            config: r.distribution_config.clone(),
            status: self.status(inner.changed.get(&r.id).copied().unwrap_or(0)),
            name: r.domain_name.clone(),
            from_file: false,
        }
    }

    fn view(&self, file: &Config, inner: &Inner, id: &str) -> Result<View> {
        if let Some(r) = inner.store.records.get(id) {
            return Ok(self.record_view(inner, r));
        }
        file.distributions
            .iter()
            .find(|d| hashed_id('E', &d.name) == id)
            .map(|d| self.file_view(d))
            .ok_or_else(|| {
                Error(
                    "NoSuchDistribution",
                    404,
                    format!("The specified distribution does not exist: {id}"),
                )
            })
    }

    /// Names `d` would claim that another distribution (of the file or the API) has.
    fn check_names(
        &self,
        file: &Config,
        inner: &Inner,
        d: &Distribution,
        except: Option<&str>,
    ) -> Result<()> {
        let others = file.distributions.iter().filter(|d| !d.implicit).chain(
            inner
                .mapped
                .iter()
                .filter(|(id, _)| Some(id.as_str()) != except)
                .map(|(_, d)| d),
        );
        for o in others {
            for n in d.names() {
                if o.names().any(|m| m.eq_ignore_ascii_case(n)) {
                    return Err(Error(
                        "CNAMEAlreadyExists",
                        409,
                        format!("One or more of the CNAMEs you provided are already associated with a different resource: {n}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn mapped(&self, dc: &Value, domain: &str) -> Result<config::cloudfront::api::Mapped> {
        let m = config::cloudfront::api::distribution_from_json(dc, domain).map_err(|e| invalid(e.0))?;
        for w in &m.ignored {
            tracing::warn!(
                distribution = domain,
                "CloudFront API: accepted but not applied: {w}"
            );
        }
        Ok(m)
    }

    /// Keeps `record` and its mapping, and asks for a deployment.
    fn commit(&self, inner: &mut Inner, record: Record, d: Distribution) -> Result<()> {
        let id = record.id.clone();
        inner.store.save(record).map_err(internal)?;
        inner.mapped.insert(id.clone(), d);
        let g = self.bump();
        inner.changed.insert(id, g);
        Ok(())
    }

    fn create(&self, body: &[u8], key: &str) -> Result<Response> {
        let dc = parse_body(body, "DistributionConfig")?;
        let caller = caller_reference(&dc)?;
        // Mapped before taking the lock: it is the slow part, and other calls wait on the lock.
        // Domain names are 13 random characters: they do not collide.
        let domain = format!("{}.{}", random_id('d').to_ascii_lowercase(), self.domain);
        let m = self.mapped(&dc, &domain)?;
        let (file, mut inner) = self.lock();
        let same = inner.store.records.values().find(|r| {
            r.distribution_config
                .get("CallerReference")
                .and_then(Value::as_str)
                == Some(&caller)
        });
        if let Some(r) = same {
            if r.distribution_config != dc {
                return Err(Error(
                    "DistributionAlreadyExists",
                    409,
                    format!("The caller reference that you are using to create a distribution is associated with another distribution: {}", r.id),
                ));
            }
            let v = self.record_view(&inner, r);
            return Ok(v.with_etag(xml_response(201, "Distribution", &v.distribution())));
        }
        let id = loop {
            let id = random_id('E');
            if !inner.store.records.contains_key(&id) {
                break id;
            }
        };
        self.check_names(&file, &inner, &m.distribution, None)?;
        let record = Record {
            id: id.clone(),
            etag: random_id('E'),
            domain_name: domain.clone(),
            last_modified_time: now_iso(),
            distribution_config: dc,
        };
        self.commit(&mut inner, record, m.distribution)?;
        tracing::info!(id, domain, key, "CloudFront API: distribution created");
        let r = &inner.store.records[&id];
        let v = self.record_view(&inner, r);
        let mut resp = v.with_etag(xml_response(201, "Distribution", &v.distribution()));
        resp.headers
            .push(("Location", format!("/2020-05-31/distribution/{id}")));
        if !m.ignored.is_empty() {
            resp.headers
                .push(("X-Slabfront-Ignored", header_safe(&m.ignored.join("; "))));
        }
        Ok(resp)
    }

    fn get(&self, id: &str, config_only: bool) -> Result<Response> {
        let (file, inner) = self.lock();
        let v = self.view(&file, &inner, id)?;
        Ok(if config_only {
            v.with_etag(xml_response(200, "DistributionConfig", &v.config))
        } else {
            v.with_etag(xml_response(200, "Distribution", &v.distribution()))
        })
    }

    fn writable(&self, v: &View, if_match: Option<&str>, what: &'static str) -> Result<()> {
        if v.from_file {
            return Err(Error(
                what,
                400,
                format!(
                    "distribution {} ({}) is defined in slabfront's configuration file; change it there and reload (SIGHUP)",
                    v.id, v.name
                ),
            ));
        }
        match if_match {
            None | Some("") => Err(Error(
                "InvalidIfMatchVersion",
                400,
                "The If-Match version is missing or not valid for the resource.".into(),
            )),
            Some(e) if e != v.etag => Err(Error(
                "PreconditionFailed",
                412,
                "The precondition given in one or more of the request header fields evaluated to false."
                    .into(),
            )),
            Some(_) => Ok(()),
        }
    }

    fn update(&self, id: &str, if_match: Option<&str>, body: &[u8], key: &str) -> Result<Response> {
        let dc = parse_body(body, "DistributionConfig")?;
        let (file, mut inner) = self.lock();
        let v = self.view(&file, &inner, id)?;
        self.writable(&v, if_match, "IllegalUpdate")?;
        if caller_reference(&dc)?
            != v.config
                .get("CallerReference")
                .and_then(Value::as_str)
                .unwrap_or("")
        {
            return Err(Error(
                "IllegalUpdate",
                400,
                "CallerReference cannot be changed by an update".into(),
            ));
        }
        let m = self.mapped(&dc, &v.domain)?;
        self.check_names(&file, &inner, &m.distribution, Some(id))?;
        let record = Record {
            id: id.to_string(),
            etag: random_id('E'),
            domain_name: v.domain.clone(),
            last_modified_time: now_iso(),
            distribution_config: dc,
        };
        self.commit(&mut inner, record, m.distribution)?;
        tracing::info!(id, key, "CloudFront API: distribution updated");
        let v = self.record_view(&inner, &inner.store.records[id]);
        let mut resp = v.with_etag(xml_response(200, "Distribution", &v.distribution()));
        if !m.ignored.is_empty() {
            resp.headers
                .push(("X-Slabfront-Ignored", header_safe(&m.ignored.join("; "))));
        }
        Ok(resp)
    }

    fn delete(&self, id: &str, if_match: Option<&str>, key: &str) -> Result<Response> {
        let (file, mut inner) = self.lock();
        let v = self.view(&file, &inner, id)?;
        self.writable(&v, if_match, "IllegalDelete")?;
        let enabled = inner.mapped.get(id).is_some_and(|d| d.enabled);
        if enabled || v.status != "Deployed" {
            return Err(Error(
                "DistributionNotDisabled",
                409,
                "The distribution you are trying to delete has not been disabled (or disabling it is not deployed yet).".into(),
            ));
        }
        inner.store.remove(id).map_err(internal)?;
        inner.mapped.remove(id);
        inner.changed.remove(id);
        self.bump();
        tracing::info!(id, key, "CloudFront API: distribution deleted");
        Ok(Response {
            status: 204,
            body: String::new(),
            headers: Vec::new(),
        })
    }

    fn all_views(&self, file: &Config, inner: &Inner) -> Vec<View> {
        let mut all: Vec<View> = file.distributions.iter().map(|d| self.file_view(d)).collect();
        all.extend(inner.store.records.values().map(|r| self.record_view(inner, r)));
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    fn list(&self, query: &str) -> Result<Response> {
        let max = max_items(query)?;
        let marker = query_param(query, "Marker").unwrap_or_default();
        let (file, inner) = self.lock();
        let after: Vec<View> = self
            .all_views(&file, &inner)
            .into_iter()
            .filter(|v| marker.is_empty() || v.id.as_str() > marker.as_str())
            .collect();
        let truncated = after.len() > max;
        let page = &after[..after.len().min(max)];
        let mut list = json!({
            "Marker": marker,
            "MaxItems": max,
            "IsTruncated": truncated,
            "Quantity": page.len(),
        });
        if truncated {
            list["NextMarker"] = json!(page.last().map(|v| v.id.clone()));
        }
        if !page.is_empty() {
            list["Items"] = Value::Array(page.iter().map(View::summary).collect());
        }
        Ok(xml_response(200, "DistributionList", &list))
    }

    fn create_invalidation(&self, id: &str, body: &[u8]) -> Result<Response> {
        let batch = parse_body(body, "InvalidationBatch")?;
        let caller = caller_reference(&batch)?;
        let paths: Vec<String> = batch["Paths"]["Items"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        crate::admin::check_paths(&paths).map_err(|e| invalid(format!("Paths: {e}")))?;
        let (file, mut inner) = self.lock();
        let v = self.view(&file, &inner, id)?;
        let mut list = inner.invalidations_of(id);
        if let Some(i) = list.iter().find(|i| i.caller_reference == caller) {
            if i.paths != paths {
                return Err(Error(
                    "InvalidationBatchAlreadySubmitted",
                    400,
                    format!("Invalidation batch specified is already submitted: {}", i.id),
                ));
            }
            return Ok(xml_response(201, "Invalidation", &invalidation_view(i)));
        }
        let shared = self.shared.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let removed = shared.as_ref().map_or(0, |s| {
            let n = s.invalidate_in(&crate::sites::key_prefix(&v.name), &paths);
            // Tombstones are written into the slab mapping: they survive a crash.
            let _ = s.store.flush();
            n
        });
        let inv = Invalidation {
            id: loop {
                let i = random_id('I');
                if !list.iter().any(|x| x.id == i) {
                    break i;
                }
            },
            caller_reference: caller,
            create_time: now_iso(),
            paths,
            status: "Completed".into(),
        };
        list.push(inv.clone());
        inner.store.save_invalidations(id, list).map_err(internal)?;
        tracing::info!(distribution = id, invalidation = inv.id, paths = ?inv.paths, removed, "CloudFront API: invalidation completed");
        let mut resp = xml_response(201, "Invalidation", &invalidation_view(&inv));
        resp.headers.push((
            "Location",
            format!("/2020-05-31/distribution/{id}/invalidation/{}", inv.id),
        ));
        Ok(resp)
    }

    fn list_invalidations(&self, id: &str, query: &str) -> Result<Response> {
        let max = max_items(query)?;
        let marker = query_param(query, "Marker").unwrap_or_default();
        let (file, inner) = self.lock();
        self.view(&file, &inner, id)?;
        let all = inner.invalidations_of(id);
        // Newest first; the marker is the last id of the previous page.
        let newest: Vec<&Invalidation> = all.iter().rev().collect();
        let start = match marker.as_str() {
            "" => 0,
            m => newest
                .iter()
                .position(|i| i.id == m)
                .map_or(newest.len(), |p| p + 1),
        };
        let rest = &newest[start.min(newest.len())..];
        let truncated = rest.len() > max;
        let page = &rest[..rest.len().min(max)];
        let mut list = json!({
            "Marker": marker,
            "MaxItems": max,
            "IsTruncated": truncated,
            "Quantity": page.len(),
        });
        if truncated {
            list["NextMarker"] = json!(page.last().map(|i| i.id.clone()));
        }
        if !page.is_empty() {
            list["Items"] = Value::Array(
                page.iter()
                    .map(|i| json!({"Id": i.id, "CreateTime": i.create_time, "Status": i.status}))
                    .collect(),
            );
        }
        Ok(xml_response(200, "InvalidationList", &list))
    }

    fn get_invalidation(&self, id: &str, inv: &str) -> Result<Response> {
        let (file, inner) = self.lock();
        self.view(&file, &inner, id)?;
        let all = inner.invalidations_of(id);
        let i = all.iter().find(|i| i.id == inv).ok_or_else(|| {
            Error(
                "NoSuchInvalidation",
                404,
                format!("The specified invalidation does not exist: {inv}"),
            )
        })?;
        Ok(xml_response(200, "Invalidation", &invalidation_view(i)))
    }
}

impl Inner {
    fn invalidations_of(&self, id: &str) -> Vec<Invalidation> {
        self.store.invalidations.get(id).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_have_cloudfront_shapes_and_queries_decode() {
        let id = random_id('E');
        assert_eq!(id.len(), 14);
        assert!(id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        assert_eq!(
            hashed_id('E', "www.example.com"),
            hashed_id('E', "www.example.com")
        );
        assert_eq!(query_param("Marker=E1%2B&MaxItems=5", "Marker").unwrap(), "E1+");
        assert_eq!(max_items("MaxItems=5").ok(), Some(5));
        assert!(max_items("MaxItems=x").is_err());
        assert!(now_iso().ends_with('Z'));
        let bad = json!({"Aliases": {"Quantity": 2, "Items": ["a"]}});
        assert!(quantities(&bad, "DistributionConfig").is_err());
    }
}
