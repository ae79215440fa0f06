//! The JavaScript engine: QuickJS through `rquickjs` (chosen by measurement, see
//! `docs/edge-functions-engine.md`).
//!
//! One [`Engine`] per worker thread: its own QuickJS runtime, never shared, never locked.
//! Functions are compiled to bytecode once per configuration generation ([`compile`],
//! called by `Functions::for_generation`). A fresh QuickJS context costs hundreds of
//! microseconds, so each function gets one context per worker, made on its first
//! invocation, and the context is *reset* around every invocation instead:
//!
//! * the function's code is compiled wrapped in a function, and that wrapper runs again for
//!   every invocation: top-level `var`s, `const`s and functions are created anew each time;
//! * after the invocation the global object is put back as it was (globals the code made
//!   are deleted, globals it replaced or deleted are restored);
//! * built-in objects and prototypes cannot gain properties, and helper modules are frozen;
//! * a context whose invocation failed (threw, ran out of budget or memory) or whose global
//!   object cannot be put back is thrown away, and the next invocation gets a new one.
//!
//! The compute budget is enforced by QuickJS's interrupt handler (called every few thousand
//! bytecode instructions) against the thread's CPU clock; memory by the runtime's
//! allocation limit, set to what the contexts take plus the function's allowance.
//!
//! Unsafe code here is limited to QuickJS's bytecode functions (`JS_Eval` with
//! `COMPILE_ONLY`, `JS_WriteObject`, `JS_ReadObject`, `JS_EvalFunction`), which `rquickjs`
//! does not wrap for scripts.
#![allow(unsafe_code)]

use super::event::{self, EventKind};
use super::event_js;
use super::kvs::Store;
use super::limits::Limits;
use super::modules;
use super::{Compiled, FnContext, FnError, FnOutcome, FnRequest, FnResponse, Functions, OriginChoice};
use rquickjs::context::EvalOptions;
use rquickjs::{qjs, CaughtError, Ctx, Function, Object, Persistent, Promise, Runtime, TypedArray, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Per-function counters of one worker, plain integers: the worker sums nothing and locks
/// nothing; `/metrics` adds the workers' values up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Invocations, successful or not.
    pub invocations: u64,
    /// Invocations that gave the viewer a 503.
    pub errors: u64,
    /// Of those, the ones stopped by the compute budget.
    pub compute_exceeded: u64,
    /// CPU time spent in the function, nanoseconds.
    pub compute_ns: u64,
}

/// What one invocation gave, with what `slabfront function test` prints.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub outcome: FnOutcome,
    /// CPU time the function used (its code, not the context set-up).
    pub compute: Duration,
    /// `compute` as a percentage of the budget (CloudFront's "compute utilization").
    pub utilization: u32,
    /// `console.log` output, in order (truncated at the log limit).
    pub logs: Vec<String>,
}

/// The thread's CPU clock.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID always exists on
    // Linux, and the call writes nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The running invocation's budget, read by the interrupt handler.
#[derive(Default)]
struct Budget {
    /// CPU clock at which the invocation is stopped; `None` between invocations.
    deadline: Cell<Option<Duration>>,
    /// Set when the handler stopped an invocation.
    fired: Cell<bool>,
}

/// One function's context on this worker.
struct Slot {
    /// The compiled wrapper: calling it runs the function's top level and returns `handler`.
    wrapper: Persistent<Function<'static>>,
    /// Puts the global object back after an invocation (from the prelude).
    reset: Persistent<Function<'static>>,
    /// What the natives of this context write to, emptied for every invocation.
    effects: Rc<RefCell<Effects>>,
    ctx: rquickjs::Context,
}

/// A worker's engine. Create one per worker thread (it is neither `Send` nor `Sync`).
pub struct Engine {
    // Declared before `rt`: contexts and their values go before the runtime.
    slots: Vec<Option<Slot>>,
    functions: Arc<Functions>,
    budget: Rc<Budget>,
    counters: Vec<Counters>,
    /// This worker's copy of the key-value stores, and the version it was copied at.
    stores: SharedStores,
    rt: Runtime,
}

type SharedStores = Rc<RefCell<(u64, HashMap<String, Arc<Store>>)>>;

/// What the natives of one invocation write to.
#[derive(Default)]
struct Effects {
    logs: Vec<String>,
    log_bytes: usize,
    origin: Option<OriginChoice>,
    /// An error a native raised that must fail the invocation whatever the code catches.
    fatal: Option<FnError>,
}

