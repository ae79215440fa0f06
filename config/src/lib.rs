//! The slabfront configuration: the one place that defines and validates the schema.
//!
//! A configuration is a TOML file shaped like a CloudFront distribution: `[server]`, origins,
//! a default cache behavior and path-pattern behaviors, the slab cache, logging; or many
//! such distributions side by side (`[[distributions]]`), each with its names. This crate
//! knows nothing of HTTP, sockets or the cache's internals; it turns text into a validated
//! [`Config`] or into a list of every problem found, each with its key and line/column.
//!
//! ```
//! let cfg = config::Config::from_toml_str(r#"
//! [[origins]]
//! id = "site"
//! path = "."
//! [default_cache_behavior]
//! target_origin = "site"
//! "#).unwrap();
//! assert_eq!(cfg.server.listen, vec!["127.0.0.1:8080".to_string()]);
//! ```

mod admin;
pub mod cloudfront;
mod compression;
mod distribution;
mod distributions;
mod error;
mod fleet;
mod functions;
pub mod geo;
mod http2;
mod locate;
mod origins;
mod schema;
mod security;
mod validate;
pub mod waf;

pub use compression::Compression;
pub use error::{ConfigError, Problem, ProblemKind};
pub use fleet::{parse_parent, Cluster, ParentPool};
pub use functions::{
    EventType, Function, FunctionAssociation, FunctionRuntime, KeyValueStore, MAX_FUNCTION_BYTES,
};
pub use http2::Http2;
pub use origins::{
    parse_endpoint, AddressingStyle, HealthCheck, OriginGroup, SigningBehavior, FAILOVER_CODES,
};
pub use schema::*;
pub use security::{
    managed_policy, parse_public_key, ContentSecurityPolicy, ContentTypeOptions, Cors, CustomHeader,
    FrameOptions, KeyAlgorithm, KeyGroup, KeyMaterial, PublicKey, ReferrerPolicy, ResponseHeadersPolicy,
    SecurityHeaders, ServerTiming, StrictTransportSecurity, XssProtection, MANAGED_POLICIES,
};

/// The configuration used when `slabfront` runs without `--config`: it listens on
/// 127.0.0.1:8080 and serves the current directory.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.toml");

impl Config {
    /// Parses and validates a whole configuration, reporting every problem found.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        validate::load(text, validate::Checks::All)
    }

    /// Parses and validates the schema only: files and directories the configuration names
    /// (certificates, keys, origin roots, log directories) are not looked for, so a file
    /// meant for another machine can be checked anywhere.
    pub fn from_toml_str_schema_only(text: &str) -> Result<Config, ConfigError> {
        validate::load(text, validate::Checks::SchemaOnly)
    }

    /// Reads, parses and validates a configuration file.
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        Self::read(path, validate::Checks::All)
    }

    /// Reads a configuration file and validates its schema only (see
    /// [`Config::from_toml_str_schema_only`]).
    pub fn from_file_schema_only(path: &std::path::Path) -> Result<Config, ConfigError> {
        Self::read(path, validate::Checks::SchemaOnly)
    }

    fn read(path: &std::path::Path, checks: validate::Checks) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            source: e,
        })?;
        validate::load(&text, checks).map_err(|e| e.with_file(path.display().to_string()))
    }

    /// The embedded default configuration.
    pub fn embedded_default() -> Config {
        // The embedded text is tested below; failing here is a build defect.
        Self::from_toml_str(EMBEDDED_DEFAULT).expect("embedded default configuration is valid")
    }

    /// The origin with this id.
    pub fn origin(&self, id: &str) -> Option<&Origin> {
        self.origins.iter().find(|o| o.id == id)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_default_is_valid() {
        let cfg = super::Config::embedded_default();
        assert_eq!(cfg.server.listen, vec!["127.0.0.1:8080"]);
        assert_eq!(cfg.default_cache_behavior.target_origin, cfg.origins[0].id);
    }
}
