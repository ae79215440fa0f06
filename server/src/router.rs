//! Cache-behavior selection: the first `[[behaviors]]` path pattern that matches the request
//! path wins, else the default behavior.

/// Where a behavior sends requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A directory origin, by index into the worker's static origins.
    Static(usize),
    /// A custom (HTTP) origin, by index into the configured origins.
    Custom(usize),
}

/// A compiled path pattern (CloudFront wildcards, case-sensitive).
#[derive(Debug, Clone)]
pub struct PathPattern(Vec<u8>);

impl PathPattern {
    /// CloudFront treats `images/*` and `/images/*` alike.
    pub fn new(p: &str) -> Self {
        let mut v = Vec::with_capacity(p.len() + 1);
        if !p.starts_with('/') && !p.starts_with('*') {
            v.push(b'/');
        }
        v.extend_from_slice(p.as_bytes());
        PathPattern(v)
    }

    /// `*` matches any run of bytes (including `/`), `?` exactly one byte.
    pub fn matches(&self, path: &[u8]) -> bool {
        let p = &self.0;
        let (mut pi, mut si) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while si < path.len() {
            if pi < p.len() && (p[pi] == b'?' || p[pi] == path[si]) {
                pi += 1;
                si += 1;
            } else if pi < p.len() && p[pi] == b'*' {
                star = Some((pi, si));
                pi += 1;
            } else if let Some((sp, ss)) = star {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            } else {
                return false;
            }
        }
        while pi < p.len() && p[pi] == b'*' {
            pi += 1;
        }
        pi == p.len()
    }
}

/// The behaviors of a distribution.
#[derive(Debug, Clone)]
pub struct Router {
    behaviors: Vec<(PathPattern, Target)>,
    default: Target,
}

impl Router {
    pub fn new(behaviors: Vec<(PathPattern, Target)>, default: Target) -> Self {
        Router { behaviors, default }
    }

    /// The target for a request path.
    pub fn route(&self, path: &[u8]) -> Target {
        self.route_behavior(path).0
    }

    /// The target and the behavior that chose it (0 = the default, `i + 1` = `behaviors[i]`).
    pub fn route_behavior(&self, path: &[u8]) -> (Target, usize) {
        self.behaviors
            .iter()
            .position(|(p, _)| p.matches(path))
            .map_or((self.default, 0), |i| (self.behaviors[i].1, i + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        let m = |p: &str, s: &str| PathPattern::new(p).matches(s.as_bytes());
        assert!(m("/images/*.jpg", "/images/a/b.jpg"));
        assert!(!m("/images/*.jpg", "/images/a/b.png"));
        assert!(m("images/*", "/images/x"));
        assert!(m("/a?c", "/abc"));
        assert!(!m("/a?c", "/ac"));
        assert!(!m("/IMAGES/*", "/images/x"));
        assert!(m("*", "/anything"));
        assert!(m("*.gif", "/x/y.gif"));
        assert!(m("/a*b*c", "/aXbYbZc"));
        assert!(!m("/a*b*c", "/aXbYbZ"));
        assert!(m("/exact", "/exact"));
        assert!(!m("/exact", "/exact/more"));
    }

    #[test]
    fn first_match_wins() {
        let r = Router::new(
            vec![
                (PathPattern::new("/api/*"), Target::Custom(0)),
                (PathPattern::new("/api/static/*"), Target::Static(1)),
            ],
            Target::Static(0),
        );
        assert_eq!(r.route(b"/api/static/x"), Target::Custom(0));
        assert_eq!(r.route(b"/other"), Target::Static(0));
    }
}
