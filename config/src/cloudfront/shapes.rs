//! CloudFront's DistributionConfig, shaped as AWS's API reference shapes it (PascalCase
//! members, `Quantity`/`Items` lists). Only the shapes: any front end that can deserialize
//! into them (the JSON the AWS CLI prints, the XML of the REST API) shares one mapping.
//!
//! Members this file does not name are kept by name in `other`, so the mapping can report
//! them instead of losing them.

use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Members not named by a shape: their names, in order.
pub type Other = BTreeMap<String, IgnoredAny>;

/// A CloudFront list: `{ "Quantity": n, "Items": [...] }` (`Items` absent when empty).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct List<T> {
    #[serde(default)]
    pub quantity: u32,
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List {
            quantity: 0,
            items: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DistributionConfig {
    #[serde(default)]
    pub caller_reference: String,
    #[serde(default)]
    pub aliases: List<String>,
    #[serde(default)]
    pub default_root_object: String,
    pub origins: List<Origin>,
    #[serde(default)]
    pub origin_groups: List<OriginGroup>,
    pub default_cache_behavior: CacheBehavior,
    #[serde(default)]
    pub cache_behaviors: List<CacheBehavior>,
    #[serde(default)]
    pub custom_error_responses: List<CustomErrorResponse>,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub logging: Option<Logging>,
    #[serde(default)]
    pub price_class: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub viewer_certificate: Option<ViewerCertificate>,
    #[serde(default)]
    pub restrictions: Option<Restrictions>,
    #[serde(default, rename = "WebACLId")]
    pub web_acl_id: String,
    #[serde(default)]
    pub http_version: Option<String>,
    #[serde(default, rename = "IsIPV6Enabled")]
    pub is_ipv6_enabled: Option<bool>,
    #[serde(default)]
    pub continuous_deployment_policy_id: String,
    #[serde(default)]
    pub staging: bool,
    #[serde(flatten)]
    pub other: Other,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Origin {
    pub id: String,
    pub domain_name: String,
    #[serde(default)]
    pub origin_path: String,
    #[serde(default)]
    pub custom_headers: List<OriginCustomHeader>,
    #[serde(default)]
    pub s3_origin_config: Option<S3OriginConfig>,
    #[serde(default)]
    pub custom_origin_config: Option<CustomOriginConfig>,
    #[serde(default)]
    pub vpc_origin_config: Option<VpcOriginConfig>,
    #[serde(default)]
    pub connection_attempts: Option<u32>,
    #[serde(default)]
    pub connection_timeout: Option<u64>,
    #[serde(default)]
    pub origin_shield: Option<OriginShield>,
    #[serde(default)]
    pub origin_access_control_id: String,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OriginCustomHeader {
    pub header_name: String,
    pub header_value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct S3OriginConfig {
    #[serde(default)]
    pub origin_access_identity: String,
    #[serde(default)]
    pub origin_read_timeout: Option<u64>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomOriginConfig {
    #[serde(rename = "HTTPPort")]
    pub http_port: u16,
    #[serde(rename = "HTTPSPort")]
    pub https_port: u16,
    pub origin_protocol_policy: String,
    #[serde(default)]
    pub origin_ssl_protocols: List<String>,
    #[serde(default)]
    pub origin_read_timeout: Option<u64>,
    #[serde(default)]
    pub origin_keepalive_timeout: Option<u64>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VpcOriginConfig {
    pub vpc_origin_id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OriginShield {
    pub enabled: bool,
    #[serde(default)]
    pub origin_shield_region: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OriginGroup {
    pub id: String,
    pub failover_criteria: FailoverCriteria,
    pub members: List<OriginGroupMember>,
    #[serde(default)]
    pub selection_criteria: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FailoverCriteria {
    pub status_codes: List<u16>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OriginGroupMember {
    pub origin_id: String,
}

/// `DefaultCacheBehavior` and each of `CacheBehaviors` (the default has no `PathPattern`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CacheBehavior {
    #[serde(default)]
    pub path_pattern: String,
    pub target_origin_id: String,
    #[serde(default)]
    pub trusted_signers: Option<Trusted>,
    #[serde(default)]
    pub trusted_key_groups: Option<Trusted>,
    pub viewer_protocol_policy: String,
    #[serde(default)]
    pub allowed_methods: Option<AllowedMethods>,
    #[serde(default)]
    pub smooth_streaming: bool,
    #[serde(default)]
    pub compress: bool,
    #[serde(default)]
    pub lambda_function_associations: List<LambdaFunctionAssociation>,
    #[serde(default)]
    pub function_associations: List<FunctionAssociation>,
    #[serde(default)]
    pub field_level_encryption_id: String,
    #[serde(default)]
    pub realtime_log_config_arn: String,
    #[serde(default)]
    pub cache_policy_id: String,
    #[serde(default)]
    pub origin_request_policy_id: String,
    #[serde(default)]
    pub response_headers_policy_id: String,
    #[serde(default)]
    pub grpc_config: Option<GrpcConfig>,
    #[serde(default)]
    pub forwarded_values: Option<ForwardedValues>,
    #[serde(default, rename = "MinTTL")]
    pub min_ttl: Option<u64>,
    #[serde(default, rename = "DefaultTTL")]
    pub default_ttl: Option<u64>,
    #[serde(default, rename = "MaxTTL")]
    pub max_ttl: Option<u64>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Trusted {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub items: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GrpcConfig {
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AllowedMethods {
    #[serde(default)]
    pub items: Vec<String>,
    #[serde(default)]
    pub cached_methods: List<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LambdaFunctionAssociation {
    #[serde(rename = "LambdaFunctionARN")]
    pub lambda_function_arn: String,
    pub event_type: String,
    #[serde(default)]
    pub include_body: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionAssociation {
    #[serde(rename = "FunctionARN")]
    pub function_arn: String,
    pub event_type: String,
}

/// The legacy cache settings (before cache policies).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ForwardedValues {
    pub query_string: bool,
    pub cookies: CookiePreference,
    #[serde(default)]
    pub headers: List<String>,
    #[serde(default)]
    pub query_string_cache_keys: List<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CookiePreference {
    pub forward: String,
    #[serde(default)]
    pub whitelisted_names: List<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomErrorResponse {
    pub error_code: u16,
    #[serde(default)]
    pub response_page_path: String,
    /// A string in AWS's shapes (`"404"`); empty when unset.
    #[serde(default)]
    pub response_code: String,
    #[serde(default, rename = "ErrorCachingMinTTL")]
    pub error_caching_min_ttl: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Logging {
    pub enabled: bool,
    #[serde(default)]
    pub include_cookies: bool,
    #[serde(default)]
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ViewerCertificate {
    #[serde(default)]
    pub cloud_front_default_certificate: bool,
    #[serde(default, rename = "IAMCertificateId")]
    pub iam_certificate_id: String,
    #[serde(default, rename = "ACMCertificateArn")]
    pub acm_certificate_arn: String,
    #[serde(default, rename = "SSLSupportMethod")]
    pub ssl_support_method: String,
    #[serde(default)]
    pub minimum_protocol_version: String,
    /// Deprecated duplicates of the members above, still printed by the AWS CLI.
    #[serde(default)]
    pub certificate: String,
    #[serde(default)]
    pub certificate_source: String,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Restrictions {
    pub geo_restriction: GeoRestriction,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GeoRestriction {
    pub restriction_type: String,
    #[serde(default)]
    pub quantity: u32,
    #[serde(default)]
    pub items: Vec<String>,
    #[serde(flatten)]
    pub other: Other,
}
