//! Request-target splitting and path normalisation (`slabfront::http::uri`): no panic, the
//! normalised path has the promised shape, and the fast path for already-clean paths agrees
//! with a straightforward normalisation written here from the documented rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slabfront::http::uri::{clean_path, split_target, CleanPath, PathError};

fuzz_target!(|data: &[u8]| {
    if let Some((path, query)) = split_target(data) {
        assert!(path.starts_with(b"/"), "path {path:?}");
        assert!(!path.contains(&b'?') && !path.contains(&b'#'));
        assert!(!query.contains(&b'#'));
        check_clean(path);
    }
    check_clean(data);
});

fn check_clean(raw: &[u8]) {
    let got = clean_path(raw);
    assert_eq!(got, reference(raw), "input {:?}", String::from_utf8_lossy(raw));
    if let Ok(c) = got {
        let p = c.path.as_bytes();
        assert!(p.starts_with(b"/"));
        assert!(p == b"/" || !p.ends_with(b"/"));
        assert!(!p.contains(&0) && !p.contains(&b'\\'));
        for seg in p[1..].split(|&b| b == b'/') {
            assert!(
                p == b"/" || (!seg.is_empty() && seg != b"." && seg != b".."),
                "{p:?}"
            );
        }
        if p == b"/" {
            assert!(c.trailing_slash);
        }
    }
}

/// Segment by segment: percent-decode (malformed escapes refused), refuse a decoded slash,
/// NUL or backslash, drop empty and `.` segments, let `..` remove one but never climb above
/// the root.
fn reference(raw: &[u8]) -> Result<CleanPath, PathError> {
    if raw.first() != Some(&b'/') {
        return Err(PathError::Invalid("path must start with /"));
    }
    let mut segments: Vec<Vec<u8>> = Vec::new();
    for seg in raw.split(|&b| b == b'/') {
        let mut decoded = Vec::new();
        let mut i = 0;
        while i < seg.len() {
            if seg[i] == b'%' {
                let hex = |b: u8| (b as char).to_digit(16);
                match (
                    seg.get(i + 1).and_then(|&b| hex(b)),
                    seg.get(i + 2).and_then(|&b| hex(b)),
                ) {
                    (Some(h), Some(l)) => decoded.push((h * 16 + l) as u8),
                    _ => return Err(PathError::Invalid("bad percent-encoding")),
                }
                i += 3;
            } else {
                decoded.push(seg[i]);
                i += 1;
            }
        }
        if decoded.contains(&b'/') {
            return Err(PathError::Invalid("encoded slash in path"));
        }
        if decoded.contains(&0) {
            return Err(PathError::Invalid("NUL in path"));
        }
        if decoded.contains(&b'\\') {
            return Err(PathError::Invalid("backslash in path"));
        }
        match decoded.as_slice() {
            b"" | b"." => {}
            b".." => {
                if segments.pop().is_none() {
                    return Err(PathError::Escapes);
                }
            }
            _ => segments.push(decoded),
        }
    }
    let mut path = Vec::new();
    for s in &segments {
        path.push(b'/');
        path.extend_from_slice(s);
    }
    if path.is_empty() {
        path.push(b'/');
    }
    let path = String::from_utf8(path).map_err(|_| PathError::Invalid("path is not UTF-8"))?;
    Ok(CleanPath {
        trailing_slash: raw.ends_with(b"/") || path == "/",
        path,
    })
}