impl Engine {
    /// An engine for this generation's functions.
    pub fn new(functions: Arc<Functions>) -> Engine {
        // Runtime creation fails only when the allocator does; nothing can run then.
        let rt = Runtime::new().expect("cannot allocate a JavaScript runtime");
        let budget = Rc::new(Budget::default());
        let b = budget.clone();
        rt.set_interrupt_handler(Some(Box::new(move || match b.deadline.get() {
            Some(deadline) if thread_cpu() >= deadline => {
                b.fired.set(true);
                true
            }
            _ => false,
        })));
        rt.set_max_stack_size(functions.limits.stack);
        let n = functions.functions.len();
        let stores = Rc::new(RefCell::new(functions.stores.snapshot()));
        let mut engine = Engine {
            slots: (0..n).map(|_| None).collect(),
            functions,
            budget,
            counters: vec![Counters::default(); n],
            stores,
            rt,
        };
        engine.set_memory_limit();
        engine
    }

    /// Contexts take what they take; allow the running function `limits.memory` above that.
    /// Measured when a context is made or dropped (rare), never per invocation.
    fn set_memory_limit(&mut self) {
        self.rt.set_memory_limit(0);
        self.rt.run_gc();
        let used = self.rt.memory_usage().malloc_size.max(0) as usize;
        self.rt
            .set_memory_limit(used + self.functions.limits.memory + (512 << 10));
    }

    /// Switches to a new configuration generation (after a reload); the counters of
    /// functions that keep their name carry over, contexts are made anew.
    pub fn set_generation(&mut self, functions: Arc<Functions>) {
        let old: std::collections::HashMap<&str, Counters> = self
            .functions
            .names()
            .zip(self.counters.iter().cloned())
            .collect();
        let counters = functions
            .names()
            .map(|n| old.get(n).cloned().unwrap_or_default())
            .collect();
        self.counters = counters;
        self.slots = (0..functions.functions.len()).map(|_| None).collect();
        *self.stores.borrow_mut() = functions.stores.snapshot();
        self.rt.set_max_stack_size(functions.limits.stack);
        self.functions = functions;
        self.set_memory_limit();
    }

    /// The generation this engine runs.
    pub fn functions(&self) -> &Arc<Functions> {
        &self.functions
    }

    /// Per-function counters, in the order of [`Functions::names`].
    pub fn counters(&self) -> impl Iterator<Item = (&str, &Counters)> {
        self.functions.names().zip(self.counters.iter())
    }

    /// Runs a viewer-request function. The outcome is `Continue`, `Respond` or `Error`.
    pub fn run_viewer_request(&mut self, name: &str, cx: &FnContext, request: &FnRequest) -> Invocation {
        self.run(name, cx, request, None, EventKind::Request { original: request })
    }

    /// Runs a viewer-response function. The outcome is `Response` or `Error`.
    pub fn run_viewer_response(
        &mut self,
        name: &str,
        cx: &FnContext,
        request: &FnRequest,
        response: &FnResponse,
    ) -> Invocation {
        self.run(
            name,
            cx,
            request,
            Some(response),
            EventKind::Response { original: response },
        )
    }

    /// Runs a function on an event given as CloudFront's JSON (`slabfront function test`).
    pub fn run_event_json(
        &mut self,
        name: &str,
        event_json: &serde_json::Value,
    ) -> Result<Invocation, String> {
        let (cx, request, response) = event::from_test_event(event_json)?;
        Ok(match response {
            None => self.run_viewer_request(name, &cx, &request),
            Some(response) => self.run_viewer_response(name, &cx, &request, &response),
        })
    }

