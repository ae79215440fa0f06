//! CloudFront Functions in the configuration: `[[functions]]`, `[[key_value_stores]]` and the
//! `function_associations` of a cache behavior, and their checks.
//!
//! This module knows the keys and CloudFront's limits on them; it does not compile JavaScript
//! or read a key-value store's entries (the server does both, so `slabfront check` reports a
//! syntax error with its file and line).

use crate::schema::{CacheBehavior, Config};
use serde::Deserialize;
use std::collections::HashSet;

/// CloudFront's limit on a function's code, in bytes.
pub const MAX_FUNCTION_BYTES: usize = 10 * 1024;

/// `[[functions]]`: one CloudFront Function.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Function {
    /// The name associations refer to (1-64 characters: letters, digits, `-`, `_`).
    pub name: String,
    /// `cloudfront-js-1.0` or `cloudfront-js-2.0`.
    pub runtime: FunctionRuntime,
    /// A file holding the code (exactly one of `code_file` and `code`).
    #[serde(default)]
    pub code_file: Option<String>,
    /// The code itself.
    #[serde(default)]
    pub code: Option<String>,
    /// Free text.
    #[serde(default)]
    pub comment: String,
    /// Ids of `[[key_value_stores]]` the function reads (at most one, as in CloudFront;
    /// `cloudfront-js-2.0` only).
    #[serde(default)]
    pub key_value_stores: Vec<String>,
}

impl Function {
    /// The function's code and where it comes from (the file, or `functions.NAME.code`).
    pub fn source(&self) -> std::io::Result<(String, String)> {
        match (&self.code, &self.code_file) {
            (Some(code), _) => Ok((code.clone(), format!("functions.{}.code", self.name))),
            (None, Some(file)) => Ok((std::fs::read_to_string(file)?, file.clone())),
            (None, None) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the function has neither code nor code_file",
            )),
        }
    }
}

/// A CloudFront Functions runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum FunctionRuntime {
    /// ES 5.1 with some later additions; no key-value stores, no `Buffer`.
    #[serde(rename = "cloudfront-js-1.0")]
    Js1,
    /// ES 2020-ish: `async`/`await`, `Buffer`, the `cloudfront` module.
    #[serde(rename = "cloudfront-js-2.0")]
    Js2,
}

impl FunctionRuntime {
    /// The name as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionRuntime::Js1 => "cloudfront-js-1.0",
            FunctionRuntime::Js2 => "cloudfront-js-2.0",
        }
    }
}

/// `[[key_value_stores]]`: a CloudFront KeyValueStore, read from a file in CloudFront's import
/// JSON format (`{"data":[{"key":"k","value":"v"}]}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyValueStore {
    /// The id functions name in `key_value_stores`.
    pub id: String,
    /// The JSON file (re-read on SIGHUP and when it changes).
    pub file: String,
}

/// One entry of a cache behavior's `function_associations`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionAssociation {
    /// When the function runs.
    pub event_type: EventType,
    /// The `[[functions]]` name.
    pub function: String,
}

/// The two events CloudFront Functions run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventType {
    /// Before the cache lookup.
    ViewerRequest,
    /// Before the response goes to the viewer.
    ViewerResponse,
}

impl EventType {
    /// CloudFront's name, as in `event.context.eventType`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ViewerRequest => "viewer-request",
            EventType::ViewerResponse => "viewer-response",
        }
    }
}

impl CacheBehavior {
    /// The function associated with this event, if any.
    pub fn function_for(&self, event: EventType) -> Option<&str> {
        self.function_associations
            .iter()
            .find(|a| a.event_type == event)
            .map(|a| a.function.as_str())
    }
}

impl Config {
    /// The function with this name.
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }
}

fn valid_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The checks of `[[functions]]` and `[[key_value_stores]]` (shared by every distribution):
/// every (key path, message) found wrong; files missing on this machine go to `machine`.
pub(crate) fn check_definitions(
    cfg: &Config,
    bad: &impl Fn(String, String),
    machine: &impl Fn(String, String),
) {
    let mut stores = HashSet::new();
    for (i, s) in cfg.key_value_stores.iter().enumerate() {
        let k = |f: &str| format!("key_value_stores[{i}].{f}");
        if !valid_name(&s.id) {
            bad(k("id"), "must be 1-64 letters, digits, '-' or '_'".into());
        } else if !stores.insert(s.id.as_str()) {
            bad(k("id"), format!("key-value store {:?} is listed twice", s.id));
        }
        if let Err(e) = std::fs::metadata(&s.file) {
            machine(k("file"), format!("{:?}: {e}", s.file));
        }
    }
    let mut names = HashSet::new();
    for (i, f) in cfg.functions.iter().enumerate() {
        let k = |f: &str| format!("functions[{i}].{f}");
        if !valid_name(&f.name) {
            bad(k("name"), "must be 1-64 letters, digits, '-' or '_'".into());
        } else if !names.insert(f.name.as_str()) {
            bad(k("name"), format!("function {:?} is defined twice", f.name));
        }
        match (&f.code, &f.code_file) {
            (Some(_), Some(_)) => bad(k("code"), "give either code or code_file, not both".into()),
            (None, None) => bad(format!("functions[{i}]"), "needs code or code_file".into()),
            _ => match f.source() {
                Err(e) => bad(
                    k("code_file"),
                    format!("{:?}: {e}", f.code_file.as_deref().unwrap_or("")),
                ),
                Ok((code, _)) if code.len() > MAX_FUNCTION_BYTES => bad(
                    k(if f.code.is_some() { "code" } else { "code_file" }),
                    format!(
                        "the code is {} bytes; CloudFront's limit is {MAX_FUNCTION_BYTES}",
                        code.len()
                    ),
                ),
                Ok(_) => {}
            },
        }
        if f.key_value_stores.len() > 1 {
            bad(
                k("key_value_stores"),
                "a function can use at most one key-value store".into(),
            );
        }
        if !f.key_value_stores.is_empty() && f.runtime == FunctionRuntime::Js1 {
            bad(
                k("key_value_stores"),
                "key-value stores need runtime \"cloudfront-js-2.0\"".into(),
            );
        }
        for (j, id) in f.key_value_stores.iter().enumerate() {
            if !cfg.key_value_stores.iter().any(|s| &s.id == id) {
                bad(
                    format!("functions[{i}].key_value_stores[{j}]"),
                    format!("no [[key_value_stores]] has id {id:?}"),
                );
            }
        }
    }
}

/// The checks of a distribution's `function_associations`.
pub(crate) fn check_associations(cfg: &Config, bad: &mut impl FnMut(String, String)) {
    let behaviors = std::iter::once(("default_cache_behavior".to_string(), &cfg.default_cache_behavior))
        .chain(
            cfg.behaviors
                .iter()
                .enumerate()
                .map(|(i, b)| (format!("behaviors[{i}]"), b)),
        );
    for (at, b) in behaviors {
        for (j, a) in b.function_associations.iter().enumerate() {
            if cfg.function(&a.function).is_none() {
                bad(
                    format!("{at}.function_associations[{j}].function"),
                    format!("no [[functions]] is named {:?}", a.function),
                );
            }
            if b.function_associations[..j]
                .iter()
                .any(|o| o.event_type == a.event_type)
            {
                bad(
                    format!("{at}.function_associations[{j}].event_type"),
                    format!("a behavior has at most one {} function", a.event_type.as_str()),
                );
            }
        }
    }
}
