//! The operator's page (`GET /`), its data (`GET /stats`), and the token kept in a cookie
//! (`POST /login`). The page is one file embedded in the binary: HTML, CSS and JavaScript,
//! charts drawn on a canvas, no external assets (its Content-Security-Policy forbids them).

use super::{json, Admin, AdminRequest, Reply};
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};

/// The page, as served.
pub const PAGE: &str = include_str!("dashboard.html");
/// The cookie that keeps the admin token.
pub const COOKIE: &str = "slabfront_admin";

/// Only what the page needs: inline script and style, `fetch` to this origin, nothing else.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn page_headers() -> Vec<(&'static str, String)> {
    vec![
        ("Content-Security-Policy", CSP.into()),
        ("X-Content-Type-Options", "nosniff".into()),
        ("Referrer-Policy", "no-referrer".into()),
        ("Cache-Control", "no-store".into()),
    ]
}

/// `GET /`.
pub fn page() -> Reply {
    Reply {
        status: 200,
        body: PAGE.into(),
        content_type: "text/html; charset=utf-8",
        headers: page_headers(),
    }
}

/// `GET /stats`.
pub fn stats(admin: &Admin, sampler: &crate::stats::view::Sampler) -> Reply {
    use std::sync::atomic::Ordering::Relaxed;
    let extra = crate::stats::view::Extra {
        connections_active: admin
            .metrics
            .iter()
            .map(|m| m.connections_active.load(Relaxed))
            .sum(),
        slab: admin.shared.as_ref().map(|s| s.store.stats()),
        invalidations: admin.shared.as_ref().map_or_else(Vec::new, |s| {
            s.invalidations
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|i| {
                    let status = if i.completed { "Completed" } else { "InProgress" };
                    (i.id.clone(), status, i.paths.clone(), i.created, i.removed)
                })
                .collect()
        }),
    };
    let mut r = json(200, sampler.render(&extra));
    r.headers.push(("Cache-Control", "no-store".into()));
    r
}

/// The login form, shown instead of the page when a token is required and none was given.
pub fn login_page(message: &str) -> Reply {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>slabfront admin</title>\
<style>body{{font:15px system-ui,sans-serif;background:#0f1419;color:#d8dee6;display:grid;place-items:center;height:100vh;margin:0}}\
form{{background:#182029;padding:24px;border-radius:6px;border:1px solid #2a3542}}input{{font:inherit;padding:4px 8px;margin:8px 0;width:22em}}\
p{{color:#ef5d5d}}</style></head><body><form method=\"post\" action=\"login\"><label>Admin token<br>\
<input type=\"password\" name=\"token\" autofocus autocomplete=\"current-password\"></label><br><button type=\"submit\">Open the dashboard</button>\
<p>{message}</p></form></body></html>\n"
    );
    Reply {
        status: 401,
        body,
        content_type: "text/html; charset=utf-8",
        headers: page_headers(),
    }
}

/// `POST /login` with a form field `token`: a valid token is kept in an HttpOnly,
/// SameSite=Strict cookie and the browser goes to the page.
pub fn login(admin: &Admin, req: &AdminRequest) -> Reply {
    let given = form_field(&req.body, "token").unwrap_or_default();
    let Some(token) = admin.token.as_deref().filter(|t| !t.is_empty()) else {
        return redirect_home(Vec::new());
    };
    if !super::same(given.as_bytes(), token.as_bytes()) {
        return login_page("That token is not valid.");
    }
    let value = utf8_percent_encode(token, NON_ALPHANUMERIC);
    redirect_home(vec![(
        "Set-Cookie",
        format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict"),
    )])
}

fn redirect_home(mut headers: Vec<(&'static str, String)>) -> Reply {
    headers.push(("Location", "/".into()));
    headers.push(("Cache-Control", "no-store".into()));
    Reply {
        status: 302,
        body: String::new(),
        content_type: "text/plain; charset=utf-8",
        headers,
    }
}

/// The token in a `Cookie` field, if the admin cookie is there.
pub fn cookie_token(cookie: &str) -> Option<String> {
    cookie.split(';').find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        (name == COOKIE).then(|| percent_decode_str(value).decode_utf8_lossy().into_owned())
    })
}

/// One field of an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_forms_round_trip() {
        let token = "s3cr3t; with=odd+chars/é";
        let set = format!("{}", utf8_percent_encode(token, NON_ALPHANUMERIC));
        let header = format!("theme=dark; {COOKIE}={set}; other=1");
        assert_eq!(cookie_token(&header).as_deref(), Some(token));
        assert_eq!(cookie_token("theme=dark"), None);
        let body = b"x=1&token=a%2Bb+c%26d";
        assert_eq!(form_field(body, "token").as_deref(), Some("a+b c&d"));
        assert_eq!(form_field(b"tok=1", "token"), None);
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for needle in ["http://", "https://", "src=", "@import", "url("] {
            assert!(!PAGE.contains(needle), "{needle}");
        }
        assert!(PAGE.contains("fetch(\"stats\""));
    }
}