    fn run(
        &mut self,
        name: &str,
        cx: &FnContext,
        request: &FnRequest,
        response: Option<&FnResponse>,
        kind: EventKind<'_>,
    ) -> Invocation {
        let Some(&index) = self.functions.by_name.get(name) else {
            return Invocation {
                outcome: FnOutcome::Error(FnError::Unknown(name.to_string())),
                compute: Duration::ZERO,
                utilization: 0,
                logs: Vec::new(),
            };
        };
        let (result, compute, effects) = self.invoke(
            index,
            &Event {
                cx,
                request,
                response,
            },
        );
        // Logs go to the debug log, never to the viewer.
        for line in &effects.logs {
            tracing::debug!(function = name, "console: {line}");
        }
        let limits = &self.functions.limits;
        let outcome = match (result, effects.fatal) {
            (_, Some(e)) | (Err(e), None) => FnOutcome::Error(e),
            (Ok(value), None) => event::outcome_value(value, kind, effects.origin, limits),
        };
        let budget = limits.compute.as_nanos().max(1);
        let c = &mut self.counters[index];
        c.invocations += 1;
        c.compute_ns += compute.as_nanos() as u64;
        if let FnOutcome::Error(e) = &outcome {
            c.errors += 1;
            if *e == FnError::ComputeExceeded {
                c.compute_exceeded += 1;
            }
        }
        Invocation {
            outcome,
            compute,
            utilization: (compute.as_nanos() * 100 / budget).min(u32::MAX as u128) as u32,
            logs: effects.logs,
        }
    }

    /// One invocation: the returned value, the CPU time used, the side effects.
    fn invoke(
        &mut self,
        index: usize,
        event: &Event<'_>,
    ) -> (Result<serde_json::Value, FnError>, Duration, Effects) {
        let version = self
            .functions
            .stores
            .version
            .load(std::sync::atomic::Ordering::Acquire);
        if version != self.stores.borrow().0 {
            *self.stores.borrow_mut() = self.functions.stores.snapshot();
        }
        if self.slots[index].is_none() {
            match self.make_slot(index) {
                Ok(slot) => {
                    self.slots[index] = Some(slot);
                    self.set_memory_limit();
                }
                Err(e) => return (Err(e), Duration::ZERO, Effects::default()),
            }
        }
        let Some(slot) = self.slots[index].as_ref() else {
            return (
                Err(FnError::Engine("no context".into())),
                Duration::ZERO,
                Effects::default(),
            );
        };
        let budget = self.budget.clone();
        let compute = self.functions.limits.compute;
        let mut used = Duration::ZERO;
        let mut keep = false;
        let result = slot.ctx.with(|ctx| {
            update_stack_top(&ctx);
            let start = thread_cpu();
            budget.fired.set(false);
            budget.deadline.set(Some(start + compute));
            let r = run_handler(&ctx, slot, event);
            budget.deadline.set(None);
            used = thread_cpu().saturating_sub(start);
            let r = r.map_err(|e| classify(&ctx, e, budget.fired.get()));
            if r.is_ok() {
                keep = slot
                    .reset
                    .clone()
                    .restore(&ctx)
                    .and_then(|reset| reset.call::<_, bool>(()))
                    .unwrap_or(false);
            }
            r
        });
        let effects = std::mem::take(&mut *slot.effects.borrow_mut());
        if !keep {
            // Failed, or the global object could not be put back: a new context next time.
            self.slots[index] = None;
            self.set_memory_limit();
        }
        (result, used, effects)
    }

    /// A context for one function: natives, prelude, and the function's compiled wrapper.
    fn make_slot(&self, index: usize) -> Result<Slot, FnError> {
        let compiled = &self.functions.functions[index];
        let ctx = rquickjs::Context::full(&self.rt).map_err(|e| FnError::Engine(e.to_string()))?;
        let effects = Rc::new(RefCell::new(Effects::default()));
        let made = ctx.with(|ctx| -> rquickjs::Result<_> {
            update_stack_top(&ctx);
            install_natives(&ctx, compiled, &self.functions, &self.stores, &effects)?;
            let reset: Function = ctx.eval_with_options(modules::PRELUDE, script_options("<prelude>"))?;
            let wrapper = load_bytecode(&ctx, &compiled.bytecode)?;
            let wrapper = wrapper
                .into_function()
                .ok_or_else(|| rquickjs::Exception::throw_type(&ctx, "compiled code is not a function"))?;
            Ok((Persistent::save(&ctx, wrapper), Persistent::save(&ctx, reset)))
        });
        let (wrapper, reset) = made.map_err(|e| ctx.with(|c| classify(&c, e, false)))?;
        Ok(Slot {
            wrapper,
            reset,
            effects,
            ctx,
        })
    }
}

