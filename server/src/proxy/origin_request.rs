//! The origin side of a request head: what each origin's settings add to the head the proxy
//! built from the viewer's request.
//!
//! - `origin_path` (and `/<bucket>` for path-style S3) goes before the path.
//! - The `Host` rule: a custom origin gets `host_header` (else `domain_name`) unless the
//!   behavior forwards the viewer's `Host`; an S3 origin always gets the bucket's host (it is
//!   signed, and the configuration refuses forwarding `Host` to one).
//! - `custom_headers` are added (the configuration keeps them off the fields the proxy and
//!   signing own).
//! - S3: the path is sent as S3 canonicalises it, the query string is not sent (S3 reads
//!   query parameters as sub-resources: `?acl`, `?list-type=2`, `?versions` would expose
//!   what a CDN must not), a viewer's `x-amz-*` fields are dropped, and the request is
//!   signed (SigV4) as `signing_behavior` says. A request for the bucket itself (an empty
//!   object key) is never sent: it would list the bucket.

use super::s3::{self, Signer};
use super::upstream::{Framing, Head, OriginClient, UpConn, UpstreamError};
use config::{Origin, SigningBehavior};
use std::time::{Instant, SystemTime};

/// An origin's request settings, prepared once per worker.
pub struct Shape {
    prefix: Vec<u8>,
    custom: Vec<(String, String)>,
    s3: bool,
    signing: SigningBehavior,
    signer: Option<Signer>,
}

impl Shape {
    pub fn new(o: &Origin) -> Result<Shape, s3::NoCredentials> {
        let signer = match (o.is_s3(), o.signing_behavior) {
            (true, SigningBehavior::Always | SigningBehavior::NoOverride) => Some(Signer::new(o)?),
            _ => None,
        };
        Ok(Shape {
            prefix: o.request_prefix().into_bytes(),
            custom: o
                .custom_headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            s3: o.is_s3(),
            signing: o.signing_behavior,
            signer,
        })
    }

    /// Whether heads are sent as the proxy built them.
    fn untouched(&self) -> bool {
        self.prefix.is_empty() && self.custom.is_empty() && !self.s3
    }
}

impl OriginClient {
    /// Whether this origin is an S3 bucket.
    pub fn is_s3(&self) -> bool {
        self.shape.s3
    }

    /// The head as this origin gets it (see the module docs). A head that cannot be read as
    /// one (never the case for heads the proxy builds) is sent as it is.
    pub fn finish_head(&self, head: Vec<u8>) -> Vec<u8> {
        if self.shape.untouched() {
            return head;
        }
        rewrite(&self.shape, &self.id, &self.host_header, &head).unwrap_or(head)
    }
}

/// A request head in parts: method, target, version, fields.
type Parts<'a> = (&'a [u8], &'a [u8], &'a [u8], Vec<(&'a [u8], &'a [u8])>);

/// Splits a head into its request line parts and fields.
fn split(head: &[u8]) -> Option<Parts<'_>> {
    let end = memchr::memmem::find(head, b"\r\n\r\n")?;
    let mut lines = head[..end]
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let mut line = lines.next()?.splitn(3, |&b| b == b' ');
    let (method, target, version) = (line.next()?, line.next()?, line.next()?);
    let mut fields = Vec::new();
    for l in lines {
        let colon = memchr::memchr(b':', l)?;
        fields.push((&l[..colon], super::super::http::codec::trim(&l[colon + 1..])));
    }
    Some((method, target, version, fields))
}

