//! Request-body framing: an incremental chunked decoder (RFC 9112 §7.1).

/// Where the decoder is in a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data; this many bytes remain.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty line.
    Trailer,
    Done,
}

/// A chunked body is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkError(pub &'static str);

/// Decodes a chunked body incrementally, whatever the splits of its input.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    trailer_bytes: usize,
}

/// Trailer section bytes allowed before the body is refused.
const MAX_TRAILER: usize = 16 * 1024;
/// Longest chunk-size line (with extensions) accepted.
const MAX_SIZE_LINE: usize = 4096;

/// One step of decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Input bytes consumed.
    pub consumed: usize,
    /// Body data found in the consumed input, as a range of it.
    pub data: std::ops::Range<usize>,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::Size,
            trailer_bytes: 0,
        }
    }

    /// Bytes of the current chunk not yet consumed (its declared size counts against limits
    /// before its data arrives).
    pub fn remaining_in_chunk(&self) -> u64 {
        match self.state {
            State::Data(n) => n,
            _ => 0,
        }
    }

    /// True once the last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input`. Returns what it consumed and where in it the data is; consuming
    /// nothing means more input is needed.
    pub fn step(&mut self, input: &[u8]) -> Result<Step, ChunkError> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Done => {
                    return Ok(Step {
                        consumed: pos,
                        data: pos..pos,
                    })
                }
                State::Size => {
                    let rest = &input[pos..];
                    match httparse::parse_chunk_size(rest) {
                        Ok(httparse::Status::Complete((n, size))) => {
                            pos += n;
                            self.state = if size == 0 {
                                State::Trailer
                            } else {
                                State::Data(size)
                            };
                        }
                        Ok(httparse::Status::Partial) => {
                            if rest.len() > MAX_SIZE_LINE {
                                return Err(ChunkError("chunk-size line too long"));
                            }
                            return Ok(Step {
                                consumed: pos,
                                data: pos..pos,
                            });
                        }
                        Err(_) => return Err(ChunkError("invalid chunk size")),
                    }
                }
                State::Data(left) => {
                    let avail = (input.len() - pos) as u64;
                    let take = avail.min(left) as usize;
                    let data = pos..pos + take;
                    self.state = if take as u64 == left {
                        State::DataEnd
                    } else {
                        State::Data(left - take as u64)
                    };
                    return Ok(Step {
                        consumed: pos + take,
                        data,
                    });
                }
                State::DataEnd => {
                    let rest = &input[pos..];
                    if rest.len() < 2 {
                        if rest == b"\r" || rest.is_empty() {
                            return Ok(Step {
                                consumed: pos,
                                data: pos..pos,
                            });
                        }
                        return Err(ChunkError("chunk data not followed by CRLF"));
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(ChunkError("chunk data not followed by CRLF"));
                    }
                    pos += 2;
                    self.state = State::Size;
                }
                State::Trailer => {
                    let rest = &input[pos..];
                    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                        if self.trailer_bytes + rest.len() > MAX_TRAILER {
                            return Err(ChunkError("trailer section too large"));
                        }
                        return Ok(Step {
                            consumed: pos,
                            data: pos..pos,
                        });
                    };
                    if nl == 0 || rest[nl - 1] != b'\r' {
                        return Err(ChunkError("bare LF in trailer section"));
                    }
                    let line = &rest[..nl - 1];
                    if line.contains(&b'\r') {
                        return Err(ChunkError("bare CR in trailer section"));
                    }
                    self.trailer_bytes += nl + 1;
                    if self.trailer_bytes > MAX_TRAILER {
                        return Err(ChunkError("trailer section too large"));
                    }
                    pos += nl + 1;
                    if line.is_empty() {
                        self.state = State::Done;
                    } else if !line.contains(&b':') || line[0] == b' ' || line[0] == b'\t' {
                        return Err(ChunkError("malformed trailer field"));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` split at `cut`, decoding as a connection would (keeping unconsumed bytes).
    fn decode_split(input: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, usize), ChunkError> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut fed = 0;
        let mut bounds: Vec<usize> = cuts.to_vec();
        bounds.push(input.len());
        for &b in &bounds {
            pending.extend_from_slice(&input[fed..b]);
            fed = b;
            loop {
                let s = d.step(&pending)?;
                out.extend_from_slice(&pending[s.data.clone()]);
                pending.drain(..s.consumed);
                if s.consumed == 0 || d.is_done() {
                    break;
                }
            }
            if d.is_done() {
                return Ok((out, pending.len() + (input.len() - fed)));
            }
        }
        Err(ChunkError("incomplete"))
    }

    const BODY: &[u8] = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";

    #[test]
    fn every_single_split() {
        for cut in 0..=BODY.len() {
            let (out, rest) = decode_split(BODY, &[cut]).unwrap();
            assert_eq!(out, b"hello world", "cut {cut}");
            assert_eq!(rest, 4, "cut {cut}");
        }
    }

    #[test]
    fn every_pair_of_splits() {
        for a in 0..BODY.len() {
            for b in a..BODY.len() {
                let (out, _) = decode_split(BODY, &[a, b]).unwrap();
                assert_eq!(out, b"hello world", "cuts {a} {b}");
            }
        }
    }

    #[test]
    fn malformed() {
        for bad in [
            &b"zz\r\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhelloXX0\r\n\r\n",
            b"-1\r\n",
            b"5\r\nhello\r\n0\r\nbad trailer\r\n\r\n",
            b"ffffffffffffffffffff\r\n",
        ] {
            assert!(
                decode_split(bad, &[]).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
