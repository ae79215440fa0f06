use std::fmt;

/// One thing wrong with a configuration: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key path, e.g. `server.listen[0]` or `origins[1].path`; empty for the whole file.
    pub key: String,
    /// 1-based line and column of the key (or of the value, for syntax errors); 0 if unknown.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// Whether the file itself is wrong or only this machine lacks what it names.
    pub kind: ProblemKind,
}

/// Where a problem lies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The file is wrong wherever it is used: syntax, unknown keys, bad values, references.
    #[default]
    Schema,
    /// The file may be right, but this machine lacks a file or directory it names
    /// (certificates, keys, origin roots, log directories). `--schema-only` skips these.
    Machine,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: ", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid configuration.
    #[error("{}", render(file.as_deref(), problems))]
    Invalid {
        file: Option<String>,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    pub(crate) fn with_file(self, name: String) -> Self {
        match self {
            ConfigError::Invalid { problems, .. } => ConfigError::Invalid {
                file: Some(name),
                problems,
            },
            other => other,
        }
    }

    /// Every problem found (empty for a read error).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            ConfigError::Read { .. } => &[],
        }
    }
}

fn render(file: Option<&str>, problems: &[Problem]) -> String {
    let mut out = format!(
        "{} problem{} in configuration",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    let machine = problems.iter().filter(|p| p.kind == ProblemKind::Machine).count();
    let groups = [
        (
            ProblemKind::Schema,
            "schema errors (the file is wrong wherever it is used):",
        ),
        (
            ProblemKind::Machine,
            "on this machine (files and directories the configuration names are missing here; \
             --schema-only skips these):",
        ),
    ];
    for (kind, heading) in groups {
        let mut group = problems.iter().filter(|p| p.kind == kind).peekable();
        if group.peek().is_none() {
            continue;
        }
        if machine > 0 {
            out.push('\n');
            out.push_str(heading);
        }
        for p in group {
            out.push('\n');
            if let Some(f) = file {
                out.push_str(f);
                out.push(':');
            }
            out.push_str(&p.to_string());
        }
    }
    out
}