/// QuickJS measures its stack limit from the stack top recorded when the runtime was made
/// (or last updated), but a worker calls in from wherever its exchange is, shallower or much
/// deeper: the top is taken again before every entry.
fn update_stack_top(ctx: &Ctx<'_>) {
    // SAFETY: the context is live, so JS_GetRuntime returns its live runtime; JS_UpdateStackTop
    // only stores the current stack pointer in it.
    unsafe { qjs::JS_UpdateStackTop(qjs::JS_GetRuntime(ctx.as_raw().as_ptr())) }
}

/// What an event is built from.
struct Event<'a> {
    cx: &'a FnContext,
    request: &'a FnRequest,
    response: Option<&'a FnResponse>,
}

/// The handler's result (awaited when the handler is `async`), read out of the engine.
fn run_handler<'js>(ctx: &Ctx<'js>, slot: &Slot, event: &Event<'_>) -> rquickjs::Result<serde_json::Value> {
    let wrapper = slot.wrapper.clone().restore(ctx)?;
    let handler: Value = wrapper.call(())?;
    let Some(handler) = handler.as_function() else {
        return Err(rquickjs::Exception::throw_reference(
            ctx,
            "handler is not defined",
        ));
    };
    let event = event_js::event(ctx, event.cx, event.request, event.response)?;
    let mut result: Value = handler.call((event,))?;
    if let Some(p) = result.as_promise() {
        let p: Promise = p.clone();
        result = p.finish()?;
    }
    match event_js::to_json(&result, 0)? {
        Some(v) => Ok(v),
        None => Err(rquickjs::Exception::throw_type(
            ctx,
            "the returned value nests too deeply (or refers to itself)",
        )),
    }
}

/// Maps an engine error to why the function failed.
fn classify(ctx: &Ctx<'_>, e: rquickjs::Error, interrupted: bool) -> FnError {
    if interrupted {
        return FnError::ComputeExceeded;
    }
    let caught = CaughtError::from_error(ctx, e);
    let text = caught.to_string();
    if text.contains("out of memory") || matches!(caught, CaughtError::Error(rquickjs::Error::Allocation)) {
        return FnError::MemoryExceeded;
    }
    if text.contains("stack overflow") {
        return FnError::MemoryExceeded;
    }
    FnError::Threw(text.trim_end().replace('\n', " | "))
}

/// Compiles code to QuickJS bytecode (once per generation). A syntax error is returned with
/// its line.
pub(crate) fn compile(code: &str, file: &str, limits: &Limits) -> Result<Vec<u8>, (u32, String)> {
    let rt = Runtime::new().map_err(|e| (0, e.to_string()))?;
    rt.set_max_stack_size(limits.stack);
    let ctx = rquickjs::Context::full(&rt).map_err(|e| (0, e.to_string()))?;
    ctx.with(|ctx| {
        compile_in(&ctx, code, file).map_err(|e| {
            let caught = CaughtError::from_error(&ctx, e);
            let text = caught.to_string();
            (line_of(&text, file), first_line(&text))
        })
    })
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_string()
}

/// The line of `file:LINE` in a QuickJS stack.
fn line_of(text: &str, file: &str) -> u32 {
    let needle = format!("{file}:");
    text.find(&needle)
        .map(|at| &text[at + needle.len()..])
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0)
}

