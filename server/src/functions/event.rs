//! The event object CloudFront passes to a function, and what a function may return: read-only
//! fields, headers CloudFront does not expose or lets no function change, size limits.

use super::limits::Limits;
use super::{FnContext, FnError, FnOutcome, FnRequest, FnResponse, OriginChoice, SetCookie};
use serde_json::{json, Map, Value};

/// Which event ran, with what the function was given (to check read-only parts against).
pub(crate) enum EventKind<'a> {
    Request { original: &'a FnRequest },
    Response { original: &'a FnResponse },
}

/// Headers CloudFront never exposes to a function and no function may add.
pub(crate) fn disallowed(name: &str) -> bool {
    const EXACT: [&str; 22] = [
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "trailer",
        "upgrade",
        "x-accel-buffering",
        "x-accel-charset",
        "x-accel-limit-rate",
        "x-accel-redirect",
        "x-amzn-auth",
        "x-amzn-cf-billing",
        "x-amzn-cf-id",
        "x-amzn-cf-xff",
        "x-amzn-errortype",
        "x-amzn-fle-profile",
        "x-amzn-header-count",
        "x-amzn-header-order",
        "x-amzn-lambda-integration-tag",
        "x-amzn-requestid",
    ];
    EXACT.contains(&name)
        || matches!(name, "x-cache" | "x-forwarded-proto" | "x-real-ip")
        || name.starts_with("x-amz-cf-")
        || name.starts_with("x-edge-")
}

/// Headers a function can read but not add, change or remove.
fn read_only(name: &str, response: bool) -> bool {
    if response {
        matches!(
            name,
            "content-encoding" | "content-length" | "transfer-encoding" | "warning" | "via"
        )
    } else {
        matches!(name, "content-length" | "host" | "transfer-encoding" | "via")
    }
}

/// `{name: {value, multiValue?}}` from pairs in order (CloudFront's structure for query
/// strings, headers and cookies: `multiValue` only when a name repeats).
fn fields<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    let mut out: Map<String, Value> = Map::new();
    for (name, value) in pairs {
        match out.get_mut(name) {
            None => {
                out.insert(name.to_string(), json!({ "value": value }));
            }
            Some(Value::Object(entry)) => {
                let first = entry.get("value").cloned().unwrap_or(Value::Null);
                let multi = entry
                    .entry("multiValue")
                    .or_insert_with(|| json!([{ "value": first }]));
                if let Value::Array(list) = multi {
                    list.push(json!({ "value": value }));
                }
            }
            Some(_) => {}
        }
    }
    Value::Object(out)
}

fn set_cookies(cookies: &[SetCookie]) -> Value {
    let mut out: Map<String, Value> = Map::new();
    for c in cookies {
        let item = json!({ "value": c.value, "attributes": c.attributes });
        match out.get_mut(&c.name) {
            None => {
                let mut first = item.clone();
                if let Value::Object(o) = &mut first {
                    o.insert("multiValue".into(), json!([item]));
                }
                out.insert(c.name.clone(), first);
            }
            Some(Value::Object(entry)) => {
                if let Some(Value::Array(list)) = entry.get_mut("multiValue") {
                    list.push(item);
                }
            }
            Some(_) => {}
        }
    }
    Value::Object(out)
}

fn exposed(headers: &[(String, String)], skip: &str) -> Value {
    fields(
        headers
            .iter()
            .filter(|(n, _)| n != skip && !disallowed(n))
            .map(|(n, v)| (n.as_str(), v.as_str())),
    )
}

