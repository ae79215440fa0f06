//! Microseconds per invocation of a viewer-request URI rewrite (the single-page-app rewrite
//! of the tests), through the module's API on one thread, as a worker runs it. Also the
//! parts: a function that returns the request unchanged, and a viewer-response function
//! adding headers.
//!
//! `cargo bench -p slabfront --bench functions [-- ITERATIONS]`

use slabfront::functions::{Engine, FnContext, FnOutcome, FnRequest, FnResponse, Functions};
use std::sync::Arc;
use std::time::Instant;

const CONFIG: &str = r#"
[[origins]]
id = "site"
path = "."
[[functions]]
name = "rewrite"
runtime = "cloudfront-js-2.0"
code = """
function handler(event) {
    var request = event.request;
    var uri = request.uri;
    if (uri.endsWith('/')) {
        request.uri += 'index.html';
    } else if (!uri.includes('.')) {
        request.uri += '/index.html';
    }
    return request;
}
"""
[[functions]]
name = "identity"
runtime = "cloudfront-js-2.0"
code = "function handler(event) { return event.request; }"
[[functions]]
name = "headers"
runtime = "cloudfront-js-2.0"
code = """
function handler(event) {
    var h = event.response.headers;
    h['strict-transport-security'] = { value: 'max-age=63072000' };
    h['x-content-type-options'] = { value: 'nosniff' };
    return event.response;
}
"""
[default_cache_behavior]
target_origin = "site"
"#;

fn main() {
    let iterations: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let cfg = config::Config::from_toml_str(CONFIG).expect("benchmark configuration");
    let functions = Arc::new(Functions::for_generation(&cfg).expect("functions compile"));
    let mut engine = Engine::new(functions);
    let cx = FnContext {
        distribution_domain_name: "d111111abcdef8.cloudfront.net".into(),
        distribution_id: "EDFDVBD6EXAMPLE".into(),
        request_id: "4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ==".into(),
        viewer_ip: "198.51.100.11".into(),
    };
    let request = FnRequest {
        method: "GET".into(),
        uri: "/about".into(),
        querystring: Vec::new(),
        headers: vec![
            ("host".into(), "example.org".into()),
            ("user-agent".into(), "wrk".into()),
            ("accept".into(), "*/*".into()),
        ],
        cookies: Vec::new(),
    };
    let response = FnResponse {
        status: 200,
        status_description: "OK".into(),
        headers: vec![
            ("content-type".into(), "text/html".into()),
            ("content-length".into(), "1024".into()),
        ],
        ..Default::default()
    };
    println!("{iterations} invocations each, one thread");
    for name in ["rewrite", "identity"] {
        let run = |engine: &mut Engine| {
            let inv = engine.run_viewer_request(name, &cx, &request);
            assert!(
                matches!(inv.outcome, FnOutcome::Continue { .. }),
                "{:?}",
                inv.outcome
            );
            inv.compute
        };
        report(name, iterations, &mut engine, run);
    }
    report("headers (viewer-response)", iterations, &mut engine, |engine| {
        let inv = engine.run_viewer_response("headers", &cx, &request, &response);
        assert!(matches!(inv.outcome, FnOutcome::Response(_)), "{:?}", inv.outcome);
        inv.compute
    });
}

/// The thread's CPU time (the machine may be shared: wall time would measure the neighbours).
fn thread_cpu() -> std::time::Duration {
    let t = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns: u64 = t
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    std::time::Duration::from_nanos(ns)
}

fn report(
    name: &str,
    iterations: u32,
    engine: &mut Engine,
    mut run: impl FnMut(&mut Engine) -> std::time::Duration,
) {
    for _ in 0..1000 {
        run(engine);
    }
    let mut inside = std::time::Duration::ZERO;
    let start = Instant::now();
    let cpu = thread_cpu();
    for _ in 0..iterations {
        inside += run(engine);
    }
    let cpu = thread_cpu() - cpu;
    let total = start.elapsed();
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / f64::from(iterations);
    println!(
        "{name:>26}: {:6.2} us CPU per invocation ({:6.2} us wall; {:6.2} us CPU in the function's budgeted part)",
        per(cpu),
        per(total),
        per(inside),
    );
}
