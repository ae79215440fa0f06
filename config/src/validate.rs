//! Loading and whole-file validation.
//!
//! Serde stops at the first error, so structural problems are collected by repetition: each
//! time deserialization fails at a key, the problem is recorded and that key-value is blanked
//! out of the text (replaced by spaces, so every other offset stays put), and the text is
//! deserialized again. Then the semantic checks run over the typed configuration, and every
//! problem they find is located by its key path.

use crate::error::{ConfigError, Problem, ProblemKind};
use crate::locate::{entries, line_col, Entry};
use crate::schema::{Config, TlsVersion};
use std::cell::RefCell;
use std::collections::HashSet;
use std::net::SocketAddr;
use toml_edit::ImDocument;

/// How many structural problems are collected before giving up.
const MAX_STRUCTURAL: usize = 64;

/// What to check besides the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checks {
    /// The schema and this machine: files and directories named must exist.
    All,
    /// The schema only: the file is checked as it would be on the machine it is meant for.
    SchemaOnly,
}

/// One problem found by the semantic checks: key path, message, kind.
pub(crate) type Found = (String, String, ProblemKind);

pub(crate) fn load(text: &str, checks: Checks) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let mut work = text.to_string();
    let parsed = loop {
        let doc = match ImDocument::parse(work.as_str()) {
            Ok(doc) => doc,
            Err(e) => {
                // A syntax error: nothing after it can be trusted.
                let offset = e.span().map_or(0, |s| s.start);
                problems.push(problem_at(text, "", offset, e.message().trim()));
                return Err(invalid(problems));
            }
        };
        let found = entries(&doc);
        match toml::from_str::<Config>(&work) {
            Ok(cfg) => break Some((cfg, found)),
            Err(e) => {
                let span = e.span();
                let message = e.message().trim().to_string();
                // The innermost key-value holding the error is the one at fault.
                let culprit = span.as_ref().and_then(|s| innermost(&found, s));
                match culprit {
                    Some(entry) if problems.len() < MAX_STRUCTURAL => {
                        problems.push(problem_at(text, &entry.path, entry.span.start, &message));
                        blank(&mut work, entry.span.clone());
                    }
                    _ => {
                        let offset = span.map_or(0, |s| s.start);
                        let key = culprit.map_or("", |c| c.path.as_str());
                        problems.push(problem_at(text, key, offset, &message));
                        break None;
                    }
                }
            }
        }
    };
    if let Some((mut cfg, found)) = parsed {
        let machine = checks == Checks::All;
        let mut all = check(&cfg, machine);
        if cfg.distributions.is_empty() {
            all.extend(check_distribution(&cfg, machine));
        } else {
            let present = |k: &str| {
                found
                    .iter()
                    .any(|e| e.path == k || e.path.strip_prefix(k).is_some_and(|r| r.starts_with(['.', '['])))
            };
            all.extend(crate::distributions::check(&cfg, machine, &present));
        }
        for (key, message, kind) in all {
            let offset = locate(&found, &key);
            let mut p = problem_at(text, &key, offset.unwrap_or(0), &message);
            p.kind = kind;
            if offset.is_none() {
                (p.line, p.column) = (0, 0);
            }
            problems.push(p);
        }
        if problems.is_empty() {
            crate::origins::complete(&mut cfg);
            cfg.normalise();
            return Ok(cfg);
        }
    }
    Err(invalid(problems))
}

fn invalid(problems: Vec<Problem>) -> ConfigError {
    ConfigError::Invalid { file: None, problems }
}

fn problem_at(text: &str, key: &str, offset: usize, message: &str) -> Problem {
    let (line, column) = line_col(text, offset);
    Problem {
        key: key.to_string(),
        line,
        column,
        message: message.to_string(),
        kind: ProblemKind::Schema,
    }
}

fn innermost<'a>(found: &'a [Entry], span: &std::ops::Range<usize>) -> Option<&'a Entry> {
    found
        .iter()
        .filter(|e| e.span.start <= span.start && span.end <= e.span.end.max(span.start + 1))
        .min_by_key(|e| e.span.end - e.span.start)
}

/// The position of a key path, or of its nearest located parent.
fn locate(found: &[Entry], key: &str) -> Option<usize> {
    let mut k = key;
    loop {
        if let Some(e) = found.iter().find(|e| e.path == k) {
            return Some(e.span.start);
        }
        let cut = k.rfind(['.', '['])?;
        k = &k[..cut];
    }
}

fn blank(text: &mut String, span: std::ops::Range<usize>) {
    let end = span.end.min(text.len());
    let replaced: String = text[span.start..end]
        .chars()
        .map(|c| if c == '\n' { '\n' } else { ' ' })
        .collect();
    text.replace_range(span.start..end, &replaced);
}