fn request_json(r: &FnRequest) -> Value {
    json!({
        "method": r.method,
        "uri": r.uri,
        "querystring": fields(r.querystring.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
        "headers": exposed(&r.headers, "cookie"),
        "cookies": fields(r.cookies.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
    })
}

#[cfg(test)]
fn context_json(cx: &FnContext, event_type: &str) -> Value {
    json!({
        "distributionDomainName": cx.distribution_domain_name,
        "distributionId": cx.distribution_id,
        "eventType": event_type,
        "requestId": cx.request_id,
    })
}

/// The event of a viewer-request function, as JSON text (the engine builds it directly,
/// `event_js.rs`; this is the reference its tests compare with).
#[cfg(test)]
pub(crate) fn viewer_request_event(cx: &FnContext, request: &FnRequest) -> String {
    json!({
        "version": "1.0",
        "context": context_json(cx, "viewer-request"),
        "viewer": { "ip": cx.viewer_ip },
        "request": request_json(request),
    })
    .to_string()
}

/// The event of a viewer-response function, as JSON text.
#[cfg(test)]
pub(crate) fn viewer_response_event(cx: &FnContext, request: &FnRequest, response: &FnResponse) -> String {
    json!({
        "version": "1.0",
        "context": context_json(cx, "viewer-response"),
        "viewer": { "ip": cx.viewer_ip },
        "request": request_json(request),
        "response": {
            "statusCode": response.status,
            "statusDescription": response.status_description,
            "headers": exposed(&response.headers, "set-cookie"),
            "cookies": set_cookies(&response.cookies),
        },
    })
    .to_string()
}

/// The values of one field: `multiValue` when present, else `value`.
fn values_of(name: &str, field: &Value, what: &str) -> Result<Vec<(String, String)>, FnError> {
    let bad = || FnError::InvalidReturn(format!("{what} {name:?}: expected {{ value: \"...\" }}"));
    let obj = field.as_object().ok_or_else(bad)?;
    if let Some(Value::Array(list)) = obj.get("multiValue") {
        if !list.is_empty() {
            return list
                .iter()
                .map(|item| {
                    let v = item.get("value").ok_or_else(bad)?;
                    let attrs = item.get("attributes").and_then(Value::as_str).unwrap_or("");
                    Ok((scalar(v).ok_or_else(bad)?, attrs.to_string()))
                })
                .collect();
        }
    }
    let v = obj.get("value").ok_or_else(bad)?;
    let attrs = obj.get("attributes").and_then(Value::as_str).unwrap_or("");
    Ok(vec![(scalar(v).ok_or_else(bad)?, attrs.to_string())])
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn clean(text: &str, what: &str) -> Result<(), FnError> {
    if text.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(FnError::InvalidReturn(format!("{what} contains CR, LF or NUL")));
    }
    Ok(())
}

fn token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Header pairs from a returned `headers` object, names lower-cased.
fn header_pairs(v: Option<&Value>) -> Result<Vec<(String, String)>, FnError> {
    let mut out = Vec::new();
    let Some(v) = v else { return Ok(out) };
    let obj = v
        .as_object()
        .ok_or_else(|| FnError::InvalidReturn("headers must be an object".into()))?;
    for (name, field) in obj {
        let lower = name.to_ascii_lowercase();
        if !token(&lower) {
            return Err(FnError::InvalidReturn(format!(
                "{name:?} is not a valid header name"
            )));
        }
        for (value, _) in values_of(name, field, "header")? {
            clean(&value, &format!("header {name:?}"))?;
            out.push((lower.clone(), value));
        }
    }
    Ok(out)
}

fn pairs(v: Option<&Value>, what: &str) -> Result<Vec<(String, String)>, FnError> {
    let mut out = Vec::new();
    let Some(v) = v else { return Ok(out) };
    let obj = v
        .as_object()
        .ok_or_else(|| FnError::InvalidReturn(format!("{what} must be an object")))?;
    for (name, field) in obj {
        clean(name, what)?;
        for (value, _) in values_of(name, field, what)? {
            clean(&value, what)?;
            out.push((name.clone(), value));
        }
    }
    Ok(out)
}

/// Read-only and disallowed headers: `after` may differ from `before` in neither.
fn check_headers(
    before: &[(String, String)],
    after: &[(String, String)],
    response: bool,
) -> Result<(), FnError> {
    if let Some((n, _)) = after.iter().find(|(n, _)| disallowed(n)) {
        return Err(FnError::Forbidden(format!(
            "header {n:?} cannot be set by a function"
        )));
    }
    let visible = |list: &[(String, String)], name: &str| -> Vec<String> {
        list.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    };
    for (n, _) in before.iter().chain(after.iter()) {
        if read_only(n, response) && visible(before, n) != visible(after, n) {
            return Err(FnError::Forbidden(format!("header {n:?} is read-only")));
        }
    }
    Ok(())
}

/// What the returned JSON means for this event, checked as CloudFront checks it.
#[cfg(test)]
pub(crate) fn outcome(
    json: &str,
    kind: EventKind<'_>,
    origin: Option<OriginChoice>,
    limits: &Limits,
) -> FnOutcome {
    match serde_json::from_str(json) {
        Ok(v) => outcome_value(v, kind, origin, limits),
        Err(e) => FnOutcome::Error(FnError::InvalidReturn(e.to_string())),
    }
}

/// As [`outcome`], on the value itself.
pub(crate) fn outcome_value(
    value: Value,
    kind: EventKind<'_>,
    origin: Option<OriginChoice>,
    limits: &Limits,
) -> FnOutcome {
    let result = match kind {
        EventKind::Request { original } => match value.get("statusCode") {
            Some(_) => response_of(&value, None, limits).map(FnOutcome::Respond),
            None => {
                request_of(&value, original, limits).map(|request| FnOutcome::Continue { request, origin })
            }
        },
        EventKind::Response { original } => {
            response_of(&value, Some(original), limits).map(FnOutcome::Response)
        }
    };
    result.unwrap_or_else(FnOutcome::Error)
}

fn request_of(v: &Value, original: &FnRequest, limits: &Limits) -> Result<FnRequest, FnError> {
    let obj = v.as_object().ok_or_else(|| {
        FnError::InvalidReturn("a viewer-request function returns the request or a response object".into())
    })?;
    let uri = obj
        .get("uri")
        .and_then(Value::as_str)
        .ok_or_else(|| FnError::InvalidReturn("request.uri must be a string".into()))?;
    if !uri.starts_with('/') || uri.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(FnError::InvalidReturn(format!(
            "request.uri {uri:?} is not a valid path"
        )));
    }
    if let Some(m) = obj.get("method") {
        if m.as_str() != Some(original.method.as_str()) {
            return Err(FnError::Forbidden("request.method is read-only".into()));
        }
    }
    let request = FnRequest {
        method: original.method.clone(),
        uri: uri.to_string(),
        querystring: pairs(obj.get("querystring"), "querystring")?,
        headers: header_pairs(obj.get("headers"))?,
        cookies: pairs(obj.get("cookies"), "cookies")?,
    };
    let original_headers: Vec<(String, String)> = original
        .headers
        .iter()
        .filter(|(n, _)| n != "cookie" && !disallowed(n))
        .cloned()
        .collect();
    check_headers(&original_headers, &request.headers, false)?;
    if request.headers.iter().any(|(n, _)| n == "cookie") {
        return Err(FnError::InvalidReturn(
            "set cookies through request.cookies, not a cookie header".into(),
        ));
    }
    let query: usize = request
        .querystring
        .iter()
        .map(|(n, v)| n.len() + v.len() + 2)
        .sum();
    if request.uri.len() + query > limits.max_url_bytes {
        return Err(FnError::TooLarge(format!(
            "the URL is {} bytes, the limit is {}",
            request.uri.len() + query,
            limits.max_url_bytes
        )));
    }
    let total = request.uri.len()
        + query
        + request
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum::<usize>()
        + request
            .cookies
            .iter()
            .map(|(n, v)| n.len() + v.len() + 3)
            .sum::<usize>();
    if total > limits.max_request_bytes {
        return Err(FnError::TooLarge(format!(
            "the request is {total} bytes, the limit is {}",
            limits.max_request_bytes
        )));
    }
    Ok(request)
}

fn response_of(v: &Value, original: Option<&FnResponse>, limits: &Limits) -> Result<FnResponse, FnError> {
    let what = if original.is_some() {
        "viewer-response"
    } else {
        "viewer-request"
    };
    let obj = v
        .as_object()
        .ok_or_else(|| FnError::InvalidReturn(format!("a {what} function must return a response object")))?;
    let status = obj
        .get("statusCode")
        .and_then(Value::as_u64)
        .filter(|s| (200..=599).contains(s))
        .ok_or_else(|| {
            FnError::InvalidReturn("response.statusCode must be an integer from 200 to 599".into())
        })?;
    let description = match obj.get("statusDescription") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => {
            clean(s, "statusDescription")?;
            s.clone()
        }
        Some(_) => {
            return Err(FnError::InvalidReturn(
                "response.statusDescription must be a string".into(),
            ))
        }
    };
    let headers = header_pairs(obj.get("headers"))?;
    if headers.iter().any(|(n, _)| n == "set-cookie") {
        return Err(FnError::InvalidReturn(
            "set cookies through response.cookies, not a set-cookie header".into(),
        ));
    }
    let mut cookies = Vec::new();
    if let Some(c) = obj.get("cookies") {
        let map = c
            .as_object()
            .ok_or_else(|| FnError::InvalidReturn("response.cookies must be an object".into()))?;
        for (name, field) in map {
            clean(name, "cookie name")?;
            for (value, attributes) in values_of(name, field, "cookie")? {
                clean(&value, "cookie")?;
                clean(&attributes, "cookie attributes")?;
                cookies.push(SetCookie {
                    name: name.clone(),
                    value,
                    attributes,
                });
            }
        }
    }
    let body = match (obj.get("body"), original) {
        (None | Some(Value::Null), _) => None,
        (Some(_), Some(_)) => {
            return Err(FnError::Forbidden(
                "a viewer-response function cannot set the body".into(),
            ))
        }
        (Some(b), None) => Some(body_of(b)?),
    };
    match original {
        Some(o) => {
            let before: Vec<(String, String)> = o
                .headers
                .iter()
                .filter(|(n, _)| n != "set-cookie" && !disallowed(n))
                .cloned()
                .collect();
            check_headers(&before, &headers, true)?;
        }
        None => {
            check_headers(&[], &headers, false)?;
            if let Some((n, _)) = headers
                .iter()
                .find(|(n, _)| matches!(n.as_str(), "content-length" | "transfer-encoding"))
            {
                return Err(FnError::Forbidden(format!("header {n:?} is set by the server")));
            }
        }
    }
    let size = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>()
        + cookies.iter().map(|c| c.to_field().len() + 14).sum::<usize>()
        + body.as_ref().map_or(0, Vec::len);
    if original.is_none() && size > limits.max_response_bytes {
        return Err(FnError::TooLarge(format!(
            "the generated response is {size} bytes, the limit is {}",
            limits.max_response_bytes
        )));
    }
    Ok(FnResponse {
        status: status as u16,
        status_description: description,
        headers,
        cookies,
        body,
    })
}

