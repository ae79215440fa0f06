//! The origin side of an exchange: the request head sent to the origin (re-framed here, never
//! passed through as the viewer framed it), the response head read back (interim responses
//! handed to the viewer's sink as they come), counted per origin.

use super::store::Validators;
use super::{Exchange, ResponseHead, Sink};
use crate::proxy::key::{connection_names, hop_by_hop, Keyed};
use crate::proxy::upstream::{
    read_final_head, Head, HeadEvent, HeadReader, OriginClient, UpConn, UpstreamError,
};
use std::time::Instant;

const SURROGATE_CAPABILITY: &[u8] = b"slabfront=\"Surrogate/1.0\"";

pub fn push_header(out: &mut Vec<u8>, n: &str, v: &[u8]) {
    out.extend_from_slice(n.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
}

/// The request head sent to the origin.
pub fn request_head(
    method: &[u8],
    keyed: &Keyed,
    client: &OriginClient,
    via: &str,
    peer: Option<std::net::SocketAddr>,
    validators: Option<&Validators>,
    body: Option<Option<u64>>,
) -> Vec<u8> {
    let mut h = Vec::with_capacity(512);
    h.extend_from_slice(method);
    h.push(b' ');
    h.extend_from_slice(&keyed.target);
    h.extend_from_slice(b" HTTP/1.1\r\n");
    let viewer_host = keyed.headers.iter().find(|(n, _)| n == "host");
    if !keyed.forward_host || viewer_host.is_none() {
        push_header(&mut h, "Host", client.host_header.as_bytes());
    }
    let mut xff: Option<Vec<u8>> = None;
    let mut via_line: Option<Vec<u8>> = None;
    for (n, v) in &keyed.headers {
        match n.as_str() {
            "x-forwarded-for" => xff = Some(v.clone()),
            "via" => via_line = Some(v.clone()),
            _ => push_header(&mut h, n, v),
        }
    }
    if let Some(ip) = peer.map(|p| p.ip().to_string()) {
        let v = match xff {
            Some(mut old) => {
                old.extend_from_slice(b", ");
                old.extend_from_slice(ip.as_bytes());
                old
            }
            None => ip.into_bytes(),
        };
        push_header(&mut h, "X-Forwarded-For", &v);
    }
    let via_v = match via_line {
        Some(mut old) => {
            old.extend_from_slice(b", ");
            old.extend_from_slice(via.as_bytes());
            old
        }
        None => via.as_bytes().to_vec(),
    };
    push_header(&mut h, "Via", &via_v);
    push_header(&mut h, "Surrogate-Capability", SURROGATE_CAPABILITY);
    if let Some((etag, lm)) = validators {
        if let Some(e) = etag {
            push_header(&mut h, "If-None-Match", e);
        }
        if let Some(l) = lm {
            push_header(&mut h, "If-Modified-Since", l);
        }
    }
    match body {
        Some(Some(n)) => push_header(&mut h, "Content-Length", itoa::Buffer::new().format(n).as_bytes()),
        Some(None) => push_header(&mut h, "Transfer-Encoding", b"chunked"),
        None => {}
    }
    h.extend_from_slice(b"\r\n");
    client.finish_head(h)
}

/// Sends a request head without a body and reads the response head. A pooled connection that
/// fails before any response byte is retried once on a fresh one.
pub async fn exchange_head(
    client: &OriginClient,
    viewer_tls: bool,
    head: Vec<u8>,
    w: &crate::context::Worker,
) -> Result<(UpConn, Head), UpstreamError> {
    let t0 = Instant::now();
    let r = exchange_head_once(client, viewer_tls, head).await;
    count_origin(w, &client.id, t0, &r);
    r
}

/// Counts an origin exchange: its latency, or the kind of its failure (also per origin, for
/// the dashboard).
pub fn count_origin<T>(w: &crate::context::Worker, origin: &str, t0: Instant, r: &Result<T, UpstreamError>) {
    match r {
        Ok(_) => {
            let latency = t0.elapsed();
            w.metrics.origin_ok(latency);
            w.stats.origin(origin, Ok(latency));
        }
        Err(e) => {
            w.metrics.origin_error(e.kind());
            w.stats.origin(origin, Err(()));
        }
    }
}

async fn exchange_head_once(
    client: &OriginClient,
    viewer_tls: bool,
    head: Vec<u8>,
) -> Result<(UpConn, Head), UpstreamError> {
    let tls = client.uses_tls(viewer_tls);
    let mut up = client.checkout(tls).await?;
    let first = try_exchange(&mut up, client, head.clone()).await;
    match first {
        Ok(h) => Ok((up, h)),
        Err(e) if up.reused && up.buf.is_empty() && !matches!(e, UpstreamError::Timeout) => {
            tracing::debug!(origin = %client.id, error = %e, "pooled connection failed; retrying on a new one");
            let mut up = client.connect(tls).await?;
            let h = try_exchange(&mut up, client, head).await?;
            Ok((up, h))
        }
        Err(e) => Err(e),
    }
}

/// For exchanges no viewer waits on (background refresh): interim responses are dropped,
/// bounded as `HeadReader` bounds them.
async fn try_exchange(up: &mut UpConn, client: &OriginClient, head: Vec<u8>) -> Result<Head, UpstreamError> {
    up.write_all(head).await?;
    read_final_head(up, client.read_timeout, false).await
}

/// An interim response from the origin as the viewer gets it: its status and end-to-end
/// fields (hop-by-hop ones and those `Connection` names left out). `None` when it is not for
/// the viewer: `100` and `101` (RFC 9110 §15.2).
pub fn interim_head(h: &Head) -> Option<ResponseHead<'_>> {
    if !(102..200).contains(&h.status) {
        return None;
    }
    let conn = connection_names(h.header_values("connection"));
    let mut head = ResponseHead::local(h.status);
    head.local = false;
    head.reason = Some(match h.status {
        103 => "Early Hints".into(),
        _ if !h.reason.is_empty() => h.reason.as_str().into(),
        _ => "Interim".into(),
    });
    for (n, v) in &h.headers {
        let l = n.to_ascii_lowercase();
        if hop_by_hop(&l) || conn.contains(&l) {
            continue;
        }
        head.field(n.as_str(), v.as_slice());
    }
    Some(head)
}

