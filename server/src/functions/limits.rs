//! The limits a function runs under, CloudFront's where CloudFront publishes them.

use std::time::Duration;

/// Limits of one invocation.
#[derive(Debug, Clone)]
pub struct Limits {
    /// CPU time one invocation may use before the engine's interrupt stops it (a loop that
    /// never ends costs this, not a worker). CloudFront reports compute utilization as a
    /// percentage of its own budget and does not publish it; this budget is the 100%.
    pub compute: Duration,
    /// Memory the function's own objects may take, on top of a fresh context (CloudFront's
    /// quota: 2 MB).
    pub memory: usize,
    /// Deepest JavaScript stack, in bytes.
    pub stack: usize,
    /// A generated response, headers and body (CloudFront: 40 KB).
    pub max_response_bytes: usize,
    /// A request as returned, URI, query string and headers (CloudFront: 20,480 bytes).
    pub max_request_bytes: usize,
    /// The URI with its query string (CloudFront: 8,192 bytes).
    pub max_url_bytes: usize,
    /// `console.log` output kept per invocation (CloudFront truncates logs at 10 KB).
    pub max_log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            compute: Duration::from_millis(1),
            memory: 2 << 20,
            stack: 256 << 10,
            max_response_bytes: 40 * 1024,
            max_request_bytes: 20_480,
            max_url_bytes: 8_192,
            max_log_bytes: 10 * 1024,
        }
    }
}
