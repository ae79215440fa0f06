//! CloudFront's REST/XML bodies to and from JSON in the shapes' form (what `aws cloudfront
//! get-distribution-config` prints), so the XML API and the JSON import share one mapping.
//!
//! XML carries no types: which members are booleans and numbers, and how list items are
//! named, comes from CloudFront's service model (botocore's `cloudfront/2020-05-31/service-2`).
//! A list is `<Quantity/>` and `<Items>` holding one element per item; in JSON, `Items` is an
//! array whatever its elements are called.

use quick_xml::events::Event;
use serde_json::{Map, Value};

/// The namespace of API version 2020-05-31.
pub const NS: &str = "http://cloudfront.amazonaws.com/doc/2020-05-31/";

/// Boolean members of the shapes this API reads and writes (service-2.json).
const BOOLS: &[&str] = &[
    "AdvertiseTrustStoreCaNames",
    "CloudFrontDefaultCertificate",
    "Compress",
    "Enabled",
    "IgnoreCertificateExpiry",
    "IncludeBody",
    "IncludeCookies",
    "IsIPV6Enabled",
    "IsTruncated",
    "QueryString",
    "Required",
    "SmoothStreaming",
    "Staging",
];

/// Integer members (and `StatusCode`, the item of `StatusCodes`).
const INTS: &[&str] = &[
    "ConnectionAttempts",
    "ConnectionTimeout",
    "DefaultTTL",
    "ErrorCachingMinTTL",
    "ErrorCode",
    "HTTPPort",
    "HTTPSPort",
    "InProgressInvalidationBatches",
    "MaxItems",
    "MaxTTL",
    "MinTTL",
    "OriginKeepaliveTimeout",
    "OriginReadTimeout",
    "Quantity",
    "ResponseCompletionTimeout",
    "StatusCode",
];

/// The element name of a list's items, by the list's own name.
fn item_tag(list: &str) -> &'static str {
    match list {
        "Aliases" => "CNAME",
        "Origins" => "Origin",
        "OriginGroups" => "OriginGroup",
        "Members" => "OriginGroupMember",
        "StatusCodes" => "StatusCode",
        "CacheBehaviors" => "CacheBehavior",
        "CustomErrorResponses" => "CustomErrorResponse",
        "AllowedMethods" | "CachedMethods" => "Method",
        "Headers" | "QueryStringCacheKeys" | "WhitelistedNames" => "Name",
        "CustomHeaders" => "OriginCustomHeader",
        "OriginSslProtocols" => "SslProtocol",
        "LambdaFunctionAssociations" => "LambdaFunctionAssociation",
        "FunctionAssociations" => "FunctionAssociation",
        "TrustedSigners" => "AwsAccountNumber",
        "TrustedKeyGroups" | "ActiveTrustedKeyGroups" => "KeyGroup",
        "ActiveTrustedSigners" => "Signer",
        "GeoRestriction" => "Location",
        "Paths" => "Path",
        "DistributionList" => "DistributionSummary",
        "InvalidationList" => "InvalidationSummary",
        "AliasICPRecordals" => "AliasICPRecordal",
        _ => "member",
    }
}

struct Frame {
    name: String,
    children: Vec<(String, Value)>,
    text: String,
}

fn leaf(name: &str, text: &str) -> Result<Value, String> {
    let t = text.trim();
    if BOOLS.contains(&name) {
        return match t {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("{name}: {t:?} is not true or false")),
        };
    }
    if INTS.contains(&name) {
        return t
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("{name}: {t:?} is not an integer"));
    }
    Ok(Value::String(text.to_string()))
}

fn close(f: Frame) -> Result<Value, String> {
    if f.name == "Items" {
        return Ok(Value::Array(f.children.into_iter().map(|(_, v)| v).collect()));
    }
    if f.children.is_empty() {
        return leaf(&f.name, &f.text);
    }
    let mut m = Map::new();
    for (k, v) in f.children {
        if m.insert(k.clone(), v).is_some() {
            return Err(format!("{}: the element {k} appears twice", f.name));
        }
    }
    Ok(Value::Object(m))
}