impl<S: Sink> Exchange<'_, S> {
    /// Sends a request head without a body and reads the final response head, relaying
    /// interim responses (103 Early Hints) to the viewer as they arrive. A pooled connection
    /// that fails before any response byte is retried once on a fresh one.
    pub(super) async fn exchange_head_relaying(
        &mut self,
        client: &OriginClient,
        head: Vec<u8>,
    ) -> Result<(UpConn, Head), UpstreamError> {
        let t0 = Instant::now();
        let tls = client.uses_tls(self.sink.secure());
        let r = async {
            let mut up = client.checkout(tls).await?;
            let mut reader = HeadReader::new(false);
            let first = match up.write_all(head.clone()).await {
                Ok(_) => self.read_head_relaying(&mut up, client, &mut reader).await,
                Err(e) => Err(e),
            };
            match first {
                Ok(h) => Ok((up, h)),
                Err(e)
                    if up.reused
                        && up.buf.is_empty()
                        && reader.interims() == 0
                        && !matches!(e, UpstreamError::Timeout) =>
                {
                    tracing::debug!(origin = %client.id, error = %e, "pooled connection failed; retrying on a new one");
                    let mut up = client.connect(tls).await?;
                    up.write_all(head).await?;
                    let h = self
                        .read_head_relaying(&mut up, client, &mut HeadReader::new(false))
                        .await?;
                    Ok((up, h))
                }
                Err(e) => Err(e),
            }
        }
        .await;
        count_origin(&self.w, &client.id, t0, &r);
        r
    }

    /// Reads the final response head; interim responses for the viewer are handed to the sink
    /// at once (never stored). A viewer gone meanwhile is noticed when the final response is
    /// sent.
    pub(super) async fn read_head_relaying(
        &mut self,
        up: &mut UpConn,
        client: &OriginClient,
        reader: &mut HeadReader,
    ) -> Result<Head, UpstreamError> {
        loop {
            match reader.next(up, client.read_timeout).await? {
                HeadEvent::Final(h) => return Ok(h),
                HeadEvent::Interim(h) => {
                    if let Some(head) = interim_head(&h) {
                        self.sink.interim(self.req, &head).await;
                    }
                }
            }
        }
    }
}
