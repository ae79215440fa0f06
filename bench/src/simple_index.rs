//! A page shaped like PyPI's `/simple/` index (one anchor per project, names of the usual
//! shapes), of a given size: the HTML the compression benchmark serves. The names come from a
//! fixed-seed generator, so every run serves the same bytes; like the real index it compresses
//! about 5-8x, unlike a repeated pattern (which compresses a thousandfold and says nothing).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SYLLABLES: &[&str] = &[
    "py", "django", "flask", "data", "aws", "cdk", "test", "lib", "net", "http", "json", "yaml", "async",
    "io", "sql", "alchemy", "ml", "torch", "tensor", "vision", "text", "nlp", "web", "api", "client",
    "server", "cli", "tool", "kit", "utils", "core", "plugin", "auth", "oauth", "db", "mongo", "redis",
    "cache", "queue", "celery", "graph", "ql", "pandas", "numpy", "sci", "plot", "geo", "time", "log",
    "config", "parse", "xml", "html", "crypto", "hash", "zip", "stream", "cloud", "azure", "gcp", "k8s",
    "docker", "ops", "meta", "schema", "form", "rest",
];
const SUFFIXES: &[&str] = &[
    "", "", "", "2", "3", "-ng", "-lite", "-extra", "-tools", "-sdk", "x",
];

/// A `/simple/` index of exactly `size` bytes.
pub fn page(size: usize) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(18);
    let mut out = Vec::with_capacity(size + 256);
    out.extend_from_slice(
        b"<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.1\">\n    <title>Simple index</title>\n  </head>\n  <body>\n",
    );
    let tail = b"  </body>\n</html>\n";
    while out.len() + tail.len() < size {
        let mut name = String::new();
        for i in 0..rng.gen_range(1..=3) {
            if i > 0 {
                name.push(['-', '_', '-', '.'][rng.gen_range(0..4)]);
            }
            name.push_str(SYLLABLES[rng.gen_range(0..SYLLABLES.len())]);
        }
        name.push_str(SUFFIXES[rng.gen_range(0..SUFFIXES.len())]);
        if rng.gen_bool(0.3) {
            name.push_str(&rng.gen_range(0..1000).to_string());
        }
        let norm = name.to_ascii_lowercase().replace(['_', '.'], "-");
        out.extend_from_slice(format!("    <a href=\"/simple/{norm}/\">{name}</a>\n").as_bytes());
    }
    out.truncate(size - tail.len());
    out.extend_from_slice(tail);
    out
}
