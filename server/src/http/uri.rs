//! Request targets: splitting off the query, percent-decoding and normalising the path so
//! that it can never name anything outside the root it is joined to.

/// The path and query of a request target (origin-form or absolute-form).
pub fn split_target(target: &[u8]) -> Option<(&[u8], &[u8])> {
    // A fragment is neither path nor query (RFC 3986 §3.5), wherever it starts: cut first.
    let target = match target.iter().position(|&b| b == b'#') {
        Some(i) => &target[..i],
        None => target,
    };
    let t = if target.first() == Some(&b'/') {
        target
    } else {
        // absolute-form: scheme "://" authority path
        let lower_starts = |p: &[u8]| target.len() >= p.len() && target[..p.len()].eq_ignore_ascii_case(p);
        let rest = if lower_starts(b"http://") {
            &target[7..]
        } else if lower_starts(b"https://") {
            &target[8..]
        } else {
            return None;
        };
        match rest.iter().position(|&b| b == b'/' || b == b'?') {
            Some(i) if rest[i] == b'/' => &rest[i..],
            Some(i) => return Some((b"/", &rest[i + 1..])),
            None => b"/",
        }
    };
    Some(match t.iter().position(|&b| b == b'?') {
        Some(i) => (&t[..i], &t[i + 1..]),
        None => (t, &b""[..]),
    })
}

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Bad percent-encoding, NUL, backslash or an encoded slash.
    Invalid(&'static str),
    /// `..` would climb above the root.
    Escapes,
}

/// A decoded, normalised path: starts with `/`, no empty, `.` or `..` segments, no NUL,
/// no backslash. `trailing_slash` records whether the request named a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanPath {
    pub path: String,
    pub trailing_slash: bool,
}

/// Percent-decodes and normalises a request path.
pub fn clean_path(raw: &[u8]) -> Result<CleanPath, PathError> {
    if raw.first() != Some(&b'/') {
        return Err(PathError::Invalid("path must start with /"));
    }
    if let Some(inner) = already_clean(raw) {
        // Most paths: nothing to decode or drop, so the result is the path itself (less a
        // trailing slash), made without the per-segment buffers below.
        let path = match std::str::from_utf8(inner) {
            Ok("") => "/".to_string(),
            Ok(s) => {
                let mut p = String::with_capacity(s.len() + 1);
                p.push('/');
                p.push_str(s);
                p
            }
            Err(_) => return Err(PathError::Invalid("path is not UTF-8")),
        };
        return Ok(CleanPath {
            trailing_slash: raw.ends_with(b"/") || path == "/",
            path,
        });
    }
    clean_path_slow(raw)
}

/// The segments of `raw` (after its leading slash, less one trailing slash) when normalising
/// would leave them as they are: no escapes, NULs or backslashes, no empty, `.` or `..`
/// segments.
fn already_clean(raw: &[u8]) -> Option<&[u8]> {
    if raw.iter().any(|&b| matches!(b, b'%' | b'\\' | 0)) {
        return None;
    }
    let inner = &raw[1..];
    let inner = inner.strip_suffix(b"/").unwrap_or(inner);
    if inner.is_empty() {
        return Some(inner);
    }
    inner
        .split(|&b| b == b'/')
        .all(|s| !s.is_empty() && s != b"." && s != b"..")
        .then_some(inner)
}

