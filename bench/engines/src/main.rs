//! rquickjs vs boa_engine on a CloudFront viewer-request URI rewrite:
//! fresh context, evaluate the function, parse the event, call handler, stringify the result;
//! and the same with one context reused (the function compiled once, wrapped in a function
//! that is called again per invocation). Times are the thread's CPU time.
//!
//! `cargo run --release` in this directory.
use std::time::Duration;

/// Thread CPU time: the machine is shared, wall time would measure the neighbours.
#[derive(Clone, Copy)]
struct Instant(Duration);

impl Instant {
    fn now() -> Instant {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: a valid timespec to write to; the clock exists on Linux.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        Instant(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }
    fn elapsed(&self) -> Duration {
        Instant::now().0 - self.0
    }
}

const CODE: &str = r#"
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
"#;
const EVENT: &str = r#"{"version":"1.0","context":{"distributionDomainName":"d1.cloudfront.net","distributionId":"EDFDVBD6EXAMPLE","eventType":"viewer-request","requestId":"4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ=="},"viewer":{"ip":"198.51.100.11"},"request":{"method":"GET","uri":"/about","querystring":{},"headers":{"host":{"value":"example.org"},"accept":{"value":"text/html"},"user-agent":{"value":"curl/8.0"}},"cookies":{}}}"#;

fn quickjs(n: usize) -> (f64, String) {
    use rquickjs::{context::EvalOptions, Context, Function, Runtime, Value};
    let rt = Runtime::new().unwrap();
    rt.set_memory_limit(16 << 20);
    let mut out = String::new();
    let t = Instant::now();
    for _ in 0..n {
        let ctx = Context::full(&rt).unwrap();
        ctx.with(|ctx| {
            let mut o = EvalOptions::default();
            o.global = true;
            o.promise = false;
            ctx.eval_with_options::<(), _>(CODE, o).unwrap();
            let f: Function = ctx.globals().get("handler").unwrap();
            let ev = ctx.json_parse(EVENT).unwrap();
            let r: Value = f.call((ev,)).unwrap();
            out = ctx.json_stringify(r).unwrap().unwrap().to_string().unwrap();
        });
    }
    (t.elapsed().as_secs_f64() * 1e6 / n as f64, out)
}

fn quickjs_ctx_only(n: usize) -> f64 {
    use rquickjs::{Context, Runtime};
    let rt = Runtime::new().unwrap();
    let t = Instant::now();
    for _ in 0..n {
        let _ctx = Context::full(&rt).unwrap();
    }
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn boa(n: usize) -> (f64, String) {
    use boa_engine::{js_string, Context, JsValue, Source};
    let ev: serde_json::Value = serde_json::from_str(EVENT).unwrap();
    let mut out = String::new();
    let t = Instant::now();
    for _ in 0..n {
        let mut ctx = Context::default();
        ctx.eval(Source::from_bytes(CODE)).unwrap();
        let h = ctx.global_object().get(js_string!("handler"), &mut ctx).unwrap();
        let e = JsValue::from_json(&ev, &mut ctx).unwrap();
        let r = h.as_callable().unwrap().call(&JsValue::undefined(), &[e], &mut ctx).unwrap();
        out = r.to_json(&mut ctx).unwrap().unwrap().to_string();
    }
    (t.elapsed().as_secs_f64() * 1e6 / n as f64, out)
}

fn boa_ctx_only(n: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        let _ctx = boa_engine::Context::default();
    }
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

const WRAP_PRE: &str = "(function(){\n";
const WRAP_POST: &str = "\n;return handler;})";

fn quickjs_reuse(n: usize) -> (f64, String) {
    use rquickjs::{context::EvalOptions, Context, Function, Runtime, Value};
    let rt = Runtime::new().unwrap();
    rt.set_memory_limit(16 << 20);
    let ctx = Context::full(&rt).unwrap();
    let mut out = String::new();
    let t = Instant::now();
    ctx.with(|ctx| {
        let mut o = EvalOptions::default();
        o.global = true;
        o.strict = false;
        o.promise = false;
        let wrapper: Function = ctx.eval_with_options(format!("{WRAP_PRE}{CODE}{WRAP_POST}"), o).unwrap();
        for _ in 0..n {
            let h: Function = wrapper.call(()).unwrap();
            let ev = ctx.json_parse(EVENT).unwrap();
            let r: Value = h.call((ev,)).unwrap();
            out = ctx.json_stringify(r).unwrap().unwrap().to_string().unwrap();
        }
    });
    (t.elapsed().as_secs_f64() * 1e6 / n as f64, out)
}

fn boa_reuse(n: usize) -> (f64, String) {
    use boa_engine::{Context, JsValue, Source};
    let ev: serde_json::Value = serde_json::from_str(EVENT).unwrap();
    let mut out = String::new();
    let mut ctx = Context::default();
    let t = Instant::now();
    let wrapper = ctx.eval(Source::from_bytes(&format!("{WRAP_PRE}{CODE}{WRAP_POST}"))).unwrap();
    let wrapper = wrapper.as_callable().unwrap().clone();
    for _ in 0..n {
        let h = wrapper.call(&JsValue::undefined(), &[], &mut ctx).unwrap();
        let e = JsValue::from_json(&ev, &mut ctx).unwrap();
        let r = h.as_callable().unwrap().call(&JsValue::undefined(), &[e], &mut ctx).unwrap();
        out = r.to_json(&mut ctx).unwrap().unwrap().to_string();
    }
    (t.elapsed().as_secs_f64() * 1e6 / n as f64, out)
}

fn main() {
    for round in 0..3 {
        let (qr, _) = quickjs_reuse(200_000);
        let (br, _) = boa_reuse(50_000);
        println!("round {round}: reused context: rquickjs {qr:.2} us/invocation; boa_engine {br:.2} us/invocation");
    }
    for round in 0..3 {
        let (q, qo) = quickjs(20_000);
        let qc = quickjs_ctx_only(20_000);
        let (b, bo) = boa(500);
        let bc = boa_ctx_only(500);
        if round == 0 {
            println!("quickjs result: {qo}\nboa result:     {bo}");
        }
        println!("round {round}: rquickjs {q:.1} us/invocation (context alone {qc:.1}); boa_engine {b:.1} us/invocation (context alone {bc:.1})");
    }
}
