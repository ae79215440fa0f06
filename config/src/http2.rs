//! `[server.http2]`: the limits of HTTP/2 connections (viewers that negotiate `h2` by ALPN,
//! or speak it with prior knowledge on plain listeners when `server.h2c = true`).

use crate::schema::{Duration, Size};
use serde::Deserialize;

/// Largest flow-control window HTTP/2 allows (RFC 9113 §6.9.1).
pub const MAX_WINDOW: u64 = (1 << 31) - 1;

/// HTTP/2 limits. The defaults are CloudFront's where it publishes them (128 concurrent
/// streams), else safe ones: every per-connection table and queue a peer can grow is bounded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http2 {
    /// Streams a viewer may have open at once (`SETTINGS_MAX_CONCURRENT_STREAMS`).
    pub max_concurrent_streams: u32,
    /// Largest decoded header list of a request (`SETTINGS_MAX_HEADER_LIST_SIZE`); larger
    /// header blocks (a CONTINUATION flood, an HPACK bomb) end the stream or connection.
    pub max_header_list_size: Size,
    /// The HPACK dynamic table the viewer may make us keep (`SETTINGS_HEADER_TABLE_SIZE`).
    pub header_table_size: Size,
    /// Each request body's flow-control window (`SETTINGS_INITIAL_WINDOW_SIZE`).
    pub stream_window: Size,
    /// The connection's flow-control window for request bodies.
    pub connection_window: Size,
    /// Response bytes queued per stream before the stream waits for the viewer.
    pub max_send_buffer: Size,
    /// Streams a viewer may reset within `reset_interval` before the connection is closed
    /// with `ENHANCE_YOUR_CALM` (rapid reset, CVE-2023-44487).
    pub max_resets: u32,
    /// The window `max_resets` counts over.
    pub reset_interval: Duration,
    /// How long a response may wait for flow-control window before its stream is reset (a
    /// viewer that stops reading holds no memory beyond `max_send_buffer`).
    pub send_timeout: Duration,
}

impl Default for Http2 {
    fn default() -> Self {
        Http2 {
            max_concurrent_streams: 128,
            max_header_list_size: Size(32 * 1024),
            header_table_size: Size(4096),
            stream_window: Size(1 << 20),
            connection_window: Size(4 << 20),
            max_send_buffer: Size(256 * 1024),
            max_resets: 200,
            reset_interval: Duration::secs(10),
            send_timeout: Duration::secs(30),
        }
    }
}

/// The problems of an `[server.http2]` table, as (key, message).
pub(crate) fn check(h: &Http2, mut bad: impl FnMut(String, String)) {
    let key = |k: &str| format!("server.http2.{k}");
    if h.max_concurrent_streams == 0 {
        bad(key("max_concurrent_streams"), "must be greater than 0".into());
    }
    for (k, v) in [
        ("stream_window", h.stream_window),
        ("connection_window", h.connection_window),
    ] {
        if v.0 < 65_535 || v.0 > MAX_WINDOW {
            bad(key(k), format!("must be from 65535 to {MAX_WINDOW} bytes"));
        }
    }
    for (k, v, min, max) in [
        ("max_header_list_size", h.max_header_list_size, 1024, 1 << 20),
        ("header_table_size", h.header_table_size, 0, 1 << 20),
        ("max_send_buffer", h.max_send_buffer, 16 * 1024, 64 << 20),
    ] {
        if v.0 < min || v.0 > max {
            bad(key(k), format!("must be from {min} to {max} bytes"));
        }
    }
    if h.max_resets == 0 {
        bad(key("max_resets"), "must be greater than 0".into());
    }
    for (k, d) in [
        ("reset_interval", h.reset_interval),
        ("send_timeout", h.send_timeout),
    ] {
        if d.0.is_zero() {
            bad(key(k), "must be longer than 0".into());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    const BASE: &str =
        "[[origins]]\nid = \"s\"\npath = \".\"\n[default_cache_behavior]\ntarget_origin = \"s\"\n";

    #[test]
    fn defaults_are_safe_and_keys_are_read() {
        let cfg = crate::Config::from_toml_str(BASE).unwrap();
        assert!(!cfg.server.h2c);
        assert_eq!(cfg.server.http2.max_concurrent_streams, 128);
        let cfg = crate::Config::from_toml_str(&format!(
            "[server]\nh2c = true\n[server.http2]\nmax_concurrent_streams = 7\nsend_timeout = \"2s\"\n{BASE}"
        ))
        .unwrap();
        assert!(cfg.server.h2c);
        assert_eq!(cfg.server.http2.max_concurrent_streams, 7);
        assert_eq!(cfg.server.http2.send_timeout.0, std::time::Duration::from_secs(2));
    }

    #[test]
    fn every_bad_limit_is_reported_with_its_key() {
        let text = format!(
            "[server.http2]\nmax_concurrent_streams = 0\nstream_window = 100\nconnection_window = \"4GiB\"\nheader_table_size = \"2MiB\"\nmax_resets = 0\nreset_interval = \"0s\"\n{BASE}"
        );
        let e = crate::Config::from_toml_str(&text).unwrap_err().to_string();
        for key in [
            "server.http2.max_concurrent_streams",
            "server.http2.stream_window",
            "server.http2.connection_window",
            "server.http2.header_table_size",
            "server.http2.max_resets",
            "server.http2.reset_interval",
        ] {
            assert!(e.contains(key), "{key} missing from: {e}");
        }
        let e =
            crate::Config::from_toml_str(&format!("[server.http2]\nmax_streams = 5\n{BASE}")).unwrap_err();
        assert!(e.to_string().contains("max_streams"), "{e}");
    }
}
