#![allow(clippy::unwrap_used)]
//! CloudFront Functions written for CloudFront, run through the module's API and through
//! `slabfront function test`: the common uses, every error path, isolation between
//! invocations, and two workers running the same function at once.

use slabfront::functions::{
    Engine, FnContext, FnError, FnOutcome, FnRequest, FnResponse, Functions, Limits, OriginChoice, SetCookie,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const FUNCTIONS: [(&str, &str); 13] = [
    ("spa", "cloudfront-js-1.0"),
    ("country", "cloudfront-js-1.0"),
    ("querynorm", "cloudfront-js-2.0"),
    ("security_headers", "cloudfront-js-2.0"),
    ("token", "cloudfront-js-1.0"),
    ("ab", "cloudfront-js-2.0"),
    ("kvs_origin", "cloudfront-js-2.0"),
    ("throw", "cloudfront-js-2.0"),
    ("loop", "cloudfront-js-2.0"),
    ("alloc", "cloudfront-js-2.0"),
    ("invalid", "cloudfront-js-2.0"),
    ("forbidden", "cloudfront-js-2.0"),
    ("isolation", "cloudfront-js-1.0"),
];

fn js(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/functions")
        .join(format!("{name}.js"))
}

/// A configuration with every test function, a key-value store and three origins.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("routes.json");
        write_store(&store, "eu-origin", 3);
        let mut text = String::new();
        for id in ["site", "default-origin", "eu-origin"] {
            text.push_str(&format!("[[origins]]\nid = \"{id}\"\npath = {:?}\n", dir.path()));
        }
        text.push_str(&format!(
            "[[key_value_stores]]\nid = \"routes\"\nfile = {store:?}\n"
        ));
        for (name, runtime) in FUNCTIONS {
            text.push_str(&format!(
                "[[functions]]\nname = \"{name}\"\nruntime = \"{runtime}\"\ncode_file = {:?}\n",
                js(name)
            ));
            if name == "kvs_origin" {
                text.push_str("key_value_stores = [\"routes\"]\n");
            }
        }
        text.push_str(
            "[default_cache_behavior]\ntarget_origin = \"site\"\n\
             function_associations = [{ event_type = \"viewer-request\", function = \"spa\" },\
             { event_type = \"viewer-response\", function = \"security_headers\" }]\n",
        );
        let config = dir.path().join("slabfront.toml");
        std::fs::write(&config, text).unwrap();
        Setup { dir, config }
    }

    fn cfg(&self) -> config::Config {
        config::Config::from_file(&self.config).unwrap()
    }

    fn engine(&self) -> Engine {
        Engine::new(Arc::new(Functions::for_generation(&self.cfg()).unwrap()))
    }
}

fn write_store(path: &Path, eu: &str, version: u32) {
    let routes = serde_json::json!({ "version": version }).to_string();
    let text = serde_json::json!({ "data": [
        { "key": "origin:eu", "value": eu },
        { "key": "routes", "value": routes },
    ]});
    std::fs::write(path, text.to_string()).unwrap();
}

fn request(uri: &str) -> FnRequest {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    FnRequest {
        method: "GET".into(),
        uri: path.into(),
        querystring: query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        headers: vec![
            ("host".into(), "example.org".into()),
            ("accept".into(), "*/*".into()),
        ],
        cookies: Vec::new(),
    }
}

fn cx() -> FnContext {
    FnContext {
        distribution_domain_name: "d111111abcdef8.cloudfront.net".into(),
        distribution_id: "EDFDVBD6EXAMPLE".into(),
        request_id: "req-1".into(),
        viewer_ip: "198.51.100.3".into(),
    }
}

