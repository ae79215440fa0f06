#![allow(clippy::unwrap_used)]
//! cache-store behaviour: round trips, streaming, spanning, invalidation, reopen, damage.

use cache_store::{Error, Store, StoreOptions};

const MIB: u64 = 1 << 20;

fn opts(dir: &tempfile::TempDir, size: u64, seg: u64) -> StoreOptions {
    StoreOptions {
        path: dir.path().join("slab"),
        size,
        segment_size: seg,
    }
}

fn body(i: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|j| (j.wrapping_mul(31).wrapping_add(i * 7)) as u8)
        .collect()
}

#[test]
fn insert_get_update_remove_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&opts(&dir, 16 * MIB, MIB)).unwrap();
    let mut w = s.writer();
    w.insert(b"/a", b"meta-a", b"body-a", u64::MAX).unwrap();
    w.insert(b"/dir/b", b"meta-b", &body(1, 5000), u64::MAX).unwrap();
    w.insert(b"/dir/c", b"", b"", u64::MAX).unwrap();
    let g = s.get(b"/a").unwrap();
    assert_eq!((g.meta(), g.body()), (&b"meta-a"[..], &b"body-a"[..]));
    drop(g);
    assert_eq!(s.get(b"/dir/b").unwrap().body(), body(1, 5000));
    assert_eq!(s.get(b"/dir/c").unwrap().body(), b"");
    assert!(s.get(b"/missing").is_none());
    // Replacing a key.
    w.insert(b"/a", b"meta-a2", b"body-a2", u64::MAX).unwrap();
    assert_eq!(s.get(b"/a").unwrap().body(), b"body-a2");
    // Metadata in place.
    assert!(s.update_meta(b"/a", b"fresh headers", 12345678901));
    let g = s.get(b"/a").unwrap();
    assert_eq!(g.meta(), b"fresh headers");
    assert_eq!(g.body(), b"body-a2");
    drop(g);
    assert!(
        !s.update_meta(b"/a", &vec![b'x'; 100_000], 1),
        "larger than reserved room"
    );
    // Expired objects are dropped and counted.
    w.insert(b"/old", b"", b"x", 1).unwrap();
    assert!(s.get(b"/old").is_none());
    // Invalidation.
    assert_eq!(s.remove_prefix(b"/dir/"), 2);
    assert!(s.get(b"/dir/b").is_none());
    assert!(s.remove(b"/a"));
    assert!(!s.remove(b"/a"));
    let st = s.stats();
    assert_eq!(st.objects, 0);
    assert_eq!(st.expired, 1);
    assert!(st.hits >= 5 && st.misses >= 3, "{st:?}");
}

#[test]
fn streamed_writes_become_visible_only_when_finished() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&opts(&dir, 32 * MIB, MIB)).unwrap();
    let mut w = s.writer();
    let big = body(9, 3 * MIB as usize + 12345);
    {
        let mut h = w.begin(b"/stream", b"m", u64::MAX, None).unwrap();
        for chunk in big.chunks(100_000) {
            h.write(chunk).unwrap();
            assert!(s.get(b"/stream").is_none(), "visible before finish");
        }
        h.finish().unwrap();
    }
    assert!(s.get(b"/stream").unwrap().body() == big.as_slice());
    // An aborted write leaves nothing, and the space is reused.
    let before = s.stats().bytes_used;
    {
        let mut h = w.begin(b"/aborted", b"m", u64::MAX, Some(10_000)).unwrap();
        h.write(&body(2, 10_000)).unwrap();
    }
    assert!(s.get(b"/aborted").is_none());
    assert_eq!(s.stats().bytes_used, before);
    w.insert(b"/after", b"", b"after", u64::MAX).unwrap();
    drop(w);
    drop(s);
    let s = Store::open(&opts(&dir, 32 * MIB, MIB)).unwrap();
    assert!(s.get(b"/aborted").is_none());
    assert_eq!(s.get(b"/after").unwrap().body(), b"after");
    assert!(s.get(b"/stream").unwrap().body() == big.as_slice());
}

