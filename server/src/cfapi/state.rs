//! The CloudFront API's state directory: one JSON file per distribution made through the
//! API (`<Id>.json`) and one per distribution with invalidations (`<Id>.invalidations.json`).
//! Every write is atomic and durable before the API answers: a temporary file is written
//! and fsynced, renamed over the old one, and the directory fsynced, so `kill -9` at any
//! moment leaves either the old file or the new one.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A distribution made through the API, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    pub id: String,
    #[serde(rename = "ETag")]
    pub etag: String,
    pub domain_name: String,
    /// ISO 8601, as CloudFront writes it.
    pub last_modified_time: String,
    /// The DistributionConfig as the client sent it, in the shapes' JSON form.
    pub distribution_config: Value,
}

/// An invalidation, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Invalidation {
    pub id: String,
    pub caller_reference: String,
    pub create_time: String,
    pub paths: Vec<String>,
    pub status: String,
}

/// The state directory and what it holds.
pub struct Store {
    dir: PathBuf,
    pub records: BTreeMap<String, Record>,
    /// Invalidations by distribution id, oldest first.
    pub invalidations: BTreeMap<String, Vec<Invalidation>>,
}

const INVALIDATIONS: &str = ".invalidations.json";

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Store {
    /// Opens (creating it when missing) and reads the directory; any file that cannot be
    /// read is an error naming it: the API never starts on a state it half understood.
    pub fn open(dir: &Path) -> Result<Store, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut store = Store {
            dir: dir.to_path_buf(),
            records: BTreeMap::new(),
            invalidations: BTreeMap::new(),
        };
        let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                continue;
            };
            if name.ends_with(".tmp") {
                // A write that never reached its rename: the old file (if any) is current.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let read = |p: &Path| -> Result<String, String> {
                std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
            };
            if let Some(id) = name.strip_suffix(INVALIDATIONS).filter(|i| is_id(i)) {
                let list: Vec<Invalidation> =
                    serde_json::from_str(&read(&path)?).map_err(|e| format!("{}: {e}", path.display()))?;
                store.invalidations.insert(id.to_string(), list);
            } else if let Some(id) = name.strip_suffix(".json").filter(|i| is_id(i)) {
                let r: Record =
                    serde_json::from_str(&read(&path)?).map_err(|e| format!("{}: {e}", path.display()))?;
                if r.id != id {
                    return Err(format!("{}: holds distribution {}", path.display(), r.id));
                }
                store.records.insert(r.id.clone(), r);
            }
        }
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `r` durably, then keeps it.
    pub fn save(&mut self, r: Record) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(&r).map_err(std::io::Error::other)?;
        write_atomic(&self.dir, &format!("{}.json", r.id), &text)?;
        self.records.insert(r.id.clone(), r);
        Ok(())
    }

    /// Writes a distribution's invalidations durably, then keeps them.
    pub fn save_invalidations(&mut self, id: &str, list: Vec<Invalidation>) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(&list).map_err(std::io::Error::other)?;
        write_atomic(&self.dir, &format!("{id}{INVALIDATIONS}"), &text)?;
        self.invalidations.insert(id.to_string(), list);
        Ok(())
    }

    /// Removes a distribution and its invalidations, durably.
    pub fn remove(&mut self, id: &str) -> std::io::Result<()> {
        for name in [format!("{id}.json"), format!("{id}{INVALIDATIONS}")] {
            match std::fs::remove_file(self.dir.join(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::File::open(&self.dir)?.sync_all()?;
        self.records.remove(id);
        self.invalidations.remove(id);
        Ok(())
    }
}

/// Write, fsync, rename, fsync the directory.
fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn saved_records_come_back_and_leftovers_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.save(Record {
            id: "E1ABC".into(),
            etag: "E2".into(),
            domain_name: "d1.example".into(),
            last_modified_time: "2026-01-01T00:00:00.000Z".into(),
            distribution_config: serde_json::json!({"CallerReference": "r"}),
        })
        .unwrap();
        s.save_invalidations("E1ABC", Vec::new()).unwrap();
        std::fs::write(dir.path().join("E9.json.tmp"), b"{torn").unwrap();
        let again = Store::open(dir.path()).unwrap();
        assert_eq!(again.records["E1ABC"].etag, "E2");
        assert!(again.invalidations.contains_key("E1ABC"));
        assert!(!dir.path().join("E9.json.tmp").exists());
        std::fs::write(dir.path().join("E3.json"), b"{not json").unwrap();
        let e = Store::open(dir.path()).err().unwrap();
        assert!(e.contains("E3.json"), "{e}");
    }
}
