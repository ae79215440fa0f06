//! What is stored beside a cached body: the origin's status and end-to-end headers, and the
//! times the freshness and age calculations need. A small versioned binary encoding; anything
//! that does not decode is treated as a miss.

/// A stored response's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    pub kind: Kind,
    pub status: u16,
    /// When the response was received (ms since the epoch).
    pub response_ms: u64,
    /// Its age when received (RFC 9111 corrected initial age), ms.
    pub initial_age_ms: u64,
    /// Freshness lifetime, ms.
    pub lifetime_ms: u64,
    /// Header names the response varies on (lowercase).
    pub vary: Vec<String>,
    /// End-to-end response headers, as the origin sent them.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// A stored object, or the marker that says a URL's responses vary and where to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    #[default]
    Object,
    VaryStub,
}

const MAGIC: u8 = 0xA7;
const VERSION: u8 = 1;

impl Meta {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(
            64 + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 6)
                .sum::<usize>(),
        );
        b.push(MAGIC);
        b.push(VERSION);
        b.push(match self.kind {
            Kind::Object => 0,
            Kind::VaryStub => 1,
        });
        b.extend_from_slice(&self.status.to_le_bytes());
        for v in [self.response_ms, self.initial_age_ms, self.lifetime_ms] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&(self.vary.len() as u16).to_le_bytes());
        for v in &self.vary {
            put(&mut b, v.as_bytes());
        }
        b.extend_from_slice(&(self.headers.len() as u16).to_le_bytes());
        for (n, v) in &self.headers {
            put(&mut b, n.as_bytes());
            put(&mut b, v);
        }
        b
    }

    pub fn decode(b: &[u8]) -> Option<Meta> {
        let mut r = Reader(b);
        if r.take(2)? != [MAGIC, VERSION] {
            return None;
        }
        let kind = match r.take(1)?[0] {
            0 => Kind::Object,
            1 => Kind::VaryStub,
            _ => return None,
        };
        let status = u16::from_le_bytes(r.take(2)?.try_into().ok()?);
        let mut t = [0u64; 3];
        for x in &mut t {
            *x = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
        }
        let nv = u16::from_le_bytes(r.take(2)?.try_into().ok()?);
        let mut vary = Vec::with_capacity(nv as usize);
        for _ in 0..nv {
            vary.push(String::from_utf8(r.get()?.to_vec()).ok()?);
        }
        let nh = u16::from_le_bytes(r.take(2)?.try_into().ok()?);
        let mut headers = Vec::with_capacity(nh as usize);
        for _ in 0..nh {
            let n = String::from_utf8(r.get()?.to_vec()).ok()?;
            let v = r.get()?.to_vec();
            headers.push((n, v));
        }
        Some(Meta {
            kind,
            status,
            response_ms: t[0],
            initial_age_ms: t[1],
            lifetime_ms: t[2],
            vary,
            headers,
        })
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        super::fields::first(&self.headers, name)
    }

    /// Every value line of a header.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        super::fields::values(&self.headers, name)
    }

    /// Current age in ms at `now_ms`.
    pub fn age_ms(&self, now_ms: u64) -> u64 {
        self.initial_age_ms + now_ms.saturating_sub(self.response_ms)
    }
}

fn put(b: &mut Vec<u8>, v: &[u8]) {
    b.extend_from_slice(&(v.len() as u32).to_le_bytes());
    b.extend_from_slice(v);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    fn get(&mut self) -> Option<&'a [u8]> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let m = Meta {
            kind: Kind::Object,
            status: 200,
            response_ms: 1,
            initial_age_ms: 2,
            lifetime_ms: 3,
            vary: vec!["accept".into()],
            headers: vec![
                ("Content-Type".into(), b"text/html".to_vec()),
                ("ETag".into(), b"\"x\"".to_vec()),
            ],
        };
        let b = m.encode();
        assert_eq!(Meta::decode(&b), Some(m.clone()));
        assert_eq!(m.header("etag"), Some(&b"\"x\""[..]));
        for cut in 0..b.len() {
            assert_eq!(Meta::decode(&b[..cut]), None, "truncated at {cut}");
        }
        let mut bad = b.clone();
        bad[1] = 9;
        assert_eq!(Meta::decode(&bad), None);
    }
}