#[test]
fn objects_larger_than_a_segment_and_than_the_slab() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&opts(&dir, 16 * MIB, 256 * 1024)).unwrap();
    let mut w = s.writer();
    let b = body(3, 5 * MIB as usize);
    w.insert(b"/big", b"", &b, u64::MAX).unwrap();
    assert!(s.get(b"/big").unwrap().body() == b.as_slice());
    let err = w
        .insert(b"/huge", b"", &vec![0u8; 17 * MIB as usize], u64::MAX)
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    // Still writable afterwards.
    w.insert(b"/small", b"", b"ok", u64::MAX).unwrap();
    assert_eq!(s.get(b"/small").unwrap().body(), b"ok");
}

#[test]
fn reopen_restores_objects_and_keeps_invalidations() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(&dir, 16 * MIB, MIB);
    {
        let s = Store::open(&o).unwrap();
        let mut w = s.writer();
        for i in 0..200u64 {
            w.insert(
                format!("/k/{i}").as_bytes(),
                format!("m{i}").as_bytes(),
                &body(i, 1000 + i as usize),
                u64::MAX,
            )
            .unwrap();
        }
        w.insert(b"/k/5", b"new", b"replaced", u64::MAX).unwrap();
        assert!(s.remove(b"/k/7"));
        assert_eq!(s.remove_prefix(b"/k/1"), 111);
        assert!(s.update_meta(b"/k/9", b"updated", u64::MAX));
    }
    let s = Store::open(&o).unwrap();
    assert_eq!(s.get(b"/k/5").unwrap().body(), b"replaced");
    assert!(s.get(b"/k/7").is_none(), "removed key came back");
    assert!(s.get(b"/k/150").is_none(), "prefix-invalidated key came back");
    assert_eq!(s.get(b"/k/9").unwrap().meta(), b"updated");
    assert_eq!(s.get(b"/k/42").unwrap().body(), body(42, 1042));
    assert_eq!(s.stats().objects, 200 - 1 - 111);
    s.clear().unwrap();
    assert!(s.get(b"/k/42").is_none());
    s.writer().insert(b"/after-clear", b"", b"x", u64::MAX).unwrap();
    drop(s);
    let s = Store::open(&o).unwrap();
    assert!(s.get(b"/k/42").is_none(), "cleared key came back");
    assert_eq!(s.get(b"/after-clear").unwrap().body(), b"x");
}

#[test]
fn two_processes_never_share_a_slab() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(&dir, 8 * MIB, MIB);
    let _a = Store::open(&o).unwrap();
    assert!(matches!(Store::open(&o), Err(Error::Locked { .. })));
}

#[test]
fn damaged_files_are_refused_or_skipped_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(&dir, 8 * MIB, MIB);
    let (target_off, other) = {
        let s = Store::open(&o).unwrap();
        let mut w = s.writer();
        w.insert(b"/victim", b"", &body(1, 50_000), u64::MAX).unwrap();
        w.insert(b"/other", b"", &body(2, 50_000), u64::MAX).unwrap();
        (
            s.get(b"/victim").unwrap().body_offset(),
            s.get(b"/other").unwrap().body().to_vec(),
        )
    };
    // Flip one body byte: that object becomes a counted miss; the next is intact.
    let mut bytes = std::fs::read(&o.path).unwrap();
    bytes[target_off as usize + 1000] ^= 0xff;
    std::fs::write(&o.path, &bytes).unwrap();
    {
        let s = Store::open(&o).unwrap();
        assert!(s.get(b"/victim").is_none());
        assert_eq!(s.get(b"/other").unwrap().body(), other);
        assert_eq!(s.stats().corrupt_skipped, 1);
    }
    // Another size configured: a clear error.
    let e = Store::open(&opts(&dir, 16 * MIB, MIB)).err().unwrap().to_string();
    assert!(e.contains("configured size"), "{e}");
    // Corrupted header.
    let mut damaged = bytes.clone();
    damaged[20] ^= 1;
    std::fs::write(&o.path, &damaged).unwrap();
    let e = Store::open(&o).err().unwrap().to_string();
    assert!(e.contains("checksum"), "{e}");
    // Wrong version.
    let mut damaged = bytes.clone();
    damaged[8] = 99;
    std::fs::write(&o.path, &damaged).unwrap();
    assert!(Store::open(&o).err().unwrap().to_string().contains("version"));
    // Truncated.
    std::fs::write(&o.path, &bytes[..1_000_000]).unwrap();
    assert!(Store::open(&o).err().unwrap().to_string().contains("truncated"));
    // Not a slab at all.
    std::fs::write(&o.path, vec![7u8; 8 * MIB as usize]).unwrap();
    assert!(Store::open(&o)
        .err()
        .unwrap()
        .to_string()
        .contains("not a slabfront slab"));
}

