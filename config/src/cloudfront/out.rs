//! A small TOML writer that keeps comments where the mapping puts them: the import's output
//! is read by people, so unmapped settings sit as comments next to what they belong to.

use std::fmt::Write;

/// TOML text being written, with the warnings that go with its comments.
#[derive(Debug, Default)]
pub(crate) struct Out {
    pub text: String,
    pub warnings: Vec<String>,
}

/// A TOML value, written with toml_edit's quoting.
pub(crate) fn string(s: &str) -> String {
    toml_edit::Value::from(s).to_string().trim().to_string()
}

pub(crate) fn strings<S: AsRef<str>>(v: &[S]) -> String {
    let items: Vec<String> = v.iter().map(|s| string(s.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

impl Out {
    pub fn line(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
    }

    pub fn blank(&mut self) {
        self.text.push('\n');
    }

    pub fn kv(&mut self, key: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.text, "{key} = {value}");
    }

    pub fn comment(&mut self, s: &str) {
        for l in s.lines() {
            let _ = writeln!(self.text, "# {l}");
        }
    }

    /// A setting slabfront has no counterpart for: a commented line where it belongs, and a
    /// warning naming where it came from.
    pub fn unmapped(&mut self, from: &str, line: &str, why: &str) {
        self.comment(&format!("not imported ({why}): {line}"));
        self.warnings.push(format!("{from}: {why}; left as a comment"));
    }
}