/// The semantic checks of everything but the distribution: every problem found.
fn check(cfg: &Config, machine_checks: bool) -> Vec<Found> {
    let out = RefCell::new(Vec::new());
    let bad = |k: String, m: String| out.borrow_mut().push((k, m, ProblemKind::Schema));
    let machine = |k: String, m: String| {
        if machine_checks {
            out.borrow_mut().push((k, m, ProblemKind::Machine));
        }
    };
    let s = &cfg.server;

    if s.listen.is_empty() && s.listen_tls.is_empty() {
        bad("server.listen".into(), "needs at least one address".into());
    }
    let mut seen = HashSet::new();
    for (key, list) in [("listen", &s.listen), ("listen_tls", &s.listen_tls)] {
        for (i, a) in list.iter().enumerate() {
            match a.parse::<SocketAddr>() {
                Ok(addr) if addr.port() != 0 && !seen.insert(addr) => {
                    bad(format!("server.{key}[{i}]"), format!("{a} is listed twice"))
                }
                Ok(_) => {}
                Err(_) => bad(
                    format!("server.{key}[{i}]"),
                    format!("{a:?} is not an IP:port address (e.g. \"127.0.0.1:8080\", \"[::1]:8080\")"),
                ),
            }
        }
    }
    if !s.listen_tls.is_empty()
        && cfg.tls.certificates.is_empty()
        && cfg.distributions.iter().all(|d| d.ssl_certificate.is_none())
    {
        bad(
            "server.listen_tls".into(),
            "HTTPS listeners need at least one [[tls.certificates]]".into(),
        );
    }
    let suites = &cfg.tls.cipher_suites;
    for (i, c) in suites.iter().enumerate() {
        if suites[..i].contains(c) {
            bad(
                format!("tls.cipher_suites[{i}]"),
                format!("{c:?} is listed twice"),
            );
        }
    }
    if !suites.iter().any(|c| c.is_tls13()) {
        bad(
            "tls.cipher_suites".into(),
            "needs at least one TLS 1.3 suite (TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, \
             TLS_CHACHA20_POLY1305_SHA256)"
                .into(),
        );
    }
    if cfg.tls.minimum_protocol_version == TlsVersion::Tls12 && !suites.iter().any(|c| !c.is_tls13()) {
        bad(
            "tls.cipher_suites".into(),
            "minimum_protocol_version is \"TLSv1.2\" but no TLS 1.2 suite is listed (e.g. \
             TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)"
                .into(),
        );
    }
    for (i, c) in cfg.tls.certificates.iter().enumerate() {
        for (f, path) in [("cert", &c.cert), ("key", &c.key)] {
            if let Err(e) = std::fs::File::open(path) {
                machine(format!("tls.certificates[{i}].{f}"), format!("{path:?}: {e}"));
            }
        }
    }
    for (key, v) in [
        ("max_connections", s.max_connections),
        ("max_header_bytes", s.max_header_bytes),
        ("max_headers", s.max_headers),
        ("max_uri_bytes", s.max_uri_bytes),
    ] {
        if v == 0 {
            bad(format!("server.{key}"), "must be greater than 0".into());
        }
    }
    if s.max_header_bytes > 1 << 20 {
        bad("server.max_header_bytes".into(), "must be at most 1 MiB".into());
    }
    if s.max_uri_bytes > s.max_header_bytes {
        bad(
            "server.max_uri_bytes".into(),
            "cannot exceed server.max_header_bytes".into(),
        );
    }
    for (key, d) in [
        ("header_timeout", s.header_timeout),
        ("keepalive_timeout", s.keepalive_timeout),
        ("body_timeout", s.body_timeout),
        ("file_cache_revalidate", s.file_cache_revalidate),
    ] {
        if d.0.is_zero() {
            bad(format!("server.{key}"), "must be longer than 0".into());
        }
    }
    if s.workers > 1024 {
        bad("server.workers".into(), "at most 1024 workers".into());
    }
    crate::http2::check(&s.http2, bad);
    crate::compression::check(&s.compression, bad);
    crate::security::check_definitions(cfg, &bad, &machine);
    crate::geo::check_database(cfg, &machine);
    if let Some(a) = &cfg.admin {
        match a.listen.parse::<SocketAddr>() {
            Err(_) => bad(
                "admin.listen".into(),
                format!("{:?} is not an IP:port address", a.listen),
            ),
            Ok(addr) if !addr.ip().is_loopback() && a.token.as_deref().is_none_or(str::is_empty) => bad(
                "admin.listen".into(),
                "a non-loopback admin address needs admin.token".into(),
            ),
            Ok(_) => {}
        }
        crate::admin::check(a, &bad);
    }
    if cfg.cache.path.is_empty() {
        bad("cache.path".into(), "must not be empty".into());
    }
    if cfg.cache.size.0 < 64 << 20 {
        bad("cache.size".into(), "must be at least 64MiB".into());
    }
    let mut fleet_bad = bad;
    crate::fleet::check(cfg, &mut fleet_bad);
    out.into_inner()
}