fn rewrite(shape: &Shape, origin: &str, host: &str, head: &[u8]) -> Option<Vec<u8>> {
    let (method, target, version, fields) = split(head)?;
    let (path, query) = match memchr::memchr(b'?', target) {
        Some(q) => (&target[..q], Some(&target[q..])),
        None => (target, None),
    };
    let mut out = Vec::with_capacity(head.len() + 512);
    out.extend_from_slice(method);
    out.push(b' ');
    let mut new_target = shape.prefix.clone();
    if shape.s3 {
        new_target.extend_from_slice(s3::canonical_path(path).as_bytes());
    } else {
        new_target.extend_from_slice(path);
        new_target.extend_from_slice(query.unwrap_or_default());
    }
    out.extend_from_slice(&new_target);
    out.push(b' ');
    out.extend_from_slice(version);
    out.extend_from_slice(b"\r\n");
    let viewer_signed = fields
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(b"authorization"));
    let sign = match shape.signing {
        SigningBehavior::Always => shape.signer.as_ref(),
        SigningBehavior::NoOverride if !viewer_signed => shape.signer.as_ref(),
        _ => None,
    };
    if shape.s3 {
        push(&mut out, b"Host", host.as_bytes());
    }
    for (n, v) in &fields {
        let drop = shape.s3
            && (n.eq_ignore_ascii_case(b"host")
                || (sign.is_some()
                    && (n.eq_ignore_ascii_case(b"authorization")
                        || (n.len() > 6 && n[..6].eq_ignore_ascii_case(b"x-amz-")))));
        if !drop {
            push(&mut out, n, v);
        }
    }
    for (n, v) in &shape.custom {
        push(&mut out, n.as_bytes(), v.as_bytes());
    }
    if let Some(signer) = sign {
        let (m, t) = (
            std::str::from_utf8(method).ok()?,
            std::str::from_utf8(&new_target).ok()?,
        );
        match signer.sign(m, t, &[("host", host)], SystemTime::now()) {
            Ok(headers) => {
                for (n, v) in headers {
                    push(&mut out, n.as_bytes(), v.as_bytes());
                }
            }
            // Sent unsigned: the bucket refuses it, and the viewer gets its 403.
            Err(e) => tracing::error!(origin = %origin, error = %e, "S3 origin request not signed"),
        }
    }
    out.extend_from_slice(b"\r\n");
    Some(out)
}

fn push(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Whether a request head asks for the bucket itself (its object key is empty), which would
/// list the bucket.
pub fn lists_bucket(head: &[u8], prefix: &str) -> bool {
    let line_end = memchr::memchr(b'\r', head).unwrap_or(head.len());
    let mut parts = head[..line_end].split(|&b| b == b' ');
    let target = parts.nth(1).unwrap_or_default();
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let key = path.strip_prefix(prefix.as_bytes()).unwrap_or(path);
    key.iter().all(|&b| b == b'/')
}

/// Largest S3 error document read to find its code.
const MAX_ERROR_DOC: u64 = 64 * 1024;

/// An S3 answer of 400 or 403 whose XML error code says this edge's credentials or signature
/// were refused becomes [`UpstreamError::Credentials`] (a 502 to the viewer: the distribution
/// is at fault), logged with the origin and the code. Other answers, their body left unread
/// in the connection's buffer, go on as they are.
pub(super) async fn check_s3_error(
    up: &mut UpConn,
    h: &Head,
    deadline: Instant,
) -> Result<(), UpstreamError> {
    if !matches!(h.status, 400 | 403) {
        return Ok(());
    }
    let Framing::Length(n) = h.framing else {
        return Ok(());
    };
    if n > MAX_ERROR_DOC {
        return Ok(());
    }
    while (up.buf.len() as u64) < n {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(UpstreamError::Timeout);
        }
        if up.read_more(left).await? == 0 {
            return Err(UpstreamError::Closed);
        }
    }
    match s3::error_code(&up.buf[..n as usize]) {
        Some(code) if s3::is_credentials_error(code) => {
            tracing::warn!(
                origin = %up.origin_id(),
                status = h.status,
                s3_error = code,
                "S3 origin refused this edge's credentials (check the origin's keys and region)"
            );
            Err(UpstreamError::Credentials(code.to_string()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_requests_are_recognised() {
        assert!(lists_bucket(b"GET /b/ HTTP/1.1\r\n\r\n", "/b"));
        assert!(lists_bucket(b"GET /b HTTP/1.1\r\n\r\n", "/b"));
        assert!(lists_bucket(b"GET / HTTP/1.1\r\n\r\n", ""));
        assert!(lists_bucket(b"GET /?list-type=2 HTTP/1.1\r\n\r\n", ""));
        assert!(!lists_bucket(b"GET /b/k HTTP/1.1\r\n\r\n", "/b"));
        assert!(!lists_bucket(b"GET /k HTTP/1.1\r\n\r\n", ""));
    }
}
