//! Phase **pass**: a method the behavior does not cache goes to the origin with its body
//! streamed through (re-framed for the origin: `Content-Length` as declared, or chunked), and
//! the response comes back unstored. A successful unsafe method invalidates the URL.

use super::origin::{count_origin, request_head};
use super::relay::{origin_head, Relay};
use super::{BodySource, CacheResult, End, Exchange, ExchangeError, Sink};
use crate::http::{BodyKind, Method, Request};
use crate::proxy::key::Keyed;
use crate::proxy::upstream::{Head, HeadReader, OriginClient, UpConn, UpstreamError};
use crate::proxy::ProxyWorker;
use std::time::Instant;

impl<S: Sink> Exchange<'_, S> {
    pub(super) async fn pass(
        &mut self,
        keyed: &Keyed,
        px: &ProxyWorker,
        client: &OriginClient,
        origin: usize,
    ) -> Result<(), End> {
        let req = self.req;
        let framing = match req.body {
            BodyKind::None => None,
            BodyKind::Length(n) if n > self.w.settings.max_body_bytes => {
                let (mut head, body) = ExchangeError::BodyTooLarge.answer();
                head.close = true;
                return self.respond(head, BodySource::Bytes(body)).await;
            }
            BodyKind::Length(n) => Some(Some(n)),
            BodyKind::Chunked => Some(None),
        };
        let head = request_head(
            req.method_name(),
            keyed,
            client,
            &px.shared.via,
            self.sink.peer(),
            None,
            framing,
        );
        let Some(framing) = framing else {
            return match self.exchange_head_relaying(client, head).await {
                Ok((up, resp)) => self.after_pass(keyed, px, origin, up, resp).await,
                Err(e) => {
                    tracing::warn!(origin = %client.id, error = %e, "origin request failed");
                    self.origin_error(px, e.into(), false).await
                }
            };
        };
        let tls = client.uses_tls(self.sink.secure());
        let mut up = match client.connect(tls).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(origin = %client.id, error = %e, "origin request failed");
                self.sink.discard_body(req).await?;
                return self.origin_error(px, e.into(), false).await;
            }
        };
        if let Err(e) = up.write_all(head).await {
            tracing::warn!(origin = %client.id, error = %e, "origin request failed");
            self.sink.discard_body(req).await?;
            return self.origin_error(px, e.into(), false).await;
        }
        // Stream the body through as it arrives.
        if let Err(e) = self.stream_body(&mut up, framing.is_none()).await? {
            tracing::warn!(origin = %client.id, error = %e, "origin request failed");
            return self.origin_error(px, e.into(), true).await;
        }
        let t0 = Instant::now();
        let answer = self
            .read_head_relaying(&mut up, client, &mut HeadReader::new(false))
            .await;
        count_origin(&self.w, &client.id, t0, &answer);
        match answer {
            Ok(resp) => self.after_pass(keyed, px, origin, up, resp).await,
            Err(e) => {
                tracing::warn!(origin = %client.id, error = %e, "origin request failed");
                self.origin_error(px, e.into(), false).await
            }
        }
    }

    /// The request body, piece by piece as the viewer's codec decodes it, to the origin:
    /// chunked when its length was not declared. The outer error is the viewer's side, the
    /// inner one the origin's.
    async fn stream_body(
        &mut self,
        up: &mut UpConn,
        chunked: bool,
    ) -> Result<Result<(), UpstreamError>, End> {
        loop {
            let piece = self.sink.body_piece(self.req).await?;
            let data = match (&piece, chunked) {
                (None, true) => b"0\r\n\r\n".to_vec(),
                (None, false) => return Ok(Ok(())),
                (Some(p), true) => {
                    let mut v = Vec::with_capacity(p.len() + 12);
                    v.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
                    v.extend_from_slice(p);
                    v.extend_from_slice(b"\r\n");
                    v
                }
                (Some(p), false) => p.to_vec(),
            };
            if let Err(e) = up.write_all(data).await {
                return Ok(Err(e));
            }
            if piece.is_none() {
                return Ok(Ok(()));
            }
        }
    }

    async fn after_pass(
        &mut self,
        keyed: &Keyed,
        px: &ProxyWorker,
        origin: usize,
        up: UpConn,
        resp: Head,
    ) -> Result<(), End> {
        let req = self.req;
        // Unsafe methods, and those whose safety is unknown (RFC 9111 §4.4).
        let unsafe_method = !matches!(
            req.method,
            Method::Get | Method::Head | Method::Options | Method::Trace
        );
        if unsafe_method && resp.status < 400 {
            px.shared.invalidate_prefix(&keyed.url_prefix);
            for h in ["location", "content-location"] {
                if let Some(prefix) = resp.header(h).and_then(|v| same_host_url_prefix(v, req)) {
                    let mut prefixed = px.key_prefix.clone();
                    prefixed.extend_from_slice(&prefix);
                    px.shared.invalidate_prefix(&prefixed);
                }
            }
        }
        let head = origin_head(
            &resp,
            &px.shared.via,
            CacheResult::Miss,
            &px.shared.node,
            "fwd=miss",
        );
        match Relay::start(self.w.clone(), origin, up, &resp, None, None).await {
            Ok(relay) => self.respond(head, BodySource::Relay(Box::new(relay))).await,
            Err(_) => self.origin_error(px, ExchangeError::OriginCutShort, true).await,
        }
    }
}

/// `Location` / `Content-Location` on the request's own host, as a `path \0 query \0` prefix.
fn same_host_url_prefix(v: &[u8], req: &Request) -> Option<Vec<u8>> {
    let v = crate::http::codec::trim(v);
    let rest = if v.starts_with(b"/") && !v.starts_with(b"//") {
        v
    } else {
        let after = v
            .strip_prefix(b"http://")
            .or_else(|| v.strip_prefix(b"https://"))?;
        let slash = after.iter().position(|&c| c == b'/').unwrap_or(after.len());
        let host = &after[..slash];
        if !req.header("host").is_some_and(|h| h.eq_ignore_ascii_case(host)) {
            return None;
        }
        &after[slash..]
    };
    let (path, query) = match rest.iter().position(|&c| c == b'?') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let mut p = if path.is_empty() {
        b"/".to_vec()
    } else {
        path.to_vec()
    };
    p.push(0);
    p.extend_from_slice(query);
    p.push(0);
    Some(p)
}