#[test]
fn eviction_reclaims_space_and_keeps_hot_objects() {
    let dir = tempfile::tempdir().unwrap();
    // 8 segments of 256 KiB.
    let s = Store::open(&opts(&dir, 4096 + 8 * 256 * 1024, 256 * 1024)).unwrap();
    let mut w = s.writer();
    w.insert(b"/hot", b"", &body(0, 10_000), u64::MAX).unwrap();
    for i in 0..2000u64 {
        w.insert(format!("/cold/{i}").as_bytes(), b"", &body(i, 10_000), u64::MAX)
            .unwrap();
        // Read the hot object now and then: it must survive several wraps.
        if i % 20 == 0 {
            assert!(
                s.get(b"/hot").unwrap().body() == body(0, 10_000).as_slice(),
                "hot object lost at {i}"
            );
        }
    }
    let st = s.stats();
    assert!(st.evictions > 1000, "{st:?}");
    assert!(st.reinserted > 0, "{st:?}");
    assert!(st.bytes_used <= st.capacity);
    // Whatever is still present is intact.
    for i in 0..2000u64 {
        if let Some(g) = s.get(format!("/cold/{i}").as_bytes()) {
            assert!(g.body() == body(i, 10_000).as_slice());
        }
    }
}

#[test]
fn handles_that_own_their_writer_stream_large_objects() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&opts(&dir, 64 * MIB, MIB)).unwrap();
    let big = body(9, 5 * MIB as usize + 123);
    let mut h = s.writer().begin_owned(b"/big", b"m", u64::MAX, None).unwrap();
    for piece in big.chunks(70_000) {
        h.write(piece).unwrap();
    }
    assert!(s.get(b"/big").is_none(), "not visible before finish");
    h.finish().unwrap();
    let g = s.get(b"/big").unwrap();
    assert!(g.body() == &big[..]);
    assert_eq!(g.meta(), b"m");
    // Dropped unfinished: never visible.
    let mut h = s
        .writer()
        .begin_owned(b"/aborted", b"", u64::MAX, Some(3 * MIB))
        .unwrap();
    h.write(&big[..MIB as usize]).unwrap();
    drop(h);
    assert!(s.get(b"/aborted").is_none());
    // Small objects still go through a shared writer alongside.
    s.writer().insert(b"/small", b"", b"x", u64::MAX).unwrap();
    assert_eq!(s.get(b"/small").unwrap().body(), b"x");
}

#[test]
fn read_range_reads_through_the_file_and_residency_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&opts(&dir, 32 * MIB, MIB)).unwrap();
    let data = body(3, 3 * MIB as usize);
    s.writer().insert(b"/w", b"", &data, u64::MAX).unwrap();
    let g = s.get(b"/w").unwrap();
    let whole = s.read_range(g.body_offset(), g.body_len()).unwrap();
    assert!(whole == data);
    assert!(s.resident(g.body_offset(), g.body_len()));
    assert!(g.resident(0, g.body_len()));
    // Read through the file: the object's bytes, wherever the range starts.
    let r = s.read_range(g.body_offset() + 1000, MIB).unwrap();
    assert!(r[..] == data[1000..1000 + MIB as usize]);
    assert!(
        s.read_range(31 * MIB, 4 * MIB).is_err(),
        "past the end of the slab"
    );
    assert!(s.read_range(u64::MAX, 2).is_err());
}

