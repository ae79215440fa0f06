//! A response as the exchange produces it: status, fields and how long the body is, before
//! any codec frames it. Nothing here is HTTP/1.1 syntax: the codec adds its own framing
//! fields (`Content-Length` or chunked, `Connection`) from [`BodyLength`].

use std::borrow::Cow;

/// How long the body that follows a head is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body may follow (1xx, 204, 304), and no length is announced.
    None,
    /// This many bytes (announced even when the request was HEAD and nothing follows).
    Known(u64),
    /// Not known before the body ends (an origin's chunked or close-delimited body).
    Unknown,
}

/// What the cache did for a response (the `X-Cache` field and the log's result type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheResult {
    /// Not a cache answer: a file from a directory origin, a redirect, a refusal.
    Local,
    Hit,
    RefreshHit,
    Miss,
    Error,
}

impl CacheResult {
    /// The log's and the counters' name ("" for local content).
    pub fn as_str(self) -> &'static str {
        match self {
            CacheResult::Local => "",
            CacheResult::Hit => "Hit",
            CacheResult::RefreshHit => "RefreshHit",
            CacheResult::Miss => "Miss",
            CacheResult::Error => "Error",
        }
    }

    /// The `X-Cache` value, as CloudFront words it.
    pub fn x_cache(self) -> Option<&'static [u8]> {
        match self {
            CacheResult::Local => None,
            CacheResult::Hit => Some(b"Hit from slabfront"),
            CacheResult::RefreshHit => Some(b"RefreshHit from slabfront"),
            CacheResult::Miss => Some(b"Miss from slabfront"),
            CacheResult::Error => Some(b"Error from slabfront"),
        }
    }
}

/// A field value: borrowed (from a stored object's metadata), shared (kept with a file), or
/// made for this response.
#[derive(Debug, Clone)]
pub enum Value<'a> {
    Ref(&'a [u8]),
    Shared(bytes::Bytes),
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for Value<'_> {
    fn as_ref(&self) -> &[u8] {
        match self {
            Value::Ref(v) => v,
            Value::Shared(v) => v,
            Value::Owned(v) => v,
        }
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(v: &'a [u8]) -> Self {
        Value::Ref(v)
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Value<'a> {
    fn from(v: &'a [u8; N]) -> Self {
        Value::Ref(v)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Ref(v.as_bytes())
    }
}

impl From<Vec<u8>> for Value<'_> {
    fn from(v: Vec<u8>) -> Self {
        Value::Owned(v)
    }
}

impl From<String> for Value<'_> {
    fn from(v: String) -> Self {
        Value::Owned(v.into_bytes())
    }
}

impl From<bytes::Bytes> for Value<'_> {
    fn from(v: bytes::Bytes) -> Self {
        Value::Shared(v)
    }
}

/// One field: its name as it should be sent, and its value.
pub type Field<'a> = (Cow<'a, str>, Value<'a>);

/// A response head.
#[derive(Debug, Clone)]
pub struct ResponseHead<'a> {
    pub status: u16,
    /// The reason phrase an origin gave; `None` for the standard one.
    pub reason: Option<Cow<'a, str>>,
    /// Generated here, not relayed: the codec puts `Server` and the current `Date` first.
    pub local: bool,
    /// End-to-end fields, in order. Never framing fields (`Content-Length`,
    /// `Transfer-Encoding`, `Connection`): the codec writes those from `length`.
    pub fields: Vec<Field<'a>>,
    pub length: BodyLength,
    /// What the cache did (also written as `X-Cache` when not `Local`).
    pub cache: CacheResult,
    /// The request could not be read to its end or its semantics are unknown: the
    /// connection (or stream) is not used again after this response.
    pub close: bool,
}

impl<'a> ResponseHead<'a> {
    /// A head generated here, with room for a few fields.
    pub fn local(status: u16) -> Self {
        ResponseHead {
            status,
            reason: None,
            local: true,
            fields: Vec::with_capacity(8),
            length: BodyLength::None,
            cache: CacheResult::Local,
            close: false,
        }
    }

    /// Adds a field.
    pub fn field(&mut self, name: impl Into<Cow<'a, str>>, value: impl Into<Value<'a>>) -> &mut Self {
        self.fields.push((name.into(), value.into()));
        self
    }

    /// Adds a field with a decimal value.
    pub fn field_u64(&mut self, name: &'static str, value: u64) -> &mut Self {
        let v = itoa::Buffer::new().format(value).as_bytes().to_vec();
        self.field(name, v)
    }

    /// The first value of a field (names compared case-insensitively).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    /// The status's reason phrase (the origin's when it gave one).
    pub fn reason(&self) -> &str {
        match &self.reason {
            Some(r) if !r.is_empty() => r,
            _ => crate::http::Status(self.status).reason(),
        }
    }

    /// Labels the head with a cache result, adding its `X-Cache` field.
    pub fn with_cache(mut self, cache: CacheResult) -> Self {
        self.cache = cache;
        if let Some(v) = cache.x_cache() {
            self.fields.push((Cow::Borrowed("X-Cache"), Value::Ref(v)));
        }
        self
    }
}

/// A short text answer generated here: the status with a one-line body.
pub fn text(status: u16, body: &str) -> (ResponseHead<'static>, bytes::Bytes) {
    let mut head = ResponseHead::local(status);
    head.field("Content-Type", "text/plain; charset=utf-8");
    let mut b = Vec::with_capacity(body.len() + 1);
    b.extend_from_slice(body.as_bytes());
    b.push(b'\n');
    head.length = BodyLength::Known(b.len() as u64);
    (head, bytes::Bytes::from(b))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn text_answers_announce_their_length() {
        let (h, b) = text(404, "not found");
        assert_eq!(h.length, BodyLength::Known(10));
        assert_eq!(&b[..], b"not found\n");
        assert_eq!(h.get("content-type").unwrap(), b"text/plain; charset=utf-8");
        assert_eq!(h.reason(), "Not Found");
    }

    #[test]
    fn cache_results_name_themselves_as_cloudfront_does() {
        let h = ResponseHead::local(200).with_cache(CacheResult::RefreshHit);
        assert_eq!(h.get("x-cache").unwrap(), b"RefreshHit from slabfront");
        assert_eq!(h.cache.as_str(), "RefreshHit");
        assert!(ResponseHead::local(200)
            .with_cache(CacheResult::Local)
            .get("x-cache")
            .is_none());
    }
}
