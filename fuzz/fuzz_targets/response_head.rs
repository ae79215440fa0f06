//! The origin response-head parser (`slabfront::proxy::upstream::parse_head`) and, for a
//! chunked response, the chunked decoder on the body that follows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slabfront::proxy::upstream::{parse_head, Framing};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, buf)) = data.split_first() else {
        return;
    };
    let head_request = sel & 1 == 1;
    match parse_head(buf, head_request) {
        Ok(Some((head, n))) => {
            assert!(n > 0 && n <= buf.len(), "head length {n} of {}", buf.len());
            assert!(head.status <= 999);
            if head_request || head.status < 200 || head.status == 204 || head.status == 304 {
                assert_eq!(head.framing, Framing::None, "a response that has no body");
            }
            if head.framing == Framing::Close {
                assert!(
                    !head.keep_alive,
                    "a body delimited by close, on a kept connection"
                );
            }
            let _ = head.header("content-type");
            let _ = head.header_values("cache-control").count();
            // A complete head depends on its own bytes only.
            match parse_head(&buf[..n], head_request) {
                Ok(Some((again, m))) => {
                    assert_eq!(m, n);
                    assert_eq!(format!("{again:?}"), format!("{head:?}"));
                }
                other => panic!("the head alone parses differently: {other:?}"),
            }
            if head.framing == Framing::Chunked {
                slabfront_fuzz::check_chunked(&buf[n..], sel);
            }
        }
        Ok(None) => assert!(buf.len() <= 64 * 1024, "an unbounded partial head"),
        Err(e) => {
            let _ = (e.status(), e.kind(), e.to_string());
        }
    }
});