#[test]
fn entry_head_locates_the_key_and_metadata_without_a_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&opts(&dir, 32 * MIB, MIB)).unwrap();
    let mut w = s.writer();
    w.insert(b"/a", b"meta-of-a", &body(1, 5000), u64::MAX).unwrap();
    w.insert(b"/bb", b"meta-of-bb", &body(2, 7000), u64::MAX).unwrap();
    assert_eq!(s.entry_head(b"/missing"), None);
    for (key, meta) in [(&b"/a"[..], &b"meta-of-a"[..]), (b"/bb", b"meta-of-bb")] {
        let (off, len, body_len) = s.entry_head(key).unwrap();
        let g = s.get(key).unwrap();
        assert_eq!(off + len, g.body_offset(), "the head ends where the body starts");
        assert_eq!(body_len, g.body_len());
        let head = s.read_range(off, len).unwrap();
        let has = |needle: &[u8]| head.windows(needle.len()).any(|x| x == needle);
        assert!(has(key) && has(meta), "key and metadata lie inside the range");
        assert!(s.resident(off, len));
    }
}

#[test]
fn objects_read_often_outlast_objects_read_once() {
    let dir = tempfile::tempdir().unwrap();
    // 8 segments of 256 KiB: about 180 objects of 10 KB fit.
    let s = Store::open(&opts(&dir, 4096 + 8 * 256 * 1024, 256 * 1024)).unwrap();
    let mut w = s.writer();
    w.insert(b"/often", b"", &body(1, 10_000), u64::MAX).unwrap();
    w.insert(b"/once", b"", &body(2, 10_000), u64::MAX).unwrap();
    for _ in 0..3 {
        assert!(s.get(b"/often").is_some());
    }
    assert!(s.get(b"/once").is_some());
    // About three laps of cold writes, without reading either again.
    for i in 0..600u64 {
        w.insert(format!("/cold/{i}").as_bytes(), b"", &body(i, 10_000), u64::MAX)
            .unwrap();
    }
    assert!(
        s.get(b"/often")
            .is_some_and(|g| g.body() == body(1, 10_000).as_slice()),
        "an object read three times is kept for three more laps"
    );
    assert!(
        s.get(b"/once").is_none(),
        "an object read once gets one more lap, not two"
    );
}

#[test]
fn lent_bodies_keep_their_bytes_when_their_segments_are_reused() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    // 4 segments of 256 KiB: 40 more objects of 100 KB reuse every one of them.
    let s = Store::open(&opts(&dir, 4096 + 4 * 256 * 1024, 256 * 1024)).unwrap();
    let old = body(1, 100_000);
    let mut w = s.writer();
    w.insert(b"/lent", b"", &old, u64::MAX).unwrap();
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    let lent;
    {
        let g = s.get(b"/lent").unwrap();
        let mut off = g
            .lend_body()
            .expect("this file system gives reused ranges fresh pages");
        // The pipe now holds references to the slab's page-cache pages, as a socket does
        // after sendfile. (Its 16 slots take 16 pages: a little less than 64 KiB from an
        // unaligned start.)
        lent = rustix::pipe::splice(
            s.file(),
            Some(&mut off),
            &wr,
            None,
            65536,
            rustix::pipe::SpliceFlags::empty(),
        )
        .unwrap();
        assert!(lent > 60_000, "{lent} bytes spliced");
    }
    for i in 0..40u64 {
        w.insert(
            format!("/new/{i}").as_bytes(),
            b"",
            &body(i + 2, 100_000),
            u64::MAX,
        )
        .unwrap();
    }
    assert!(s.get(b"/lent").is_none(), "its segment was reused");
    for i in 37..40u64 {
        let g = s.get(format!("/new/{i}").as_bytes()).unwrap();
        assert!(
            g.body() == &body(i + 2, 100_000)[..],
            "object {i} reads back whole"
        );
    }
    let mut back = vec![0u8; lent];
    std::fs::File::from(rd).read_exact(&mut back).unwrap();
    assert!(back[..] == old[..lent], "bytes lent to the kernel changed");
}