fn clean_path_slow(raw: &[u8]) -> Result<CleanPath, PathError> {
    // Decode by segment, so that an encoded slash (%2F) cannot become a separator.
    let mut segments: Vec<Vec<u8>> = Vec::new();
    let trailing_slash = raw.ends_with(b"/");
    for seg in raw.split(|&b| b == b'/') {
        let decoded = decode(seg)?;
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
    let mut path = Vec::with_capacity(raw.len());
    for s in &segments {
        path.push(b'/');
        path.extend_from_slice(s);
    }
    if path.is_empty() {
        path.push(b'/');
    }
    let path = String::from_utf8(path).map_err(|_| PathError::Invalid("path is not UTF-8"))?;
    Ok(CleanPath {
        trailing_slash: trailing_slash || path == "/",
        path,
    })
}

fn decode(seg: &[u8]) -> Result<Vec<u8>, PathError> {
    if !seg.contains(&b'%') {
        return Ok(seg.to_vec());
    }
    // Reject malformed escapes instead of passing them through.
    let mut i = 0;
    while let Some(p) = seg[i..].iter().position(|&b| b == b'%') {
        let at = i + p;
        let ok = seg.len() >= at + 3 && seg[at + 1].is_ascii_hexdigit() && seg[at + 2].is_ascii_hexdigit();
        if !ok {
            return Err(PathError::Invalid("bad percent-encoding"));
        }
        i = at + 3;
    }
    Ok(percent_encoding::percent_decode(seg).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing: an absolute-form target with no path kept its fragment in the query.
    #[test]
    fn fragment_after_an_authority_with_no_path_is_not_in_the_query() {
        assert_eq!(
            split_target(b"http://example.com?q=2#frag"),
            Some((&b"/"[..], &b"q=2"[..]))
        );
        assert_eq!(
            split_target(b"http://example.com#frag/x"),
            Some((&b"/"[..], &b""[..]))
        );
        assert_eq!(split_target(b"/p?q=1#frag"), Some((&b"/p"[..], &b"q=1"[..])));
        assert_eq!(
            split_target(b"https://h/p/a?q#f"),
            Some((&b"/p/a"[..], &b"q"[..]))
        );
    }

    fn clean(s: &str) -> Result<String, PathError> {
        clean_path(s.as_bytes()).map(|c| c.path)
    }

    /// The shortcut for paths that need no normalising gives what the full pass gives.
    #[test]
    fn the_shortcut_agrees_with_the_full_pass() {
        let parts = [
            "", "a", "b.txt", ".", "..", "%41", "é", "a b", "\\", ".x", "x.", "...",
        ];
        let mut checked = 0;
        for a in parts {
            for b in parts {
                for tail in ["", "/", "//"] {
                    for lead in ["/", "//"] {
                        let raw = format!("{lead}{a}/{b}{tail}");
                        let quick = clean_path(raw.as_bytes());
                        let full = clean_path_slow(raw.as_bytes());
                        assert_eq!(quick, full, "{raw:?}");
                        if already_clean(raw.as_bytes()).is_some() {
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 20, "the shortcut was taken {checked} times");
        assert_eq!(clean_path(b"/a/\xff"), clean_path_slow(b"/a/\xff"));
        assert_eq!(clean_path(&[b'/', 0xff]), clean_path_slow(&[b'/', 0xff]));
    }

    #[test]
    fn traversal_is_refused_or_contained() {
        assert_eq!(clean("/../etc/passwd"), Err(PathError::Escapes));
        assert_eq!(clean("/a/../../etc/passwd"), Err(PathError::Escapes));
        assert_eq!(clean("/%2e%2e/etc/passwd"), Err(PathError::Escapes));
        assert_eq!(clean("/%2E%2E/etc"), Err(PathError::Escapes));
        assert!(matches!(clean("/a%2f..%2f..%2fetc"), Err(PathError::Invalid(_))));
        assert!(matches!(clean("/a%5c..%5cb"), Err(PathError::Invalid(_))));
        assert!(matches!(clean("/a\\..\\b"), Err(PathError::Invalid(_))));
        assert!(matches!(clean("/a%00.html"), Err(PathError::Invalid(_))));
        assert!(matches!(clean("/a%zz"), Err(PathError::Invalid(_))));
        assert!(matches!(clean("/a%4"), Err(PathError::Invalid(_))));
        assert_eq!(clean("/a/./b//c/../d").unwrap(), "/a/b/d");
        assert_eq!(clean("/a/b/..").unwrap(), "/a");
        assert_eq!(clean("/hello%20world.txt").unwrap(), "/hello world.txt");
    }

    #[test]
    fn trailing_slash() {
        assert!(clean_path(b"/").unwrap().trailing_slash);
        assert!(clean_path(b"/docs/").unwrap().trailing_slash);
        assert!(!clean_path(b"/docs").unwrap().trailing_slash);
    }

    #[test]
    fn targets() {
        assert_eq!(split_target(b"/a?b=1"), Some((&b"/a"[..], &b"b=1"[..])));
        assert_eq!(split_target(b"/a#frag"), Some((&b"/a"[..], &b""[..])));
        assert_eq!(
            split_target(b"http://example.com/x?y"),
            Some((&b"/x"[..], &b"y"[..]))
        );
        assert_eq!(split_target(b"http://example.com"), Some((&b"/"[..], &b""[..])));
        assert_eq!(split_target(b"*"), None);
    }
}
