//! The helper modules of CloudFront's runtimes: `crypto`, `querystring`, `buffer` (2.0) and
//! `cloudfront` (2.0). Their JavaScript (in `js/`) is loaded on first `require`; the work
//! JavaScript should not do by hand (digests, encodings, store lookups) is done here in Rust.

use base64::Engine as _;
use config::FunctionRuntime;

pub(crate) const PRELUDE: &str = include_str!("js/prelude.js");
const QUERYSTRING: &str = include_str!("js/querystring.js");
const BUFFER: &str = include_str!("js/buffer.js");
const CRYPTO: &str = include_str!("js/crypto.js");
const CLOUDFRONT: &str = include_str!("js/cloudfront.js");

/// The source of a module this runtime offers, if it offers it.
pub(crate) fn source(runtime: FunctionRuntime, name: &str) -> Option<&'static str> {
    let v2 = runtime == FunctionRuntime::Js2;
    match name {
        "querystring" => Some(QUERYSTRING),
        "crypto" => Some(CRYPTO),
        "buffer" if v2 => Some(BUFFER),
        "cloudfront" if v2 => Some(CLOUDFRONT),
        _ => None,
    }
}

/// CloudFront's runtimes take `import cf from 'cloudfront';` (and `import crypto from
/// 'crypto';`) at the top of a function. The code runs here as a script, so each such line
/// becomes the equivalent `var … = require(…);` on the same line (error lines stay right).
pub(crate) fn rewrite_imports(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + 32);
    for line in code.split_inclusive('\n') {
        match rewrite_import_line(line) {
            Some(replaced) => out.push_str(&replaced),
            None => out.push_str(line),
        }
    }
    out
}

fn rewrite_import_line(line: &str) -> Option<String> {
    let body = line.trim_start();
    let rest = body.strip_prefix("import")?;
    if !rest.starts_with(|c: char| c.is_whitespace() || c == '{' || c == '*') {
        return None;
    }
    let (binding, tail) = rest.split_once(" from ")?;
    let tail = tail.trim();
    let quote = tail.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let end = tail[1..].find(quote)? + 1;
    let module = &tail[1..end];
    let after = tail[end + 1..].trim_start_matches(';').trim();
    if !after.is_empty() && !after.starts_with("//") {
        return None;
    }
    let binding = binding.trim();
    let target = if let Some(ns) = binding.strip_prefix('*') {
        ns.trim().strip_prefix("as")?.trim().to_string()
    } else if binding.starts_with('{') {
        binding.replace(" as ", ": ")
    } else {
        binding.to_string()
    };
    let newline = if line.ends_with('\n') { "\n" } else { "" };
    Some(format!("var {target} = require('{module}');{newline}"))
}

/// The code as compiled: wrapped in a function, so that running the wrapper again creates
/// the function's top-level bindings anew for every invocation. The wrapper starts on the
/// code's first line, so error lines stay right.
pub(crate) fn wrap(code: &str) -> String {
    format!("(function () {{{code}\n;return typeof handler === 'function' ? handler : undefined;\n}})")
}

/// `crypto.createHash`/`createHmac`: the raw digest of the parts (strings are UTF-8).
pub(crate) fn digest(alg: &str, key: Option<&[u8]>, parts: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    use hmac::{Hmac, Mac};
    use sha2::Digest;
    fn hash<D: Digest>(parts: &[Vec<u8>]) -> Vec<u8> {
        let mut d = D::new();
        for p in parts {
            d.update(p);
        }
        d.finalize().to_vec()
    }
    fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[Vec<u8>]) -> Result<Vec<u8>, String> {
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key).map_err(|e| e.to_string())?;
        for p in parts {
            m.update(p);
        }
        Ok(m.finalize().into_bytes().to_vec())
    }
    Ok(match (alg, key) {
        ("md5", None) => hash::<md5::Md5>(parts),
        ("sha1", None) => hash::<sha1::Sha1>(parts),
        ("sha256", None) => hash::<sha2::Sha256>(parts),
        ("md5", Some(k)) => mac::<Hmac<md5::Md5>>(k, parts)?,
        ("sha1", Some(k)) => mac::<Hmac<sha1::Sha1>>(k, parts)?,
        ("sha256", Some(k)) => mac::<Hmac<sha2::Sha256>>(k, parts)?,
        _ => return Err(format!("Digest method not supported: {alg}")),
    })
}

