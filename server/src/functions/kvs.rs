//! Key-value stores: CloudFront KeyValueStore's import JSON format,
//! `{"data":[{"key":"k","value":"v"}, ...]}`, read into memory.

use std::collections::HashMap;
use std::path::Path;

/// CloudFront's limits on an entry.
const MAX_KEY_BYTES: usize = 512;
const MAX_VALUE_BYTES: usize = 1024;
/// CloudFront's limit on a whole store.
const MAX_STORE_BYTES: u64 = 5 << 20;

/// One store's entries, read-only once loaded.
#[derive(Debug, Default)]
pub struct Store {
    entries: HashMap<String, String>,
    /// The file's modification time when read (a reload re-reads a changed file).
    pub modified: Option<std::time::SystemTime>,
    /// The file's size in bytes, for `meta()`.
    pub size: u64,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Import {
    data: Vec<Entry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    key: String,
    value: String,
}

impl Store {
    /// Reads a store file; the error says what is wrong and where.
    pub fn load(path: &Path) -> Result<Store, String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.len() > MAX_STORE_BYTES {
            return Err(format!(
                "{}: {} bytes, CloudFront's limit is 5 MB",
                path.display(),
                meta.len()
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut store = Store::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        store.modified = meta.modified().ok();
        store.size = meta.len();
        Ok(store)
    }

    /// Parses the import JSON.
    pub fn parse(text: &str) -> Result<Store, String> {
        let import: Import = serde_json::from_str(text).map_err(|e| {
            format!(
                "{e} (expected CloudFront's import format {{\"data\":[{{\"key\":\"k\",\"value\":\"v\"}}]}})"
            )
        })?;
        let mut entries = HashMap::with_capacity(import.data.len());
        for (i, e) in import.data.into_iter().enumerate() {
            if e.key.is_empty() || e.key.len() > MAX_KEY_BYTES {
                return Err(format!("data[{i}]: a key is 1 to {MAX_KEY_BYTES} bytes"));
            }
            if e.value.len() > MAX_VALUE_BYTES {
                return Err(format!(
                    "data[{i}] ({}): a value is at most {MAX_VALUE_BYTES} bytes",
                    e.key
                ));
            }
            if entries.insert(e.key, e.value).is_some() {
                return Err(format!("data[{i}]: the key is listed twice"));
            }
        }
        Ok(Store {
            entries,
            modified: None,
            size: text.len() as u64,
        })
    }

    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// How many entries the store holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Store;

    #[test]
    fn import_format_is_read_and_checked() {
        let s =
            Store::parse(r#"{"data":[{"key":"a","value":"1"},{"key":"b","value":"{\"x\":2}"}]}"#).unwrap();
        assert_eq!(s.get("a"), Some("1"));
        assert_eq!(s.get("b"), Some("{\"x\":2}"));
        assert_eq!(s.get("c"), None);
        assert!(Store::parse(r#"{"data":[{"key":"a","value":"1"},{"key":"a","value":"2"}]}"#).is_err());
        assert!(Store::parse(r#"{"entries":[]}"#).is_err());
        let long = "v".repeat(1025);
        assert!(Store::parse(&format!(r#"{{"data":[{{"key":"a","value":"{long}"}}]}}"#)).is_err());
    }
}