/// Parses a request body: the root element's name and its content as JSON.
pub fn parse(body: &[u8]) -> Result<(String, Value), String> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut stack: Vec<Frame> = Vec::new();
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("not well-formed XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) => stack.push(Frame {
                name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                children: Vec::new(),
                text: String::new(),
            }),
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let f = Frame {
                    name: name.clone(),
                    children: Vec::new(),
                    text: String::new(),
                };
                let v = close(f)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push((name, v)),
                    None => return Ok((name, v)),
                }
            }
            Event::Text(t) => {
                if let Some(f) = stack.last_mut() {
                    let decoded = t.decode().map_err(|e| e.to_string())?;
                    let text = quick_xml::escape::unescape(&decoded).map_err(|e| e.to_string())?;
                    f.text.push_str(&text);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(f) = stack.last_mut() {
                    let name = r.decode().map_err(|e| e.to_string())?;
                    let entity = format!("&{name};");
                    let text = quick_xml::escape::unescape(&entity).map_err(|e| e.to_string())?;
                    f.text.push_str(&text);
                }
            }
            Event::CData(c) => {
                if let Some(f) = stack.last_mut() {
                    f.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::End(_) => {
                let Some(f) = stack.pop() else {
                    return Err("an end tag without a start".into());
                };
                let name = f.name.clone();
                let v = close(f)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push((name, v)),
                    None => return Ok((name, v)),
                }
            }
            Event::Eof => return Err("the document ends early (or is empty)".into()),
            _ => {}
        }
        buf.clear();
    }
}

fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// Writes `v` as the element `name` (members in the order of the JSON object).
pub fn element(out: &mut String, name: &str, v: &Value) {
    match v {
        Value::Null => {}
        Value::Object(m) => {
            out.push('<');
            out.push_str(name);
            out.push('>');
            for (k, child) in m {
                match child {
                    Value::Array(items) if k == "Items" => {
                        out.push_str("<Items>");
                        let tag = item_tag(name);
                        for item in items {
                            element(out, tag, item);
                        }
                        out.push_str("</Items>");
                    }
                    Value::Array(items) => {
                        for item in items {
                            element(out, k, item);
                        }
                    }
                    _ => element(out, k, child),
                }
            }
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
        Value::Array(items) => {
            for item in items {
                element(out, name, item);
            }
        }
        Value::String(s) => {
            out.push('<');
            out.push_str(name);
            out.push('>');
            out.push_str(&escape(s));
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
        Value::Bool(_) | Value::Number(_) => {
            out.push('<');
            out.push_str(name);
            out.push('>');
            out.push_str(&v.to_string());
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
    }
}

/// A whole response document: `<root xmlns=…>` around `v`'s members.
pub fn document(root: &str, v: &Value) -> String {
    let mut inner = String::new();
    element(&mut inner, root, v);
    let open = format!("<{root}>");
    let body = inner.strip_prefix(&open).unwrap_or(&inner);
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"{NS}\">{body}")
}

/// CloudFront's error body.
pub fn error(code: &str, message: &str, request_id: &str) -> String {
    let sender = if code == "InternalError" {
        "Receiver"
    } else {
        "Sender"
    };
    format!(
        "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"{NS}\"><Error><Type>{sender}</Type>\
         <Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        escape(code),
        escape(message),
        escape(request_id)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lists_types_and_round_trip() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<DistributionConfig xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">
  <CallerReference>1700000000</CallerReference>
  <Aliases><Quantity>2</Quantity><Items><CNAME>a.example.com</CNAME><CNAME>b&amp;c</CNAME></Items></Aliases>
  <Origins><Quantity>1</Quantity><Items><Origin><Id>o</Id><DomainName>127.0.0.1</DomainName>
    <CustomOriginConfig><HTTPPort>8080</HTTPPort><HTTPSPort>443</HTTPSPort>
    <OriginProtocolPolicy>http-only</OriginProtocolPolicy></CustomOriginConfig></Origin></Items></Origins>
  <CacheBehaviors><Quantity>0</Quantity></CacheBehaviors>
  <Comment/>
  <Enabled>true</Enabled>
</DistributionConfig>"#;
        let (root, v) = parse(body).unwrap();
        assert_eq!(root, "DistributionConfig");
        // A reference made only of digits stays a string; Enabled and ports are typed.
        assert_eq!(v["CallerReference"], "1700000000");
        assert_eq!(v["Enabled"], true);
        assert_eq!(v["Aliases"]["Items"][1], "b&c");
        assert_eq!(v["Origins"]["Items"][0]["CustomOriginConfig"]["HTTPPort"], 8080);
        assert_eq!(v["CacheBehaviors"]["Quantity"], 0);
        assert_eq!(v["Comment"], "");
        let text = document("DistributionConfig", &v);
        assert!(text.contains("<CNAME>b&amp;c</CNAME>"), "{text}");
        assert!(text.contains("<Origin><"), "{text}");
        let (_, again) = parse(text.as_bytes()).unwrap();
        assert_eq!(again, v);
    }

    #[test]
    fn malformed_and_mistyped_bodies_are_refused() {
        assert!(parse(b"").is_err());
        assert!(parse(b"<A><B>1</A>").is_err());
        let e = parse(b"<A><Enabled>yes</Enabled></A>").unwrap_err();
        assert!(e.contains("Enabled"), "{e}");
        let e = parse(b"<A><Comment>x</Comment><Comment>y</Comment></A>").unwrap_err();
        assert!(e.contains("twice"), "{e}");
    }
}