/// Bytes to text in one of Node's encodings.
pub(crate) fn encode(bytes: &[u8], encoding: &str) -> Result<String, String> {
    Ok(match encoding {
        "utf8" | "utf-8" => String::from_utf8_lossy(bytes).into_owned(),
        "hex" => {
            use std::fmt::Write;
            let mut s = String::with_capacity(bytes.len() * 2);
            for b in bytes {
                let _ = write!(s, "{b:02x}");
            }
            s
        }
        "base64" => base64::engine::general_purpose::STANDARD.encode(bytes),
        "base64url" => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        "latin1" | "binary" => bytes.iter().map(|&b| b as char).collect(),
        "ascii" => bytes.iter().map(|&b| (b & 0x7f) as char).collect(),
        other => return Err(format!("Unknown encoding: {other}")),
    })
}

/// Text in one of Node's encodings to bytes. Like Node, decoding stops at the first
/// character that does not belong (hex) and ignores padding and white space (base64).
pub(crate) fn decode(text: &str, encoding: &str) -> Result<Vec<u8>, String> {
    Ok(match encoding {
        "utf8" | "utf-8" => text.as_bytes().to_vec(),
        "hex" => {
            let digits: Vec<u8> = text.bytes().collect();
            let mut out = Vec::with_capacity(digits.len() / 2);
            for pair in digits.chunks_exact(2) {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(pair[0]), hex(pair[1])) {
                    (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                    _ => break,
                }
            }
            out
        }
        "base64" | "base64url" => {
            let cleaned: String = text
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '=')
                .map(|c| match c {
                    '-' => '+',
                    '_' => '/',
                    c => c,
                })
                .collect();
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(cleaned.as_bytes())
                .map_err(|e| format!("invalid base64: {e}"))?
        }
        "latin1" | "binary" | "ascii" => text.chars().map(|c| c as u32 as u8).collect(),
        other => return Err(format!("Unknown encoding: {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_become_requires_on_the_same_line() {
        let code = "import cf from 'cloudfront';\nimport { parse as p } from \"querystring\"\nimport * as c from 'crypto'; // hashes\nfunction handler(e) { return e.request; }\n";
        let out = rewrite_imports(code);
        assert_eq!(
            out,
            "var cf = require('cloudfront');\nvar { parse: p } = require('querystring');\nvar c = require('crypto');\nfunction handler(e) { return e.request; }\n"
        );
        assert_eq!(rewrite_imports("var important = 1;\n"), "var important = 1;\n");
    }

    #[test]
    fn digests_match_known_vectors() {
        let hex = |b: Vec<u8>| encode(&b, "hex").unwrap();
        let abc = [b"abc".to_vec()];
        assert_eq!(
            hex(digest("md5", None, &abc).unwrap()),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            hex(digest("sha1", None, &abc).unwrap()),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(digest("sha256", None, &abc).unwrap()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // RFC 4231 test case 2.
        let parts = [b"what do ya want ".to_vec(), b"for nothing?".to_vec()];
        assert_eq!(
            hex(digest("sha256", Some(b"Jefe"), &parts).unwrap()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(digest("sha512", None, &abc).is_err());
    }

    #[test]
    fn encodings_round_trip() {
        let bytes = b"\x00\xffhello\xfb".to_vec();
        for enc in ["hex", "base64", "base64url", "latin1"] {
            assert_eq!(
                decode(&encode(&bytes, enc).unwrap(), enc).unwrap(),
                bytes,
                "{enc}"
            );
        }
        assert_eq!(encode(b"\xfb\xff", "base64url").unwrap(), "-_8");
        assert_eq!(decode("68656c6c6fzz", "hex").unwrap(), b"hello");
    }
}
