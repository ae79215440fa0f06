//! The event object built directly as QuickJS values, and the returned value read back
//! directly, without going through JSON text on either side (which cost more than the
//! function itself). The shape is `event.rs`'s (`viewer_request_event`), checked equal by
//! the tests below.

use super::event::disallowed;
use super::{FnContext, FnRequest, FnResponse, SetCookie};
use rquickjs::{Array, Ctx, Object, Type, Value};

/// Deepest nesting read back from a returned value (a cycle is refused, as JSON.stringify
/// refuses it).
const MAX_DEPTH: usize = 16;

fn entry<'js>(ctx: &Ctx<'js>, value: &str, attributes: Option<&str>) -> rquickjs::Result<Object<'js>> {
    let e = Object::new(ctx.clone())?;
    e.set("value", value)?;
    if let Some(a) = attributes {
        e.set("attributes", a)?;
    }
    Ok(e)
}

/// `{name: {value, multiValue?}}`: `multiValue` only when a name repeats (cookies on a
/// response always have it).
fn fields<'js, 'a>(
    ctx: &Ctx<'js>,
    pairs: impl Iterator<Item = (&'a str, &'a str, Option<&'a str>)>,
    always_multi: bool,
) -> rquickjs::Result<Object<'js>> {
    let out = Object::new(ctx.clone())?;
    for (name, value, attributes) in pairs {
        match out.get::<_, Option<Object>>(name)? {
            None => {
                let e = entry(ctx, value, attributes)?;
                if always_multi {
                    let list = Array::new(ctx.clone())?;
                    list.set(0, entry(ctx, value, attributes)?)?;
                    e.set("multiValue", list)?;
                }
                out.set(name, e)?;
            }
            Some(e) => {
                let list = match e.get::<_, Option<Array>>("multiValue")? {
                    Some(list) => list,
                    None => {
                        let list = Array::new(ctx.clone())?;
                        let first: String = e.get("value")?;
                        list.set(0, entry(ctx, &first, None)?)?;
                        e.set("multiValue", list.clone())?;
                        list
                    }
                };
                list.set(list.len(), entry(ctx, value, attributes)?)?;
            }
        }
    }
    Ok(out)
}

fn headers<'js>(ctx: &Ctx<'js>, list: &[(String, String)], skip: &str) -> rquickjs::Result<Object<'js>> {
    fields(
        ctx,
        list.iter()
            .filter(|(n, _)| n != skip && !disallowed(n))
            .map(|(n, v)| (n.as_str(), v.as_str(), None)),
        false,
    )
}

fn request<'js, 'a>(ctx: &Ctx<'js>, r: &'a FnRequest) -> rquickjs::Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    o.set("method", r.method.as_str())?;
    o.set("uri", r.uri.as_str())?;
    let pairs = |l: &'a [(String, String)]| l.iter().map(|(n, v)| (n.as_str(), v.as_str(), None));
    o.set("querystring", fields(ctx, pairs(&r.querystring), false)?)?;
    o.set("headers", headers(ctx, &r.headers, "cookie")?)?;
    o.set("cookies", fields(ctx, pairs(&r.cookies), false)?)?;
    Ok(o)
}

fn set_cookies<'js>(ctx: &Ctx<'js>, cookies: &[SetCookie]) -> rquickjs::Result<Object<'js>> {
    fields(
        ctx,
        cookies
            .iter()
            .map(|c| (c.name.as_str(), c.value.as_str(), Some(c.attributes.as_str()))),
        true,
    )
}

/// The event of a viewer-request (no `response`) or viewer-response function.
pub(crate) fn event<'js>(
    ctx: &Ctx<'js>,
    cx: &FnContext,
    req: &FnRequest,
    response: Option<&FnResponse>,
) -> rquickjs::Result<Object<'js>> {
    let e = Object::new(ctx.clone())?;
    e.set("version", "1.0")?;
    let c = Object::new(ctx.clone())?;
    c.set("distributionDomainName", cx.distribution_domain_name.as_str())?;
    c.set("distributionId", cx.distribution_id.as_str())?;
    let kind = if response.is_some() {
        "viewer-response"
    } else {
        "viewer-request"
    };
    c.set("eventType", kind)?;
    c.set("requestId", cx.request_id.as_str())?;
    e.set("context", c)?;
    let v = Object::new(ctx.clone())?;
    v.set("ip", cx.viewer_ip.as_str())?;
    e.set("viewer", v)?;
    e.set("request", request(ctx, req)?)?;
    if let Some(r) = response {
        let o = Object::new(ctx.clone())?;
        o.set("statusCode", r.status)?;
        o.set("statusDescription", r.status_description.as_str())?;
        o.set("headers", headers(ctx, &r.headers, "set-cookie")?)?;
        o.set("cookies", set_cookies(ctx, &r.cookies)?)?;
        e.set("response", o)?;
    }
    Ok(e)
}