/// A generated response's body: a string, or `{ data, encoding: "text" | "base64" }`.
fn body_of(v: &Value) -> Result<Vec<u8>, FnError> {
    match v {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Object(o) => {
            let data = o
                .get("data")
                .and_then(Value::as_str)
                .ok_or_else(|| FnError::InvalidReturn("response.body.data must be a string".into()))?;
            match o.get("encoding").and_then(Value::as_str).unwrap_or("text") {
                "text" => Ok(data.as_bytes().to_vec()),
                "base64" => super::modules::decode(data, "base64").map_err(FnError::InvalidReturn),
                other => Err(FnError::InvalidReturn(format!(
                    "response.body.encoding {other:?}: expected \"text\" or \"base64\""
                ))),
            }
        }
        _ => Err(FnError::InvalidReturn(
            "response.body must be a string or an object".into(),
        )),
    }
}

/// An event in CloudFront's JSON (what `aws cloudfront test-function` takes) as the plain
/// structs; `response` present means a viewer-response event.
pub(crate) fn from_test_event(v: &Value) -> Result<(FnContext, FnRequest, Option<FnResponse>), String> {
    let text = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    let cx = FnContext {
        distribution_domain_name: text("/context/distributionDomainName"),
        distribution_id: text("/context/distributionId"),
        request_id: text("/context/requestId"),
        viewer_ip: text("/viewer/ip"),
    };
    let req = v.get("request").ok_or("the event has no \"request\"")?;
    let method = req
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET")
        .to_string();
    let uri = req.get("uri").and_then(Value::as_str).unwrap_or("/").to_string();
    let request = FnRequest {
        method,
        uri,
        querystring: pairs(req.get("querystring"), "querystring").map_err(|e| e.to_string())?,
        headers: header_pairs(req.get("headers")).map_err(|e| e.to_string())?,
        cookies: pairs(req.get("cookies"), "cookies").map_err(|e| e.to_string())?,
    };
    let response = match v.get("response") {
        None | Some(Value::Null) => None,
        Some(r) => Some(test_response(r).map_err(|e| format!("event.response: {e}"))?),
    };
    let event_type = text("/context/eventType");
    if !event_type.is_empty() && (event_type == "viewer-response") != response.is_some() {
        return Err(format!(
            "context.eventType is {event_type:?} but the event {} a response",
            if response.is_some() { "has" } else { "has no" }
        ));
    }
    Ok((cx, request, response))
}

