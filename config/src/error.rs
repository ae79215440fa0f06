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
    for p in problems {
        out.push('\n');
        if let Some(f) = file {
            out.push_str(f);
            out.push(':');
        }
        out.push_str(&p.to_string());
    }
    out
}