/// The semantic checks of one distribution, read from the top-level keys (a distribution of
/// a `[[distributions]]` file is checked through [`Config::with_distribution`], and its
/// problems' keys are then put under `distributions[i]`).
pub(crate) fn check_distribution(cfg: &Config, machine_checks: bool) -> Vec<Found> {
    let out = RefCell::new(Vec::new());
    let mut bad = |k: String, m: String| out.borrow_mut().push((k, m, ProblemKind::Schema));
    let machine = |k: String, m: String| {
        if machine_checks {
            out.borrow_mut().push((k, m, ProblemKind::Machine));
        }
    };

    if cfg.default_root_object.starts_with('/') || cfg.default_root_object.contains("..") {
        bad(
            "default_root_object".into(),
            "must be a relative object name such as \"index.html\"".into(),
        );
    }

    if cfg.origins.is_empty() {
        bad("origins".into(), "at least one [[origins]] is needed".into());
    }
    let mut ids = HashSet::new();
    for (i, o) in cfg.origins.iter().enumerate() {
        let k = |f: &str| format!("origins[{i}].{f}");
        if o.id.is_empty() {
            bad(k("id"), "must not be empty".into());
        } else if !ids.insert(o.id.as_str()) {
            bad(k("id"), format!("origin id {:?} is used twice", o.id));
        }
        match (&o.path, &o.domain_name) {
            _ if o.is_s3() => {}
            (Some(_), Some(_)) => bad(
                k("domain_name"),
                "an origin has either `path` (a directory) or `domain_name`, not both".into(),
            ),
            (None, None) => bad(
                format!("origins[{i}]"),
                "an origin needs `path` (a directory), `domain_name` or `s3_bucket`".into(),
            ),
            (Some(p), None) => match std::fs::metadata(p) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => machine(k("path"), format!("{p:?} is not a directory")),
                Err(e) => machine(k("path"), format!("{p:?}: {e}")),
            },
            (None, Some(d)) => {
                if d.is_empty() || d.contains(['/', ' ', ':']) && d.parse::<std::net::Ipv6Addr>().is_err() {
                    bad(k("domain_name"), format!("{d:?} is not a host name or address"));
                }
            }
        }
        if o.http_port == 0 {
            bad(k("http_port"), "must be 1-65535".into());
        }
        if o.https_port == 0 {
            bad(k("https_port"), "must be 1-65535".into());
        }
    }

    let target_ok = |t: &str| crate::origins::is_target(cfg, t);
    let d = &cfg.default_cache_behavior;
    if d.target_origin.is_empty() {
        bad(
            "default_cache_behavior".into(),
            "a [default_cache_behavior] with a target_origin is required (the behavior used \
             when no [[behaviors]] path pattern matches)"
                .into(),
        );
    } else if !target_ok(&d.target_origin) {
        bad(
            "default_cache_behavior.target_origin".into(),
            format!(
                "no origin has id {:?} (nor does an origin group)",
                d.target_origin
            ),
        );
    }
    if !d.path_pattern.is_empty() {
        bad(
            "default_cache_behavior.path_pattern".into(),
            "the default behavior matches every path; put patterns in [[behaviors]]".into(),
        );
    }
    check_behavior("default_cache_behavior", d, &mut bad);
    for (i, b) in cfg.behaviors.iter().enumerate() {
        check_behavior(&format!("behaviors[{i}]"), b, &mut bad);
        if !target_ok(&b.target_origin) {
            bad(
                format!("behaviors[{i}].target_origin"),
                format!(
                    "no origin has id {:?} (nor does an origin group)",
                    b.target_origin
                ),
            );
        }
        let p = &b.path_pattern;
        if p.is_empty() || p.len() > 255 {
            bad(
                format!("behaviors[{i}].path_pattern"),
                "must be 1 to 255 characters".into(),
            );
        } else if let Some(c) = p
            .chars()
            .find(|c| c.is_ascii_control() || c.is_whitespace() || !c.is_ascii())
        {
            bad(
                format!("behaviors[{i}].path_pattern"),
                format!("character {c:?} is not allowed in a path pattern"),
            );
        }
    }

    for (i, o) in cfg.origins.iter().enumerate() {
        if o.path.is_some() {
            continue;
        }
        let k = |f: &str| format!("origins[{i}].{f}");
        if o.connect_timeout.0.is_zero() {
            bad(k("connect_timeout"), "must be longer than 0".into());
        }
        if o.read_timeout.0.is_zero() {
            bad(k("read_timeout"), "must be longer than 0".into());
        }
        if let Some(f) = &o.ca_file {
            if let Err(e) = std::fs::metadata(f) {
                machine(k("ca_file"), format!("{f:?}: {e}"));
            }
        }
        if let Some(h) = &o.host_header {
            if h.is_empty() || h.bytes().any(|b| b <= b' ' || b == 0x7f) {
                bad(k("host_header"), format!("{h:?} is not a valid Host value"));
            }
        }
    }

    for (i, e) in cfg.error_responses.iter().enumerate() {
        let k = |f: &str| format!("error_responses[{i}].{f}");
        if !(400..=599).contains(&e.error_code) {
            bad(k("error_code"), "must be an error status, 400-599".into());
        }
        if let Some(c) = e.response_code {
            if !(200..=599).contains(&c) {
                bad(k("response_code"), "must be a status code, 200-599".into());
            }
        }
        if let Some(p) = &e.response_page_path {
            if !p.starts_with('/') {
                bad(k("response_page_path"), "must start with '/'".into());
            }
        }
        if e.response_code.is_some() && e.response_page_path.is_none() {
            bad(
                k("response_code"),
                "needs a response_page_path (the body sent with it)".into(),
            );
        }
        if cfg.error_responses[..i]
            .iter()
            .any(|o| o.error_code == e.error_code)
        {
            bad(k("error_code"), format!("{} is listed twice", e.error_code));
        }
    }

    if let Some(l) = cfg.logging.as_ref().filter(|l| l.enabled) {
        let dir = std::path::Path::new(&l.path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty());
        if l.path.is_empty() {
            bad("logging.path".into(), "must not be empty".into());
        } else if let Some(d) = dir.filter(|d| !d.is_dir()) {
            machine(
                "logging.path".into(),
                format!("directory {} does not exist", d.display()),
            );
        }
    }
    crate::origins::check(cfg, &mut bad, &machine);
    crate::functions::check_definitions(cfg, &bad, &machine);
    crate::functions::check_associations(cfg, &mut bad);
    crate::security::check_references(cfg, &mut bad);
    crate::geo::check(cfg, &mut bad);
    crate::waf::check(cfg, &mut bad);
    out.into_inner()
}

