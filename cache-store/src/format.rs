//! On-disk encodings: the file header, segment headers, entry headers and metadata slots.
//! Pure functions over byte slices; no I/O, no unsafe.
//!
//! ```text
//! file:    [file header, 4 KiB][segment 0][segment 1]...[segment n-1]
//! segment: [segment header, 64 B][entry][entry]...            (a run of segments for big objects)
//! entry:   [entry header, 64 B][key][meta slot A][meta slot B][body], padded to 8 bytes
//! slot:    [version u64][expires_at u64][len u32][crc u32][meta, `meta_cap` bytes]
//! ```
//! An entry is committed when its magic is written, last. Its CRC covers the header fields
//! (but not the segment sequence or flags, so an entry can be moved verbatim), the key and the
//! body. Metadata lives in two slots, the valid one with the higher version wins, so it can be
//! replaced without rewriting the body and without a torn state.

pub const FILE_MAGIC: &[u8; 8] = b"SLABFRNT";
pub const FORMAT_VERSION: u32 = 1;
pub const FILE_HEADER: u64 = 4096;
pub const SEG_MAGIC: u32 = 0x5346_5347; // "SFSG"
pub const SEG_HEADER: u64 = 64;
pub const ENTRY_MAGIC: u32 = 0x5346_454e; // "SFEN"
pub const ENTRY_HEADER: u64 = 64;
pub const SLOT_HEADER: u64 = 24;
pub const FLAG_DELETED: u32 = 1;

fn u32_at(b: &[u8], o: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[o..o + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// The file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub file_size: u64,
    pub segment_size: u64,
    pub segments: u64,
    /// Entries in segments with a sequence below this were invalidated all at once.
    pub purge_before: u64,
}

impl FileHeader {
    pub fn encode(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..8].copy_from_slice(FILE_MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[16..24].copy_from_slice(&self.file_size.to_le_bytes());
        b[24..32].copy_from_slice(&self.segment_size.to_le_bytes());
        b[32..40].copy_from_slice(&self.segments.to_le_bytes());
        b[40..48].copy_from_slice(&self.purge_before.to_le_bytes());
        let crc = crc32fast::hash(&b[..56]);
        b[56..60].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<FileHeader, String> {
        if b.len() < 64 {
            return Err("file too short for a header".into());
        }
        if &b[0..8] != FILE_MAGIC {
            return Err("not a slabfront slab (bad magic)".into());
        }
        let version = u32_at(b, 8);
        if version != FORMAT_VERSION {
            return Err(format!(
                "format version {version}, this build reads {FORMAT_VERSION}"
            ));
        }
        if crc32fast::hash(&b[..56]) != u32_at(b, 56) {
            return Err("header checksum mismatch (corrupted header)".into());
        }
        Ok(FileHeader {
            file_size: u64_at(b, 16),
            segment_size: u64_at(b, 24),
            segments: u64_at(b, 32),
            purge_before: u64_at(b, 40),
        })
    }
}

/// A segment header: the first segment of a run says how long the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegHeader {
    /// Allocation sequence: increases with every allocation, orders the log.
    pub seq: u64,
    /// Segments in this run (1 for ordinary segments).
    pub run: u32,
}

impl SegHeader {
    pub fn encode(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&SEG_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&self.run.to_le_bytes());
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        let crc = crc32fast::hash(&b[..16]);
        b[16..20].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Option<SegHeader> {
        if b.len() < 20 || u32_at(b, 0) != SEG_MAGIC || crc32fast::hash(&b[..16]) != u32_at(b, 16) {
            return None;
        }
        Some(SegHeader {
            run: u32_at(b, 4),
            seq: u64_at(b, 8),
        })
    }
}

/// An entry header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryHeader {
    pub flags: u32,
    pub seg_seq: u64,
    pub key_hash: u64,
    pub key_len: u32,
    pub meta_cap: u32,
    pub body_len: u64,
    pub written_at: u64,
    pub crc: u32,
}

impl EntryHeader {
    /// Bytes from the entry start to the body.
    pub fn body_offset(&self) -> u64 {
        ENTRY_HEADER + u64::from(self.key_len) + 2 * (SLOT_HEADER + u64::from(self.meta_cap))
    }

    /// The whole entry, padded to 8 bytes.
    pub fn total_len(&self) -> u64 {
        entry_len(self.key_len, self.meta_cap, self.body_len)
    }