fn continued(outcome: FnOutcome) -> (FnRequest, Option<OriginChoice>) {
    match outcome {
        FnOutcome::Continue { request, origin } => (request, origin),
        other => panic!("expected the request to continue, got {other:?}"),
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[test]
fn spa_rewrite() {
    let s = Setup::new();
    let mut e = s.engine();
    for (uri, expected) in [
        ("/about", "/index.html"),
        ("/docs/", "/docs/index.html"),
        ("/app.js", "/app.js"),
    ] {
        let (r, _) = continued(e.run_viewer_request("spa", &cx(), &request(uri)).outcome);
        assert_eq!(r.uri, expected, "{uri}");
    }
}

#[test]
fn redirect_by_viewer_country() {
    let s = Setup::new();
    let mut e = s.engine();
    let mut de = request("/shop");
    de.headers.push(("cloudfront-viewer-country".into(), "DE".into()));
    match e.run_viewer_request("country", &cx(), &de).outcome {
        FnOutcome::Respond(r) => {
            assert_eq!(r.status, 302);
            assert_eq!(
                header(&r.headers, "location"),
                Some("https://example.org/de/shop")
            );
        }
        other => panic!("{other:?}"),
    }
    let mut us = request("/shop");
    us.headers.push(("cloudfront-viewer-country".into(), "US".into()));
    assert_eq!(
        continued(e.run_viewer_request("country", &cx(), &us).outcome)
            .0
            .uri,
        "/shop"
    );
}

#[test]
fn query_normalisation_makes_equivalent_urls_one_key() {
    let s = Setup::new();
    let mut e = s.engine();
    let variants = [
        "/list?size=10&page=2",
        "/list?page=2&size=10&utm_source=mail",
        "/list?PAGE=2&fbclid=x&Size=10",
    ];
    let results: Vec<_> = variants
        .iter()
        .map(|v| {
            continued(e.run_viewer_request("querynorm", &cx(), &request(v)).outcome)
                .0
                .querystring
        })
        .collect();
    let expected = vec![
        ("page".to_string(), "2".to_string()),
        ("size".to_string(), "10".to_string()),
    ];
    for (v, r) in variants.iter().zip(&results) {
        assert_eq!(r, &expected, "{v}");
    }
}

#[test]
fn headers_added_on_viewer_response() {
    let s = Setup::new();
    let mut e = s.engine();
    let response = FnResponse {
        status: 200,
        status_description: "OK".into(),
        headers: vec![
            ("content-type".into(), "text/html".into()),
            ("content-length".into(), "5".into()),
        ],
        cookies: vec![SetCookie::parse("sid=abc; Path=/; HttpOnly")],
        body: None,
    };
    match e
        .run_viewer_response("security_headers", &cx(), &request("/"), &response)
        .outcome
    {
        FnOutcome::Response(r) => {
            assert_eq!(header(&r.headers, "x-frame-options"), Some("DENY"));
            assert_eq!(header(&r.headers, "x-content-type-options"), Some("nosniff"));
            assert_eq!(header(&r.headers, "content-type"), Some("text/html"));
            let fields: Vec<String> = r.cookies.iter().map(SetCookie::to_field).collect();
            assert!(
                fields.contains(&"sid=abc; Path=/; HttpOnly".to_string()),
                "{fields:?}"
            );
            assert!(
                fields.contains(&"seen=1; Path=/; Secure".to_string()),
                "{fields:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

fn signed(uri: &str, exp: u64, secret: &[u8]) -> String {
    use hmac::Mac;
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    m.update(format!("{uri}:{exp}").as_bytes());
    let sig: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{uri}?exp={exp}&sig={sig}")
}

#[test]
fn token_check_with_create_hmac() {
    let s = Setup::new();
    let mut e = s.engine();
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let (ok, _) = continued(
        e.run_viewer_request(
            "token",
            &cx(),
            &request(&signed("/video.mp4", later, b"edge-secret")),
        )
        .outcome,
    );
    assert!(
        ok.querystring.is_empty(),
        "the token is stripped: {:?}",
        ok.querystring
    );
    for (uri, why) in [
        (signed("/video.mp4", later, b"wrong-secret"), "signature"),
        (signed("/video.mp4", 1_000, b"edge-secret"), "expired"),
        ("/video.mp4".to_string(), "missing"),
    ] {
        match e.run_viewer_request("token", &cx(), &request(&uri)).outcome {
            FnOutcome::Respond(r) => {
                assert_eq!(r.status, 403);
                assert_eq!(header(&r.headers, "x-denied"), Some(why), "{uri}");
            }
            other => panic!("{uri}: {other:?}"),
        }
    }
}

#[test]
fn ab_test_by_cookie() {
    let s = Setup::new();
    let mut e = s.engine();
    let mut a = request("/home");
    a.cookies.push(("group".into(), "a".into()));
    assert_eq!(
        continued(e.run_viewer_request("ab", &cx(), &a).outcome).0.uri,
        "/home"
    );
    let mut b = request("/home");
    b.cookies.push(("group".into(), "b".into()));
    assert_eq!(
        continued(e.run_viewer_request("ab", &cx(), &b).outcome).0.uri,
        "/b/home"
    );
    // No cookie: the group comes from the address (…3 is odd: b) and is set.
    let (r, _) = continued(e.run_viewer_request("ab", &cx(), &request("/home")).outcome);
    assert_eq!(r.uri, "/b/home");
    assert_eq!(r.cookies, vec![("group".to_string(), "b".to_string())]);
}

#[test]
fn origin_chosen_from_key_value_store_and_store_reloads() {
    let s = Setup::new();
    let functions = Arc::new(Functions::for_generation(&s.cfg()).unwrap());
    let mut e = Engine::new(functions.clone());
    let (r, origin) = continued(
        e.run_viewer_request("kvs_origin", &cx(), &request("/eu/page"))
            .outcome,
    );
    assert_eq!(origin, Some(OriginChoice::ById("eu-origin".into())));
    assert_eq!(header(&r.headers, "x-route-version"), Some("3"));
    let (_, origin) = continued(
        e.run_viewer_request("kvs_origin", &cx(), &request("/us/page"))
            .outcome,
    );
    assert_eq!(origin, Some(OriginChoice::ById("default-origin".into())));

    // The file changes: the store is re-read and the running engine sees it.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_store(&s.dir.path().join("routes.json"), "site", 4);
    assert_eq!(functions.refresh_stores(), vec!["routes".to_string()]);
    let (r, origin) = continued(
        e.run_viewer_request("kvs_origin", &cx(), &request("/eu/page"))
            .outcome,
    );
    assert_eq!(origin, Some(OriginChoice::ById("site".into())));
    assert_eq!(header(&r.headers, "x-route-version"), Some("4"));

    // An origin the distribution does not have fails the function.
    write_store(&s.dir.path().join("routes.json"), "nowhere", 5);
    functions.refresh_stores();
    let out = e
        .run_viewer_request("kvs_origin", &cx(), &request("/eu/page"))
        .outcome;
    assert!(
        matches!(out, FnOutcome::Error(FnError::InvalidReturn(_))),
        "{out:?}"
    );
}

#[test]
fn every_error_path_gives_503_and_is_counted() {
    let s = Setup::new();
    let mut e = s.engine();
    type Expect = fn(&FnError) -> bool;
    let cases: [(&str, Expect); 5] = [
        (
            "throw",
            |e| matches!(e, FnError::Threw(m) if m.contains("deliberate failure")),
        ),
        ("loop", |e| *e == FnError::ComputeExceeded),
        ("alloc", |e| *e == FnError::MemoryExceeded),
        ("invalid", |e| matches!(e, FnError::InvalidReturn(_))),
        (
            "forbidden",
            |e| matches!(e, FnError::Forbidden(m) if m.contains("host")),
        ),
    ];
    for (name, expected) in cases {
        let started = std::time::Instant::now();
        match e.run_viewer_request(name, &cx(), &request("/x")).outcome {
            FnOutcome::Error(err) => {
                assert!(expected(&err), "{name}: {err:?}");
                assert_eq!(err.status(), 503);
            }
            other => panic!("{name}: {other:?}"),
        }
        // The budget stops a loop that never ends: it costs one budget, not a worker.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{name} took {:?}",
            started.elapsed()
        );
        // The engine is still good afterwards.
        assert_eq!(
            continued(e.run_viewer_request("spa", &cx(), &request("/a")).outcome)
                .0
                .uri,
            "/index.html"
        );
    }
    let counters: std::collections::HashMap<_, _> =
        e.counters().map(|(n, c)| (n.to_string(), c.clone())).collect();
    for name in ["throw", "loop", "alloc", "invalid", "forbidden"] {
        assert_eq!(
            (counters[name].invocations, counters[name].errors),
            (1, 1),
            "{name}"
        );
    }
    assert_eq!(counters["loop"].compute_exceeded, 1);
    assert!(counters["loop"].compute_ns >= 1_000_000, "{:?}", counters["loop"]);
    assert_eq!((counters["spa"].invocations, counters["spa"].errors), (5, 0));
}

#[test]
fn nothing_one_invocation_leaves_is_seen_by_the_next() {
    let s = Setup::new();
    let mut e = s.engine();
    for i in 0..3 {
        let (r, _) = continued(
            e.run_viewer_request("isolation", &cx(), &request(&format!("/{i}")))
                .outcome,
        );
        assert_eq!(
            header(&r.headers, "x-count"),
            Some("1"),
            "top-level state is new each time"
        );
        assert_eq!(header(&r.headers, "x-leak"), Some("none"), "implicit global");
        assert_eq!(
            header(&r.headers, "x-global"),
            Some("none"),
            "globalThis property"
        );
        assert_eq!(header(&r.headers, "x-proto"), Some("none"), "built-in prototype");
    }
    // JSON was clobbered by the function; the next function in that context still has it.
    assert!(matches!(
        e.run_viewer_request("isolation", &cx(), &request("/4")).outcome,
        FnOutcome::Continue { .. }
    ));
}

#[test]
fn a_syntax_error_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let code = dir.path().join("broken.js");
    std::fs::write(
        &code,
        "function handler(event) {\n  var x = 1;\n  return x +;\n}\n",
    )
    .unwrap();
    let text = format!(
        "[[origins]]\nid = \"site\"\npath = {:?}\n[[functions]]\nname = \"broken\"\nruntime = \"cloudfront-js-2.0\"\ncode_file = {code:?}\n[default_cache_behavior]\ntarget_origin = \"site\"\n",
        dir.path()
    );
    let cfg = config::Config::from_toml_str(&text).unwrap();
    let problems = Functions::check(&cfg);
    assert_eq!(problems.len(), 1);
    let shown = problems[0].to_string();
    assert!(shown.contains(&format!("{}:3:", code.display())), "{shown}");

    let path = dir.path().join("slabfront.toml");
    std::fs::write(&path, text).unwrap();
    let (ok, _, stderr) = slabfront(&["-c", path.to_str().unwrap(), "check"]);
    assert!(!ok);
    assert!(stderr.contains(&format!("{}:3:", code.display())), "{stderr}");
}

#[test]
fn the_same_function_on_two_workers_at_once() {
    let s = Setup::new();
    let functions = Arc::new(Functions::for_generation(&s.cfg()).unwrap());
    let threads: Vec<_> = (0..2)
        .map(|w| {
            let f = functions.clone();
            std::thread::spawn(move || {
                let mut e = Engine::new(f);
                for i in 0..2000 {
                    let uri = format!("/w{w}/p{i}");
                    let (r, _) = continued(e.run_viewer_request("spa", &cx(), &request(&uri)).outcome);
                    assert_eq!(r.uri, "/index.html");
                    let (r, _) = continued(e.run_viewer_request("isolation", &cx(), &request(&uri)).outcome);
                    assert_eq!(header(&r.headers, "x-leak"), Some("none"));
                }
                let n = e.counters().find(|(n, _)| *n == "spa").unwrap().1.invocations;
                n
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 2000);
    }
}

#[test]
fn limits_are_cloudfronts() {
    let l = Limits::default();
    assert_eq!(l.memory, 2 << 20);
    assert_eq!(l.max_response_bytes, 40 * 1024);
    assert_eq!(config::MAX_FUNCTION_BYTES, 10 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let big = format!(
        "function handler(e) {{ return e.request; }}\n//{}\n",
        "x".repeat(10 * 1024)
    );
    let text = format!(
        "[[origins]]\nid = \"site\"\npath = {:?}\n[[functions]]\nname = \"big\"\nruntime = \"cloudfront-js-2.0\"\ncode = {big:?}\n[default_cache_behavior]\ntarget_origin = \"site\"\n",
        dir.path()
    );
    let err = config::Config::from_toml_str(&text).unwrap_err().to_string();
    assert!(
        err.contains("functions[0].code") && err.contains("10240"),
        "{err}"
    );
}

// `slabfront function test`.

fn slabfront(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_slabfront"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `slabfront function test` and returns (success, the printed JSON, the function's output).
fn cli_test(s: &Setup, name: &str, event: serde_json::Value) -> (bool, serde_json::Value, serde_json::Value) {
    let path = s.dir.path().join(format!("{name}-event.json"));
    std::fs::write(&path, event.to_string()).unwrap();
    let (ok, stdout, stderr) = slabfront(&[
        "-c",
        s.config.to_str().unwrap(),
        "function",
        "test",
        name,
        "--event",
        path.to_str().unwrap(),
    ]);
    let printed: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{name}: {e}: {stdout} {stderr}"));
    let output = printed["FunctionOutput"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(|s| serde_json::from_str(s).unwrap())
        .unwrap_or(serde_json::Value::Null);
    (ok, printed, output)
}

fn event(
    uri: &str,
    query: serde_json::Value,
    headers: serde_json::Value,
    cookies: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "version": "1.0",
        "context": { "eventType": "viewer-request" },
        "viewer": { "ip": "198.51.100.3" },
        "request": { "method": "GET", "uri": uri, "querystring": query, "headers": headers, "cookies": cookies }
    })
}

#[test]
fn function_test_cli_runs_each_common_use() {
    use serde_json::json;
    let s = Setup::new();
    let host = json!({ "host": { "value": "example.org" } });
    let (ok, printed, out) = cli_test(&s, "spa", event("/about", json!({}), host.clone(), json!({})));
    assert!(ok);
    assert_eq!(out["request"]["uri"], "/index.html");
    assert!(printed["ComputeUtilization"]
        .as_str()
        .unwrap()
        .parse::<u32>()
        .is_ok());

    let de = json!({ "host": { "value": "example.org" }, "cloudfront-viewer-country": { "value": "DE" } });
    let (_, _, out) = cli_test(&s, "country", event("/shop", json!({}), de, json!({})));
    assert_eq!(out["response"]["statusCode"], 302);
    assert_eq!(
        out["response"]["headers"]["location"]["value"],
        "https://example.org/de/shop"
    );

    let q = json!({ "Size": { "value": "10" }, "utm_source": { "value": "x" }, "page": { "value": "2" } });
    let (_, _, out) = cli_test(&s, "querynorm", event("/list", q, host.clone(), json!({})));
    assert_eq!(
        out["request"]["querystring"],
        json!({ "page": { "value": "2" }, "size": { "value": "10" } })
    );

    let resp_event = json!({
        "version": "1.0",
        "context": { "eventType": "viewer-response" },
        "viewer": { "ip": "198.51.100.3" },
        "request": { "method": "GET", "uri": "/", "querystring": {}, "headers": host, "cookies": {} },
        "response": { "statusCode": 200, "statusDescription": "OK",
                      "headers": { "content-type": { "value": "text/html" } }, "cookies": {} }
    });
    let (_, _, out) = cli_test(&s, "security_headers", resp_event);
    assert_eq!(out["response"]["headers"]["x-frame-options"]["value"], "DENY");

    let (ok, _, out) = cli_test(
        &s,
        "token",
        event("/video.mp4", json!({}), host.clone(), json!({})),
    );
    assert!(ok);
    assert_eq!(out["response"]["statusCode"], 403);

    let (_, _, out) = cli_test(
        &s,
        "ab",
        event(
            "/home",
            json!({}),
            host.clone(),
            json!({ "group": { "value": "b" } }),
        ),
    );
    assert_eq!(out["request"]["uri"], "/b/home");

    let (_, _, out) = cli_test(&s, "kvs_origin", event("/eu/x", json!({}), host, json!({})));
    assert_eq!(out["origin"]["originId"], "eu-origin");
    assert_eq!(out["request"]["headers"]["x-route-version"]["value"], "3");
}

#[test]
fn function_test_cli_reports_errors_and_logs() {
    use serde_json::json;
    let s = Setup::new();
    let host = json!({ "host": { "value": "example.org" } });
    for (name, text) in [
        ("throw", "deliberate failure"),
        ("loop", "compute budget"),
        ("alloc", "memory limit"),
        ("invalid", "invalid return value"),
        ("forbidden", "read-only"),
    ] {
        let (ok, printed, _) = cli_test(&s, name, event("/x", json!({}), host.clone(), json!({})));
        assert!(!ok, "{name} exits 1");
        let message = printed["FunctionErrorMessage"].as_str().unwrap();
        assert!(message.contains(text), "{name}: {message}");
    }
    // console.log output is in the result.
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[[origins]]\nid = \"site\"\npath = {:?}\n[[functions]]\nname = \"logs\"\nruntime = \"cloudfront-js-2.0\"\ncode = \"function handler(e) {{ console.log('uri', e.request.uri, {{ a: 1 }}); return e.request; }}\"\n[default_cache_behavior]\ntarget_origin = \"site\"\n",
        dir.path()
    );
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, text).unwrap();
    let ev = dir.path().join("e.json");
    std::fs::write(&ev, event("/hello", json!({}), host, json!({})).to_string()).unwrap();
    let (ok, stdout, _) = slabfront(&[
        "-c",
        cfg.to_str().unwrap(),
        "function",
        "test",
        "logs",
        "--event",
        ev.to_str().unwrap(),
    ]);
    assert!(ok);
    let printed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(printed["FunctionExecutionLogs"], json!(["uri /hello {\"a\":1}"]));
}
