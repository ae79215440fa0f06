//! `[server.compression]`: how hard objects are compressed at the edge, for behaviors with
//! `compress = true`. A compressed variant is computed once per object and coding and then
//! served from the slab, so the levels trade the first viewer's wait (and one core's time per
//! object) against bytes on every later response. The defaults were chosen by measurement on
//! the benchmark's 1.3 MB `/simple/` page (`docs/compression.md`).

use serde::Deserialize;

/// Compression levels, one per coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Compression {
    /// gzip (zlib-rs), 1 (fastest) to 9 (smallest).
    pub gzip_level: u32,
    /// Brotli, 0 (fastest) to 11 (smallest).
    pub brotli_level: u32,
    /// zstd, 1 (fastest) to 19 (smallest; 20-22 need more memory than is worth it here).
    pub zstd_level: i32,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            gzip_level: 9,
            brotli_level: 9,
            zstd_level: 12,
        }
    }
}

/// The problems of a `[server.compression]` table, as (key, message).
pub(crate) fn check(c: &Compression, mut bad: impl FnMut(String, String)) {
    let key = |k: &str| format!("server.compression.{k}");
    if !(1..=9).contains(&c.gzip_level) {
        bad(key("gzip_level"), "must be from 1 to 9".into());
    }
    if c.brotli_level > 11 {
        bad(key("brotli_level"), "must be from 0 to 11".into());
    }
    if !(1..=19).contains(&c.zstd_level) {
        bad(key("zstd_level"), "must be from 1 to 19".into());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    const BASE: &str =
        "[[origins]]\nid = \"s\"\npath = \".\"\n[default_cache_behavior]\ntarget_origin = \"s\"\n";

    #[test]
    fn defaults_and_keys_are_read() {
        let cfg = crate::Config::from_toml_str(BASE).unwrap();
        assert_eq!(cfg.server.compression, super::Compression::default());
        assert!(!cfg.default_cache_behavior.compress, "CloudFront's API default");
        let cfg = crate::Config::from_toml_str(&format!(
            "[server.compression]\ngzip_level = 9\nbrotli_level = 11\nzstd_level = 3\n{BASE}compress = true\n"
        ))
        .unwrap();
        let c = cfg.server.compression;
        assert_eq!((c.gzip_level, c.brotli_level, c.zstd_level), (9, 11, 3));
        assert!(cfg.default_cache_behavior.compress);
    }

    #[test]
    fn every_bad_level_is_reported_with_its_key() {
        let text =
            format!("[server.compression]\ngzip_level = 0\nbrotli_level = 12\nzstd_level = 22\n{BASE}");
        let e = crate::Config::from_toml_str(&text).unwrap_err().to_string();
        for key in [
            "server.compression.gzip_level",
            "server.compression.brotli_level",
            "server.compression.zstd_level",
        ] {
            assert!(e.contains(key), "{key} missing from: {e}");
        }
        let e =
            crate::Config::from_toml_str(&format!("[server.compression]\nlevel = 5\n{BASE}")).unwrap_err();
        assert!(e.to_string().contains("level"), "{e}");
        let e = crate::Config::from_toml_str(&format!("{BASE}compress = \"yes\"\n")).unwrap_err();
        assert!(e.to_string().contains("compress"), "{e}");
    }
}