    pub fn slot_offset(&self, slot: usize) -> u64 {
        ENTRY_HEADER + u64::from(self.key_len) + slot as u64 * (SLOT_HEADER + u64::from(self.meta_cap))
    }

    /// The header bytes the CRC covers.
    pub fn crc_fields(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&self.key_hash.to_le_bytes());
        b[8..12].copy_from_slice(&self.key_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.meta_cap.to_le_bytes());
        b[16..24].copy_from_slice(&self.body_len.to_le_bytes());
        b[24..32].copy_from_slice(&self.written_at.to_le_bytes());
        b
    }

    /// Everything but the magic (bytes 4..64); the magic is written separately, last.
    pub fn encode_body(&self) -> [u8; 60] {
        let mut b = [0u8; 60];
        b[0..4].copy_from_slice(&self.flags.to_le_bytes());
        b[4..12].copy_from_slice(&self.seg_seq.to_le_bytes());
        b[12..44].copy_from_slice(&self.crc_fields());
        b[44..48].copy_from_slice(&self.crc.to_le_bytes());
        b
    }

    /// Decodes a header whose magic is present; `None` for anything else.
    pub fn decode(b: &[u8]) -> Option<EntryHeader> {
        if b.len() < ENTRY_HEADER as usize || u32_at(b, 0) != ENTRY_MAGIC {
            return None;
        }
        Some(EntryHeader {
            flags: u32_at(b, 4),
            seg_seq: u64_at(b, 8),
            key_hash: u64_at(b, 16),
            key_len: u32_at(b, 24),
            meta_cap: u32_at(b, 28),
            body_len: u64_at(b, 32),
            written_at: u64_at(b, 40),
            crc: u32_at(b, 48),
        })
    }
}

pub fn entry_len(key_len: u32, meta_cap: u32, body_len: u64) -> u64 {
    let raw = ENTRY_HEADER + u64::from(key_len) + 2 * (SLOT_HEADER + u64::from(meta_cap)) + body_len;
    raw.div_ceil(8) * 8
}

/// Encodes a metadata slot (header + data; the caller ensures `meta.len() <= cap`).
pub fn encode_slot(version: u64, expires_at: u64, meta: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(SLOT_HEADER as usize + meta.len());
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&expires_at.to_le_bytes());
    b.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..20]);
    h.update(meta);
    b.extend_from_slice(&h.finalize().to_le_bytes());
    b.extend_from_slice(meta);
    b
}

/// A decoded slot: (version, expires_at, meta).
pub fn decode_slot(b: &[u8], cap: u32) -> Option<(u64, u64, &[u8])> {
    if b.len() < SLOT_HEADER as usize {
        return None;
    }
    let version = u64_at(b, 0);
    let len = u32_at(b, 16);
    if version == 0 || len > cap || b.len() < SLOT_HEADER as usize + len as usize {
        return None;
    }
    let meta = &b[SLOT_HEADER as usize..SLOT_HEADER as usize + len as usize];
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..20]);
    h.update(meta);
    if h.finalize() != u32_at(b, 20) {
        return None;
    }
    Some((version, u64_at(b, 8), meta))
}

/// The stable hash of a key (it is stored on disk).
pub fn key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_reject_damage() {
        let h = FileHeader {
            file_size: 1 << 30,
            segment_size: 1 << 20,
            segments: 1023,
            purge_before: 7,
        };
        let mut b = h.encode();
        assert_eq!(FileHeader::decode(&b), Ok(h));
        b[30] ^= 1;
        assert!(FileHeader::decode(&b).unwrap_err().contains("checksum"));
        let mut b = h.encode();
        b[8] = 9;
        assert!(FileHeader::decode(&b).unwrap_err().contains("version"));
        assert!(FileHeader::decode(b"short").is_err());

        let s = SegHeader { seq: 42, run: 3 };
        let mut b = s.encode();
        assert_eq!(SegHeader::decode(&b), Some(s));
        b[9] ^= 0xff;
        assert_eq!(SegHeader::decode(&b), None);
    }

    #[test]
    fn slots_round_trip_and_reject_damage() {
        let s = encode_slot(3, 99, b"meta!");
        assert_eq!(decode_slot(&s, 10), Some((3, 99, &b"meta!"[..])));
        assert_eq!(decode_slot(&s, 2), None, "longer than the capacity");
        let mut bad = s.clone();
        bad[25] ^= 1;
        assert_eq!(decode_slot(&bad, 10), None);
        assert_eq!(decode_slot(&[0u8; 40], 10), None, "a zeroed slot is empty");
    }
}