/// A test event's response, taken as given (nothing to check it against).
fn test_response(r: &Value) -> Result<FnResponse, FnError> {
    let status = r.get("statusCode").and_then(Value::as_u64).unwrap_or(200);
    let mut cookies = Vec::new();
    if let Some(Value::Object(map)) = r.get("cookies") {
        for (name, field) in map {
            for (value, attributes) in values_of(name, field, "cookie")? {
                cookies.push(SetCookie {
                    name: name.clone(),
                    value,
                    attributes,
                });
            }
        }
    }
    Ok(FnResponse {
        status: u16::try_from(status).unwrap_or(200),
        status_description: r
            .get("statusDescription")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        headers: header_pairs(r.get("headers"))?,
        cookies,
        body: None,
    })
}

/// An outcome as CloudFront's test output shows it: `{"request": ...}` or
/// `{"response": ...}` (and `"origin"` when the function chose one).
pub(crate) fn outcome_json(outcome: &FnOutcome) -> Value {
    let response = |r: &FnResponse| {
        let mut v = json!({
            "statusCode": r.status,
            "statusDescription": r.status_description,
            "headers": fields(r.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
            "cookies": set_cookies(&r.cookies),
        });
        if let Some(b) = &r.body {
            v["body"] = json!({ "data": String::from_utf8_lossy(b), "encoding": "text" });
        }
        json!({ "response": v })
    };
    match outcome {
        FnOutcome::Continue { request, origin } => {
            let mut v = json!({ "request": request_json(request) });
            match origin {
                Some(OriginChoice::ById(id)) => v["origin"] = json!({ "originId": id }),
                Some(OriginChoice::Update(params)) => v["origin"] = params.clone(),
                None => {}
            }
            v
        }
        FnOutcome::Respond(r) | FnOutcome::Response(r) => response(r),
        FnOutcome::Error(_) => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> FnRequest {
        FnRequest {
            method: "GET".into(),
            uri: "/a".into(),
            querystring: vec![("x".into(), "1".into()), ("x".into(), "2".into())],
            headers: vec![
                ("host".into(), "example.org".into()),
                ("connection".into(), "keep-alive".into()),
                ("accept".into(), "*/*".into()),
            ],
            cookies: vec![("id".into(), "7".into())],
        }
    }

    #[test]
    fn event_has_cloudfronts_shape() {
        let e: Value = serde_json::from_str(&viewer_request_event(&FnContext::default(), &req())).unwrap();
        assert_eq!(e["version"], "1.0");
        assert_eq!(e["context"]["eventType"], "viewer-request");
        assert_eq!(e["request"]["querystring"]["x"]["value"], "1");
        assert_eq!(e["request"]["querystring"]["x"]["multiValue"][1]["value"], "2");
        assert_eq!(e["request"]["headers"]["host"]["value"], "example.org");
        assert!(e["request"]["headers"].get("connection").is_none(), "not exposed");
        assert_eq!(e["request"]["cookies"]["id"]["value"], "7");
    }

    #[test]
    fn returned_request_is_checked() {
        let limits = Limits::default();
        let original = req();
        let run = |json: &str| outcome(json, EventKind::Request { original: &original }, None, &limits);
        let ok = r#"{"method":"GET","uri":"/b","querystring":{},"headers":{"host":{"value":"example.org"},"X-New":{"value":"1"}},"cookies":{}}"#;
        match run(ok) {
            FnOutcome::Continue { request, .. } => {
                assert_eq!(request.uri, "/b");
                assert!(request.headers.contains(&("x-new".into(), "1".into())));
            }
            other => panic!("{other:?}"),
        }
        let host = r#"{"uri":"/b","headers":{"host":{"value":"evil"}}}"#;
        assert!(matches!(run(host), FnOutcome::Error(FnError::Forbidden(_))));
        let method = r#"{"method":"POST","uri":"/b","headers":{"host":{"value":"example.org"}}}"#;
        assert!(matches!(run(method), FnOutcome::Error(FnError::Forbidden(_))));
        let hop = r#"{"uri":"/b","headers":{"host":{"value":"example.org"},"upgrade":{"value":"h2c"}}}"#;
        assert!(matches!(run(hop), FnOutcome::Error(FnError::Forbidden(_))));
        let crlf = r#"{"uri":"/b","headers":{"host":{"value":"example.org"},"x":{"value":"a\r\nb: c"}}}"#;
        assert!(matches!(run(crlf), FnOutcome::Error(FnError::InvalidReturn(_))));
        assert!(matches!(run("42"), FnOutcome::Error(FnError::InvalidReturn(_))));
        assert!(matches!(
            run(r#"{"uri":"no-slash"}"#),
            FnOutcome::Error(FnError::InvalidReturn(_))
        ));
        let big = format!(r#"{{"statusCode":200,"body":"{}"}}"#, "x".repeat(41 * 1024));
        assert!(matches!(run(&big), FnOutcome::Error(FnError::TooLarge(_))));
    }

    #[test]
    fn returned_response_is_checked() {
        let limits = Limits::default();
        let original = FnResponse {
            status: 200,
            headers: vec![
                ("content-length".into(), "5".into()),
                ("etag".into(), "\"1\"".into()),
            ],
            ..Default::default()
        };
        let run = |json: &str| outcome(json, EventKind::Response { original: &original }, None, &limits);
        let ok = r#"{"statusCode":200,"headers":{"content-length":{"value":"5"},"x-frame-options":{"value":"DENY"}},"cookies":{"s":{"value":"1","attributes":"Path=/"}}}"#;
        match run(ok) {
            FnOutcome::Response(r) => {
                assert!(r.headers.contains(&("x-frame-options".into(), "DENY".into())));
                assert_eq!(r.cookies[0].to_field(), "s=1; Path=/");
            }
            other => panic!("{other:?}"),
        }
        let cl = r#"{"statusCode":200,"headers":{"content-length":{"value":"9"}}}"#;
        assert!(matches!(run(cl), FnOutcome::Error(FnError::Forbidden(_))));
        let body = r#"{"statusCode":200,"headers":{"content-length":{"value":"5"}},"body":"x"}"#;
        assert!(matches!(run(body), FnOutcome::Error(FnError::Forbidden(_))));
        assert!(matches!(
            run(r#"{"statusCode":"200"}"#),
            FnOutcome::Error(FnError::InvalidReturn(_))
        ));
    }
}