fn compile_in(ctx: &Ctx<'_>, code: &str, file: &str) -> rquickjs::Result<Vec<u8>> {
    let source = std::ffi::CString::new(code)?;
    let name = std::ffi::CString::new(file)?;
    let raw = ctx.as_raw().as_ptr();
    let flags = (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32;
    // SAFETY: `raw` is the live context of `ctx`; `source` and `name` are NUL-terminated and
    // outlive the call; the length excludes the terminating NUL, as JS_Eval requires.
    let value = unsafe { qjs::JS_Eval(raw, source.as_ptr(), code.len() as _, name.as_ptr(), flags) };
    // SAFETY: JS_Eval returned a new reference owned by us; `Value` takes it over and frees
    // it when dropped.
    let value = unsafe { Value::from_raw(ctx.clone(), value) };
    if value.is_exception() {
        return Err(rquickjs::Error::Exception);
    }
    let mut size: qjs::size_t = 0;
    // SAFETY: `value` is a compiled function object of this context; `size` is writable.
    let buf =
        unsafe { qjs::JS_WriteObject(raw, &mut size, value.as_raw(), qjs::JS_WRITE_OBJ_BYTECODE as i32) };
    if buf.is_null() {
        return Err(rquickjs::Error::Allocation);
    }
    // SAFETY: JS_WriteObject returned a buffer of `size` bytes allocated in this context.
    let bytes = unsafe { std::slice::from_raw_parts(buf, size as usize) }.to_vec();
    // SAFETY: the buffer came from this context's allocator and is not used after this.
    unsafe { qjs::js_free(raw, buf.cast()) };
    Ok(bytes)
}

/// Loads bytecode made by [`compile_in`] and runs it: the value is the wrapper function.
fn load_bytecode<'js>(ctx: &Ctx<'js>, bytecode: &[u8]) -> rquickjs::Result<Value<'js>> {
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: the bytes were written by JS_WriteObject of this same QuickJS build in this
    // process (`Functions` holds nothing else), which is what JS_ReadObject requires of
    // bytecode; the slice outlives the call.
    let func = unsafe {
        qjs::JS_ReadObject(
            raw,
            bytecode.as_ptr(),
            bytecode.len() as _,
            qjs::JS_READ_OBJ_BYTECODE as i32,
        )
    };
    // SAFETY: a new reference owned by us (or the exception marker), taken over by `Value`.
    let func = unsafe { Value::from_raw(ctx.clone(), func) };
    if func.is_exception() {
        return Err(rquickjs::Error::Exception);
    }
    // SAFETY: JS_EvalFunction consumes the reference it is given: it gets a reference of its
    // own (`JS_DupValue`), `func` keeps and frees the one it owns; the result is a new
    // reference owned by us.
    let result = unsafe { qjs::JS_EvalFunction(raw, qjs::JS_DupValue(raw, func.as_raw())) };
    // SAFETY: as above, `Value` frees it when dropped.
    let result = unsafe { Value::from_raw(ctx.clone(), result) };
    if result.is_exception() {
        return Err(rquickjs::Error::Exception);
    }
    Ok(result)
}

/// The natives the prelude and modules call.
fn install_natives<'js>(
    ctx: &Ctx<'js>,
    compiled: &Compiled,
    functions: &Arc<Functions>,
    stores: &SharedStores,
    effects: &Rc<RefCell<Effects>>,
) -> rquickjs::Result<()> {
    let limits = &functions.limits;
    let g: Object = ctx.globals();
    let fx = effects.clone();
    let max_log = limits.max_log_bytes;
    g.set(
        "__cf_log",
        Function::new(ctx.clone(), move |line: String| {
            let mut fx = fx.borrow_mut();
            if fx.log_bytes < max_log {
                let room = max_log - fx.log_bytes;
                let mut line = line;
                if line.len() > room {
                    let mut cut = room;
                    while !line.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    line.truncate(cut);
                }
                fx.log_bytes += line.len();
                fx.logs.push(line);
            }
        })?,
    )?;
    g.set(
        "__cf_digest",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>,
             alg: String,
             key: Value<'js>,
             parts: Vec<Value<'js>>|
             -> rquickjs::Result<TypedArray<'js, u8>> {
                let key = if key.is_null() || key.is_undefined() {
                    None
                } else {
                    Some(bytes_of(&ctx, key)?)
                };
                let parts = parts
                    .into_iter()
                    .map(|p| bytes_of(&ctx, p))
                    .collect::<rquickjs::Result<Vec<_>>>()?;
                let raw = modules::digest(&alg, key.as_deref(), &parts)
                    .map_err(|m| rquickjs::Exception::throw_message(&ctx, &m))?;
                TypedArray::new(ctx, raw)
            },
        )?,
    )?;
    g.set(
        "__cf_encode",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, bytes: Value<'js>, enc: String| -> rquickjs::Result<String> {
                let b = bytes_of(&ctx, bytes)?;
                modules::encode(&b, &enc).map_err(|m| rquickjs::Exception::throw_type(&ctx, &m))
            },
        )?,
    )?;
    g.set(
        "__cf_decode",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, text: String, enc: String| -> rquickjs::Result<TypedArray<'js, u8>> {
                let b =
                    modules::decode(&text, &enc).map_err(|m| rquickjs::Exception::throw_type(&ctx, &m))?;
                TypedArray::new(ctx, b)
            },
        )?,
    )?;
    let runtime = compiled.runtime;
    g.set(
        "__cf_load",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, name: String| -> rquickjs::Result<Value<'js>> {
                match modules::source(runtime, &name) {
                    Some(src) => ctx.eval_with_options(src, script_options(&format!("<{name}>"))),
                    None => Ok(Value::new_undefined(ctx)),
                }
            },
        )?,
    )?;
    install_cloudfront(ctx, &g, compiled, functions, stores, effects)
}