/// A returned value as `serde_json` reads JSON.stringify's text of it: own enumerable
/// properties, functions and `undefined` left out of objects (`null` in arrays). `None`
/// when it nests deeper than any event (a cycle).
pub(crate) fn to_json(v: &Value<'_>, depth: usize) -> rquickjs::Result<Option<serde_json::Value>> {
    use serde_json::Value as J;
    if depth > MAX_DEPTH {
        return Ok(None);
    }
    Ok(Some(match v.type_of() {
        Type::Bool => J::Bool(v.as_bool().unwrap_or(false)),
        Type::Int => J::from(v.as_int().unwrap_or(0)),
        Type::Float => {
            let f = v.as_float().unwrap_or(f64::NAN);
            serde_json::Number::from_f64(f).map_or(J::Null, J::Number)
        }
        Type::String => match v.as_string() {
            Some(s) => J::String(s.to_string()?),
            None => J::Null,
        },
        Type::Array => {
            let Some(a) = v.as_array() else {
                return Ok(Some(J::Null));
            };
            let mut out = Vec::with_capacity(a.len());
            for item in a.iter::<Value>() {
                let item = item?;
                match to_json(&item, depth + 1)? {
                    Some(j) => out.push(j),
                    None => return Ok(None),
                }
            }
            J::Array(out)
        }
        Type::Object | Type::Exception => {
            let Some(o) = v.as_object() else {
                return Ok(Some(J::Null));
            };
            let mut out = serde_json::Map::new();
            for prop in o.props::<String, Value>() {
                let (k, item) = prop?;
                if matches!(
                    item.type_of(),
                    Type::Undefined | Type::Function | Type::Constructor | Type::Symbol
                ) {
                    continue;
                }
                match to_json(&item, depth + 1)? {
                    Some(j) => {
                        out.insert(k, j);
                    }
                    None => return Ok(None),
                }
            }
            J::Object(out)
        }
        _ => J::Null,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn round_trip(cx: &FnContext, req: &FnRequest, resp: Option<&FnResponse>) -> serde_json::Value {
        let rt = rquickjs::Runtime::new().unwrap();
        let ctx = rquickjs::Context::full(&rt).unwrap();
        ctx.with(|ctx| {
            let e = event(&ctx, cx, req, resp).unwrap();
            to_json(&e.into_value(), 0).unwrap().unwrap()
        })
    }

    #[test]
    fn the_direct_event_is_the_json_event() {
        let cx = FnContext {
            distribution_domain_name: "d.example".into(),
            distribution_id: "E1".into(),
            request_id: "r1".into(),
            viewer_ip: "192.0.2.1".into(),
        };
        let req = FnRequest {
            method: "GET".into(),
            uri: "/a".into(),
            querystring: vec![
                ("x".into(), "1".into()),
                ("x".into(), "2".into()),
                ("y".into(), "".into()),
            ],
            headers: vec![
                ("host".into(), "example.org".into()),
                ("accept".into(), "a".into()),
                ("accept".into(), "b".into()),
                ("connection".into(), "keep-alive".into()),
            ],
            cookies: vec![("s".into(), "1".into())],
        };
        let resp = FnResponse {
            status: 200,
            status_description: "OK".into(),
            headers: vec![("content-type".into(), "text/plain".into())],
            cookies: vec![SetCookie::parse("a=1; Path=/"), SetCookie::parse("a=2")],
            body: None,
        };
        let want: serde_json::Value =
            serde_json::from_str(&super::super::event::viewer_request_event(&cx, &req)).unwrap();
        assert_eq!(round_trip(&cx, &req, None), want);
        let want: serde_json::Value =
            serde_json::from_str(&super::super::event::viewer_response_event(&cx, &req, &resp)).unwrap();
        assert_eq!(round_trip(&cx, &req, Some(&resp)), want);
    }
}
