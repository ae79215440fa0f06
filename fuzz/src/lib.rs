//! Checks shared by the fuzz targets.

use slabfront::http::body::ChunkedDecoder;

/// How a chunked body decoded.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The body ended after this many input bytes, with this data.
    Done(usize, Vec<u8>),
    /// All input was used and more is needed; this much data so far.
    NeedMore(Vec<u8>),
    Err,
}

/// Decodes `input` as a connection does, handing the decoder whatever has not been consumed
/// yet after each delivery; deliveries are `sizes` long in turn (each at least 1; all of
/// the input at once if `sizes` is empty).
fn decode(input: &[u8], sizes: &[usize]) -> Outcome {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let (mut fed, mut used) = (0, 0);
    let mut turn = 0;
    loop {
        let left = input.len() - fed;
        let n = match sizes.get(turn % sizes.len().max(1)) {
            Some(&s) => s.min(left),
            None => left,
        };
        turn += 1;
        pending.extend_from_slice(&input[fed..fed + n]);
        fed += n;
        loop {
            let step = match d.step(&pending) {
                Ok(s) => s,
                Err(_) => return Outcome::Err,
            };
            assert!(step.consumed <= pending.len(), "consumed more than it was given");
            assert!(
                step.data.start <= step.data.end && step.data.end <= step.consumed,
                "data outside the consumed input: {step:?}"
            );
            out.extend_from_slice(&pending[step.data.clone()]);
            pending.drain(..step.consumed);
            used += step.consumed;
            if d.is_done() {
                return Outcome::Done(used, out);
            }
            if step.consumed == 0 {
                break;
            }
        }
        if fed == input.len() {
            break;
        }
    }
    Outcome::NeedMore(out)
}

/// Decodes `input` as a chunked body delivered whole and delivered in pieces (their sizes
/// drawn from `seed`): however it is split, a body that decodes gives the same data and ends
/// at the same byte, and input refused whole is refused split. (Split input may be refused
/// where whole input is not: a chunk-size line is limited before its end arrives.)
pub fn check_chunked(input: &[u8], seed: u8) {
    let whole = decode(input, &[]);
    let sizes: Vec<usize> = (0..4)
        .map(|i| usize::from((seed >> (2 * i)) & 3) * 3 + 1)
        .collect();
    let split = decode(input, &sizes);
    let bytewise = decode(input, &[1]);
    for s in [&split, &bytewise] {
        match (&whole, s) {
            (_, Outcome::Err) => {}
            (Outcome::Err, other) => panic!("refused whole but not split: {other:?}"),
            (w, s) => assert_eq!(w, s, "whole and split decodes differ"),
        }
    }
}