/// `__cf_kvs` and `__cf_origin`, behind the `cloudfront` module.
fn install_cloudfront<'js>(
    ctx: &Ctx<'js>,
    g: &Object<'js>,
    compiled: &Compiled,
    functions: &Arc<Functions>,
    stores: &SharedStores,
    effects: &Rc<RefCell<Effects>>,
) -> rquickjs::Result<()> {
    let fs = stores.clone();
    let own = compiled.store.clone();
    g.set(
        "__cf_kvs",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, id: String, key: String, op: String| -> rquickjs::Result<Value<'js>> {
                let id = if op == "open" && id.is_empty() {
                    own.clone().ok_or_else(|| {
                        rquickjs::Exception::throw_message(
                            &ctx,
                            "no key-value store is associated with this function",
                        )
                    })?
                } else {
                    id
                };
                let Some(store) = fs.borrow().1.get(&id).cloned() else {
                    return Err(rquickjs::Exception::throw_message(
                        &ctx,
                        &format!("unknown key-value store {id:?}"),
                    ));
                };
                match op.as_str() {
                    "open" => rquickjs::String::from_str(ctx, &id).map(|s| s.into_value()),
                    "get" => match store.get(&key) {
                        Some(v) => rquickjs::String::from_str(ctx, v).map(|s| s.into_value()),
                        None => Ok(Value::new_undefined(ctx)),
                    },
                    "exists" => Ok(Value::new_bool(ctx, store.get(&key).is_some())),
                    _ => {
                        let meta = serde_json::json!({
                            "creationDateTime": "",
                            "lastUpdatedDateTime": "",
                            "keyCount": store.len(),
                        });
                        rquickjs::String::from_str(ctx, &meta.to_string()).map(|s| s.into_value())
                    }
                }
            },
        )?,
    )?;
    let fx = effects.clone();
    let origins = functions.origins.clone();
    g.set(
        "__cf_origin",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, op: String, arg: String| -> rquickjs::Result<()> {
                let choice = if op == "select" {
                    if !origins.contains(&arg) {
                        let e = FnError::InvalidReturn(format!(
                            "selectRequestOriginById: no origin has id {arg:?}"
                        ));
                        fx.borrow_mut().fatal = Some(e);
                        return Err(rquickjs::Exception::throw_message(
                            &ctx,
                            &format!("no origin has id {arg:?}"),
                        ));
                    }
                    OriginChoice::ById(arg)
                } else {
                    match serde_json::from_str::<serde_json::Value>(&arg) {
                        Ok(v @ serde_json::Value::Object(_)) => OriginChoice::Update(v),
                        _ => {
                            return Err(rquickjs::Exception::throw_type(
                                &ctx,
                                "updateRequestOrigin takes an object of origin parameters",
                            ))
                        }
                    }
                };
                fx.borrow_mut().origin = Some(choice);
                Ok(())
            },
        )?,
    )?;
    Ok(())
}

fn script_options(file: &str) -> EvalOptions {
    let mut o = EvalOptions::default();
    o.global = true;
    o.strict = false;
    o.promise = false;
    o.filename = Some(file.to_string());
    o
}

/// The bytes of a string (UTF-8), a typed array or an array buffer.
fn bytes_of<'js>(ctx: &Ctx<'js>, v: Value<'js>) -> rquickjs::Result<Vec<u8>> {
    if let Some(s) = v.as_string() {
        return Ok(s.to_string()?.into_bytes());
    }
    if let Ok(a) = TypedArray::<u8>::from_value(v.clone()) {
        // SAFETY: the bytes are copied before any JavaScript runs again.
        return Ok(unsafe { a.as_bytes() }.map(<[u8]>::to_vec).unwrap_or_default());
    }
    if let Some(b) = v
        .as_object()
        .and_then(|o| rquickjs::ArrayBuffer::from_object(o.clone()))
    {
        // SAFETY: the bytes are copied before any JavaScript runs again.
        return Ok(unsafe { b.as_bytes() }.map(<[u8]>::to_vec).unwrap_or_default());
    }
    Err(rquickjs::Exception::throw_type(
        ctx,
        "expected a string, a Buffer or a Uint8Array",
    ))
}
