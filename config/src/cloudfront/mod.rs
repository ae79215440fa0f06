//! CloudFront DistributionConfig import: `slabfront import`.
//!
//! One mapping ([`map`]) from CloudFront's DistributionConfig shapes ([`shapes`], as AWS's
//! API reference names them) to a slabfront configuration (TOML, with a comment and a
//! warning for every setting that has no counterpart). Front ends only deserialize into the
//! shapes: [`from_json`] reads what `aws cloudfront get-distribution-config` prints.
//!
//! ```
//! let json = r#"{"ETag": "E1", "DistributionConfig": {
//!   "CallerReference": "r", "Aliases": {"Quantity": 1, "Items": ["www.example.com"]},
//!   "Origins": {"Quantity": 1, "Items": [{"Id": "app", "DomainName": "app.example.internal",
//!     "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
//!       "OriginProtocolPolicy": "http-only"}}]},
//!   "DefaultCacheBehavior": {"TargetOriginId": "app", "ViewerProtocolPolicy": "allow-all",
//!     "CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"},
//!   "Comment": "", "Enabled": true}}"#;
//! let imported = config::cloudfront::from_json(json, &Default::default()).unwrap();
//! let cfg = config::Config::from_toml_str_schema_only(&imported.toml).unwrap();
//! assert_eq!(cfg.distributions[0].name, "www.example.com");
//! assert_eq!(cfg.default_cache_behavior.max_ttl, 0); // CachingDisabled
//! ```

pub mod api;
mod map;
mod out;
pub mod policies;
pub mod shapes;

pub use map::{map, Imported, Options};

/// Why a document could not be imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Not JSON, or not shaped like a DistributionConfig.
    #[error("line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
}

/// `aws cloudfront get-distribution-config`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Wrapped {
    distribution_config: shapes::DistributionConfig,
}

/// `aws cloudfront get-distribution`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetDistribution {
    distribution: Wrapped,
}

/// Reads DistributionConfig JSON as the AWS CLI prints it: the bare DistributionConfig, or
/// wrapped (`{"ETag": …, "DistributionConfig": …}` from get-distribution-config,
/// `{"Distribution": {"DistributionConfig": …}}` from get-distribution).
pub fn from_json(text: &str, opts: &Options) -> Result<Imported, ImportError> {
    let json_err = |e: serde_json::Error| ImportError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    };
    // The shape is told first from the top-level keys, then the text is read once more as
    // that shape, so a mistake is reported at its line and column.
    let v: serde_json::Value = serde_json::from_str(text).map_err(json_err)?;
    let dc = if v.get("Distribution").is_some() {
        serde_json::from_str::<GetDistribution>(text)
            .map_err(json_err)?
            .distribution
            .distribution_config
    } else if v.get("DistributionConfig").is_some() {
        serde_json::from_str::<Wrapped>(text)
            .map_err(json_err)?
            .distribution_config
    } else {
        serde_json::from_str::<shapes::DistributionConfig>(text).map_err(json_err)?
    };
    Ok(map(&dc, opts))
}
