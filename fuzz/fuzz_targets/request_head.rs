//! The request head parser (`slabfront::http::codec::parse_request`) and, after a head that
//! declares a chunked body, the chunked decoder on what follows it; the decoder also runs on
//! the raw input whatever the head, since it must stand on its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slabfront::http::codec::{parse_request, BodyKind, Limits, Parsed};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, buf)) = data.split_first() else {
        return;
    };
    // The default limits, or small ones drawn from the first byte so that every limit check
    // is reachable with short inputs.
    let limits = if sel & 1 == 0 {
        Limits {
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            max_uri_bytes: 8 * 1024,
        }
    } else {
        Limits {
            max_header_bytes: 64 + usize::from(sel),
            max_headers: usize::from(sel >> 4),
            max_uri_bytes: usize::from(sel >> 1),
        }
    };
    match parse_request(buf, &limits) {
        Ok(Parsed::Complete(req, n)) => {
            assert!(n > 0 && n <= buf.len(), "head length {n} of {}", buf.len());
            assert!(req.target().len() <= limits.max_uri_bytes);
            assert!(req.headers().count() <= limits.max_headers);
            let _ = (req.method_name(), req.method.as_str(), req.has_if_fields());
            for (name, value) in req.headers() {
                assert!(!name.is_empty());
                assert!(!value.contains(&b'\r') && !value.contains(&b'\n'));
            }
            let _ = req.header("host");
            let _ = req.header_list("connection").count();
            let _ = req.header_values("cache-control").count();
            // A complete head depends on its own bytes only.
            match parse_request(&buf[..n], &limits) {
                Ok(Parsed::Complete(again, m)) => {
                    assert_eq!(m, n);
                    assert_eq!(again.target(), req.target());
                    assert_eq!(again.body, req.body);
                }
                other => panic!("the head alone parses differently: {other:?}"),
            }
            if req.body == BodyKind::Chunked {
                slabfront_fuzz::check_chunked(&buf[n..], sel);
            }
        }
        Ok(Parsed::Partial) => {}
        Err(e) => {
            assert!(matches!(e.status(), 400 | 414 | 431 | 501 | 505));
            let _ = e.reason();
        }
    }
    slabfront_fuzz::check_chunked(buf, sel);
});