const METHODS: [&str; 7] = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"];

/// The checks every cache behavior gets (CloudFront's rules).
fn check_behavior(at: &str, b: &crate::schema::CacheBehavior, bad: &mut impl FnMut(String, String)) {
    let k = |f: &str| format!("{at}.{f}");
    if b.min_ttl > b.max_ttl {
        bad(k("min_ttl"), "cannot exceed max_ttl".into());
    }
    if b.default_ttl < b.min_ttl || b.default_ttl > b.max_ttl {
        bad(k("default_ttl"), "must be between min_ttl and max_ttl".into());
    }
    let set = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|m| m.to_ascii_uppercase()).collect();
        v.sort();
        v.dedup();
        v
    };
    let sorted = |v: &[&str]| set(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let allowed = set(&b.allowed_methods);
    let allowed_sets = [sorted(&METHODS[..2]), sorted(&METHODS[..3]), sorted(&METHODS)];
    if !allowed_sets.contains(&allowed) {
        bad(
            k("allowed_methods"),
            "must be [\"GET\",\"HEAD\"], [\"GET\",\"HEAD\",\"OPTIONS\"] or all seven (also PUT, POST, PATCH, DELETE)".into(),
        );
    }
    let cached = set(&b.cached_methods);
    if cached != allowed_sets[0] && cached != allowed_sets[1] {
        bad(
            k("cached_methods"),
            "must be [\"GET\",\"HEAD\"] or [\"GET\",\"HEAD\",\"OPTIONS\"]".into(),
        );
    } else if !cached.iter().all(|m| allowed.contains(m)) {
        bad(k("cached_methods"), "must be a subset of allowed_methods".into());
    }
    for (part, v) in [
        ("query_strings", &b.query_strings),
        ("headers", &b.headers),
        ("cookies", &b.cookies),
    ] {
        if let crate::schema::KeyPart::List(l) = v {
            for (j, name) in l.iter().enumerate() {
                if name.is_empty()
                    || name
                        .bytes()
                        .any(|c| c <= b' ' || c >= 0x7f || c == b',' || c == b';')
                {
                    bad(
                        format!("{at}.{part}[{j}]"),
                        format!("{name:?} is not a valid name"),
                    );
                }
            }
        }
    }
}
