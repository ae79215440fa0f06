//! The one mapping from CloudFront's DistributionConfig shapes to slabfront's configuration,
//! written as TOML with a comment wherever a setting has no counterpart.

use super::out::{string, strings, Out};
use super::policies::{managed_cache_policy, Part, MANAGED_ORIGIN_REQUEST_POLICIES};
use super::shapes::{self as cf, DistributionConfig, Other};
use crate::distribution::{SecurityPolicy, LEGACY_SECURITY_POLICIES};

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The distribution's name (its primary domain); default: the first alias.
    pub name: Option<String>,
}

/// An imported configuration: TOML text, and one warning per setting that became a comment.
#[derive(Debug, Clone)]
pub struct Imported {
    pub toml: String,
    pub warnings: Vec<String>,
}

/// Where a distribution's placeholder files go.
const ETC: &str = "/etc/slabfront";
const LOGS: &str = "/var/log/slabfront";

pub fn map(dc: &DistributionConfig, opts: &Options) -> Imported {
    let mut out = Out::default();
    let aliases = &dc.aliases.items;
    let name = match (&opts.name, aliases.first()) {
        (Some(n), _) => n.clone(),
        (None, Some(a)) if !a.starts_with("*.") => a.clone(),
        _ => {
            out.warnings.push(
                "Aliases: no alternate domain name to name the distribution by; it is named \
                 \"distribution.invalid\" (rename it, or import with --name)"
                    .into(),
            );
            "distribution.invalid".into()
        }
    };
    let cert = dc.viewer_certificate.as_ref();
    let own_cert =
        cert.is_some_and(|c| !c.acm_certificate_arn.is_empty() || !c.iam_certificate_id.is_empty());

    out.comment("Imported from a CloudFront DistributionConfig by `slabfront import`.");
    if !dc.caller_reference.is_empty() {
        out.comment(&format!("CallerReference: {}", dc.caller_reference));
    }
    out.comment("Check it with: slabfront check --config THIS_FILE");
    out.blank();
    out.line("[server]");
    out.kv("listen", strings(&["0.0.0.0:80"]));
    if own_cert {
        out.kv("listen_tls", strings(&["0.0.0.0:443"]));
    }
    if dc.is_ipv6_enabled == Some(true) {
        out.unmapped(
            "IsIPV6Enabled",
            "IsIPV6Enabled = true",
            "slabfront listens on the addresses given; add \"[::]:80\" (and \"[::]:443\") to listen for IPv6",
        );
    }
    out.blank();

    out.line("[[distributions]]");
    out.kv("name", string(&name));
    let rest: Vec<&String> = aliases.iter().filter(|a| **a != name).collect();
    if !rest.is_empty() {
        out.kv("aliases", strings(&rest));
    }
    out.kv("enabled", dc.enabled);
    if !dc.comment.is_empty() {
        out.kv("comment", string(&dc.comment));
    }
    out.kv("default_root_object", string(&dc.default_root_object));
    if let Some(p) = &dc.price_class {
        out.kv("price_class", string(p));
    }
    viewer_certificate(&mut out, cert, &name);
    logging(&mut out, dc.logging.as_ref(), &name);
    distribution_unmapped(&mut out, dc);

    for (i, o) in dc.origins.items.iter().enumerate() {
        out.blank();
        origin(&mut out, &format!("Origins[{i}]"), o);
    }
    origin_groups(&mut out, &dc.origin_groups.items);
    out.blank();
    out.line("[distributions.default_cache_behavior]");
    behavior(&mut out, "DefaultCacheBehavior", &dc.default_cache_behavior);
    for (i, b) in dc.cache_behaviors.items.iter().enumerate() {
        out.blank();
        out.line("[[distributions.behaviors]]");
        behavior(&mut out, &format!("CacheBehaviors[{i}]"), b);
    }
    for e in &dc.custom_error_responses.items {
        out.blank();
        error_response(&mut out, e);
    }
    key_groups(&mut out, dc);
    geo_database(&mut out, dc);
    Imported {
        toml: out.text,
        warnings: out.warnings,
    }
}

fn viewer_certificate(out: &mut Out, cert: Option<&cf::ViewerCertificate>, name: &str) {
    let Some(c) = cert else { return };
    let from = "ViewerCertificate";
    if c.cloud_front_default_certificate {
        out.unmapped(
            &format!("{from}.CloudFrontDefaultCertificate"),
            "CloudFrontDefaultCertificate = true",
            "the *.cloudfront.net certificate is CloudFront's own; HTTPS needs a certificate of \
             yours (ssl_certificate) and [server] listen_tls",
        );
    }
    let source = if !c.acm_certificate_arn.is_empty() {
        Some(format!("ACM certificate {}", c.acm_certificate_arn))
    } else if !c.iam_certificate_id.is_empty() {
        Some(format!("IAM certificate {}", c.iam_certificate_id))
    } else {
        None
    };
    if let Some(source) = source {
        out.comment(&format!(
            "The {source}: put its PEM chain and key at these paths."
        ));
        out.kv(
            "ssl_certificate",
            format!(
                "{{ cert = {}, key = {} }}",
                string(&format!("{ETC}/tls/{name}.pem")),
                string(&format!("{ETC}/tls/{name}.key"))
            ),
        );
        out.warnings.push(format!(
            "{from}: the {source} cannot be exported by this tool; ssl_certificate points at \
             {ETC}/tls/{name}.pem and .key, which must be provided"
        ));
    }
    match c.ssl_support_method.as_str() {
        "" | "sni-only" => {}
        m => out.unmapped(
            &format!("{from}.SSLSupportMethod"),
            &format!("SSLSupportMethod = {}", string(m)),
            "dedicated addresses: set ssl_support_method = \"vip\" with listen/listen_tls \
             addresses of this distribution's own",
        ),
    }
    let v = c.minimum_protocol_version.as_str();
    if v.is_empty() {
        return;
    }
    if SecurityPolicy::parse(v).is_ok() {
        out.kv("ssl_minimum_protocol_version", string(v));
    } else if LEGACY_SECURITY_POLICIES.contains(&v) {
        out.kv("ssl_minimum_protocol_version", string("TLSv1.2_2021"));
        out.unmapped(
            &format!("{from}.MinimumProtocolVersion"),
            &format!("MinimumProtocolVersion = {}", string(v)),
            "slabfront speaks TLS 1.2 and 1.3 only, so TLSv1.2_2021 is used",
        );
    } else {
        out.unmapped(
            &format!("{from}.MinimumProtocolVersion"),
            &format!("MinimumProtocolVersion = {}", string(v)),
            "an unknown security policy",
        );
    }
}

fn logging(out: &mut Out, l: Option<&cf::Logging>, name: &str) {
    let Some(l) = l.filter(|l| l.enabled) else { return };
    out.comment(&format!(
        "CloudFront wrote these logs to s3://{}/{} ; slabfront writes the same format to a file.",
        l.bucket.trim_end_matches(".s3.amazonaws.com"),
        l.prefix
    ));
    out.kv(
        "logging",
        format!(
            "{{ path = {}, include_cookies = {} }}",
            string(&format!("{LOGS}/{name}.log")),
            l.include_cookies
        ),
    );
}

/// The key groups behaviors trust: their ids are in the DistributionConfig, their public keys
/// are not (they are resources of their own), so each gets a placeholder key to replace.
fn key_groups(out: &mut Out, dc: &DistributionConfig) {
    let mut ids: Vec<&String> = Vec::new();
    for b in std::iter::once(&dc.default_cache_behavior).chain(dc.cache_behaviors.items.iter()) {
        for id in b
            .trusted_key_groups
            .iter()
            .filter(|t| t.enabled)
            .flat_map(|t| &t.items)
        {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    for id in ids {
        out.blank();
        out.comment(&format!(
            "Key group {id}: its public keys are not in the DistributionConfig. Replace the\n\
             placeholder with each key's id (aws cloudfront get-key-group --id {id}) and PEM\n\
             (aws cloudfront get-public-key --id KEY_ID)."
        ));
        out.line("[[key_groups]]");
        out.kv("id", string(id));
        out.line("[[key_groups.public_keys]]");
        out.kv("id", string("REPLACE-WITH-PUBLIC-KEY-ID"));
        out.kv("pem_file", string(&format!("{ETC}/key-groups/{id}.pem")));
        out.warnings.push(format!(
            "TrustedKeyGroups: key group {id}'s public keys must be configured in [[key_groups]] \
             (the DistributionConfig names the group only); a placeholder is written"
        ));
    }
}

/// `Restrictions.GeoRestriction` as `geo_restriction`, CloudFront's names kept.
fn geo_restriction(out: &mut Out, r: &cf::GeoRestriction) {
    match r.restriction_type.as_str() {
        t @ ("whitelist" | "blacklist") => out.kv(
            "geo_restriction",
            format!(
                "{{ restriction_type = {}, locations = {} }}",
                string(t),
                strings(&r.items)
            ),
        ),
        "none" | "" => {}
        t => out.unmapped(
            "Restrictions.GeoRestriction.RestrictionType",
            &format!("RestrictionType = {}", string(t)),
            "an unknown restriction type (whitelist, blacklist or none)",
        ),
    }
    other(out, "Restrictions.GeoRestriction", &r.other);
}

/// The country database a geo restriction needs: CloudFront has its own; here it is a file.
fn geo_database(out: &mut Out, dc: &DistributionConfig) {
    let restricted = dc.restrictions.as_ref().is_some_and(|r| {
        matches!(
            r.geo_restriction.restriction_type.as_str(),
            "whitelist" | "blacklist"
        )
    });
    if !restricted {
        return;
    }
    let path = format!("{ETC}/GeoLite2-Country.mmdb");
    out.blank();
    out.unmapped(
        "Restrictions.GeoRestriction",
        "CloudFront's own country database",
        &format!("geo restriction reads a MaxMind-format country database, to be provided at {path}"),
    );
    out.line("[geo]");
    out.kv("database", string(&path));
}

fn distribution_unmapped(out: &mut Out, dc: &DistributionConfig) {
    if !dc.web_acl_id.is_empty() {
        out.unmapped(
            "WebACLId",
            &format!("WebACLId = {}", string(&dc.web_acl_id)),
            "AWS WAF web ACLs are not imported: rules are configured in slabfront's own keys",
        );
    }
    if let Some(r) = dc.restrictions.as_ref().map(|r| &r.geo_restriction) {
        geo_restriction(out, r);
    }
    if let Some(v) = dc.http_version.as_deref().filter(|v| *v != "http1.1") {
        out.unmapped(
            "HttpVersion",
            &format!("HttpVersion = {}", string(v)),
            "slabfront serves HTTP/1.1 to viewers",
        );
    }
    if !dc.continuous_deployment_policy_id.is_empty() || dc.staging {
        out.unmapped(
            "ContinuousDeploymentPolicyId",
            &format!(
                "ContinuousDeploymentPolicyId = {}, Staging = {}",
                string(&dc.continuous_deployment_policy_id),
                dc.staging
            ),
            "continuous deployment (staging distributions) has no counterpart in slabfront",
        );
    }
    other(out, "DistributionConfig", &dc.other);
}

/// Members the shapes do not know: named, never dropped silently.
fn other(out: &mut Out, from: &str, other: &Other) {
    for key in other.keys() {
        out.unmapped(
            &format!("{from}.{key}"),
            key,
            "a setting this import does not know",
        );
    }
}

/// `<bucket>.s3.amazonaws.com`, `<bucket>.s3.<region>.amazonaws.com`,
/// `<bucket>.s3-<region>.amazonaws.com`: the bucket and region.
fn s3_bucket_region(domain: &str) -> Option<(String, String)> {
    let host = domain.strip_suffix(".amazonaws.com")?;
    for marker in [".s3.", ".s3-"] {
        if let Some(at) = host.rfind(marker) {
            let bucket = &host[..at];
            let region = &host[at + marker.len()..];
            if region.starts_with("website") {
                return None;
            }
            let region = if region.is_empty() { "us-east-1" } else { region };
            return Some((bucket.to_string(), region.to_string()));
        }
    }
    host.strip_suffix(".s3")
        .map(|bucket| (bucket.to_string(), "us-east-1".to_string()))
}

fn origin(out: &mut Out, from: &str, o: &cf::Origin) {
    out.line("[[distributions.origins]]");
    out.kv("id", string(&o.id));
    let from = format!("{from} ({})", o.id);
    let mut read_timeout = None;
    let bucket = o
        .s3_origin_config
        .as_ref()
        .and_then(|_| s3_bucket_region(&o.domain_name));
    match &bucket {
        Some((bucket, region)) => {
            let signed = !o.origin_access_control_id.is_empty()
                || o.s3_origin_config
                    .as_ref()
                    .is_some_and(|s3| !s3.origin_access_identity.is_empty());
            out.kv("s3_bucket", string(bucket));
            out.kv("s3_region", string(region));
            if signed {
                out.comment(
                    "A private bucket (origin access control or identity): every request is \
                     SigV4-signed with the credentials of the environment, ~/.aws/credentials or \
                     credentials_file.",
                );
            }
            out.kv(
                "signing_behavior",
                string(if signed { "always" } else { "never" }),
            );
        }
        None => out.kv("domain_name", string(&o.domain_name)),
    }
    if let Some(s3) = &o.s3_origin_config {
        if bucket.is_none() {
            out.kv("protocol", string("https-only"));
        }
        read_timeout = s3.origin_read_timeout;
        other(out, &format!("{from}.S3OriginConfig"), &s3.other);
    }
    if let Some(c) = &o.custom_origin_config {
        out.kv("http_port", c.http_port);
        out.kv("https_port", c.https_port);
        match c.origin_protocol_policy.as_str() {
            p @ ("http-only" | "https-only" | "match-viewer") => out.kv("protocol", string(p)),
            p => out.unmapped(
                &format!("{from}.OriginProtocolPolicy"),
                &format!("OriginProtocolPolicy = {}", string(p)),
                "an unknown origin protocol policy (https-only is used)",
            ),
        }
        read_timeout = c.origin_read_timeout;
        if let Some(k) = c.origin_keepalive_timeout {
            out.kv("origin_keepalive_timeout", string(&format!("{k}s")));
        }
        let (kept, old): (Vec<&String>, Vec<&String>) =
            c.origin_ssl_protocols.items.iter().partition(|p| *p == "TLSv1.2");
        if !old.is_empty() {
            out.unmapped(
                &format!("{from}.OriginSslProtocols"),
                &format!("OriginSslProtocols = {}", strings(&old)),
                "slabfront speaks TLS 1.2 and 1.3 to origins, nothing older",
            );
        }
        if !kept.is_empty() {
            out.kv("ssl_protocols", strings(&kept));
        }
        other(out, &format!("{from}.CustomOriginConfig"), &c.other);
    }
    if let Some(t) = o.connection_timeout {
        out.kv("connect_timeout", string(&format!("{t}s")));
    }
    if let Some(t) = read_timeout {
        out.kv("read_timeout", string(&format!("{t}s")));
    }
    origin_unmapped(out, &from, o);
}

fn origin_unmapped(out: &mut Out, from: &str, o: &cf::Origin) {
    if !o.origin_path.is_empty() {
        out.kv("origin_path", string(&o.origin_path));
    }
    if !o.custom_headers.items.is_empty() {
        let pairs: Vec<String> = o
            .custom_headers
            .items
            .iter()
            .map(|h| format!("{} = {}", string(&h.header_name), string(&h.header_value)))
            .collect();
        out.kv("custom_headers", format!("{{ {} }}", pairs.join(", ")));
    }
    if let Some(n) = o.connection_attempts {
        out.kv("connection_attempts", n);
    }
    if let Some(s) = o.origin_shield.as_ref().filter(|s| s.enabled) {
        out.unmapped(
            &format!("{from}.OriginShield"),
            &format!("OriginShield = {}", string(&s.origin_shield_region)),
            "Origin Shield (a regional cache tier) has no counterpart on one box",
        );
    }
    if let Some(v) = &o.vpc_origin_config {
        out.unmapped(
            &format!("{from}.VpcOriginConfig"),
            &format!("VpcOriginId = {}", string(&v.vpc_origin_id)),
            "VPC origins have no counterpart; domain_name must be reachable from this machine",
        );
    }
    other(out, from, &o.other);
}

fn origin_groups(out: &mut Out, groups: &[cf::OriginGroup]) {
    for g in groups {
        let members: Vec<&str> = g.members.items.iter().map(|m| m.origin_id.as_str()).collect();
        out.blank();
        out.line("[[distributions.origin_groups]]");
        out.kv("id", string(&g.id));
        out.kv("members", strings(&members));
        let codes: Vec<String> = g
            .failover_criteria
            .status_codes
            .items
            .iter()
            .map(u16::to_string)
            .collect();
        out.kv("failover_status_codes", format!("[{}]", codes.join(", ")));
    }
}

fn behavior(out: &mut Out, from: &str, b: &cf::CacheBehavior) {
    if !b.path_pattern.is_empty() {
        out.kv("path_pattern", string(&b.path_pattern));
    }
    // An origin group's id is a target like an origin's.
    out.kv("target_origin", string(&b.target_origin_id));
    out.kv("viewer_protocol_policy", string(&b.viewer_protocol_policy));
    if let Some(m) = &b.allowed_methods {
        out.kv("allowed_methods", strings(&m.items));
        if !m.cached_methods.items.is_empty() {
            out.kv("cached_methods", strings(&m.cached_methods.items));
        }
    }
    if b.compress {
        out.kv("compress", "true");
    }
    cache_key(out, from, b);
    behavior_unmapped(out, from, b);
}

fn part(p: Part) -> String {
    match p {
        Part::None => string("none"),
        Part::All => string("all"),
        Part::List(l) => strings(l),
    }
}

/// TTLs and the cache key: a managed cache policy, else the legacy ForwardedValues.
fn cache_key(out: &mut Out, from: &str, b: &cf::CacheBehavior) {
    if !b.cache_policy_id.is_empty() {
        match managed_cache_policy(&b.cache_policy_id) {
            Some(p) => {
                out.comment(&format!("The managed cache policy {} ({}).", p.name, p.id));
                out.kv("min_ttl", p.min_ttl);
                out.kv("default_ttl", p.default_ttl);
                out.kv("max_ttl", p.max_ttl);
                out.kv("query_strings", part(p.query_strings));
                out.kv("headers", part(p.headers));
                out.kv("cookies", part(p.cookies));
            }
            None => out.unmapped(
                &format!("{from}.CachePolicyId"),
                &format!("CachePolicyId = {}", string(&b.cache_policy_id)),
                "a custom cache policy, whose settings are not in the DistributionConfig (see \
                 `aws cloudfront get-cache-policy`); CloudFront's default TTLs and an empty key \
                 are used until they are written here",
            ),
        }
        return;
    }
    let Some(f) = &b.forwarded_values else {
        out.warnings.push(format!(
            "{from}: neither CachePolicyId nor ForwardedValues; CloudFront's default TTLs are used"
        ));
        return;
    };
    out.comment("Legacy cache settings (ForwardedValues and TTLs).");
    for (key, v) in [
        ("min_ttl", b.min_ttl),
        ("default_ttl", b.default_ttl),
        ("max_ttl", b.max_ttl),
    ] {
        if let Some(v) = v {
            out.kv(key, v);
        }
    }
    let qs = match (f.query_string, f.query_string_cache_keys.items.as_slice()) {
        (false, _) => string("none"),
        (true, []) => string("all"),
        (true, keys) => strings(keys),
    };
    out.kv("query_strings", qs);
    let headers = match f.headers.items.as_slice() {
        [] => string("none"),
        h if h.iter().any(|h| h == "*") => string("all"),
        h => strings(h),
    };
    out.kv("headers", headers);
    let cookies = match f.cookies.forward.as_str() {
        "all" => string("all"),
        "whitelist" => strings(&f.cookies.whitelisted_names.items),
        _ => string("none"),
    };
    out.kv("cookies", cookies);
}

fn behavior_unmapped(out: &mut Out, from: &str, b: &cf::CacheBehavior) {
    if !b.origin_request_policy_id.is_empty() {
        let name = MANAGED_ORIGIN_REQUEST_POLICIES
            .iter()
            .find(|(id, _)| *id == b.origin_request_policy_id)
            .map_or("a custom policy", |(_, n)| n);
        out.unmapped(
            &format!("{from}.OriginRequestPolicyId"),
            &format!(
                "OriginRequestPolicyId = {} ({name})",
                string(&b.origin_request_policy_id)
            ),
            "slabfront forwards to the origin exactly what is in the cache key",
        );
    }
    if !b.response_headers_policy_id.is_empty() {
        match crate::MANAGED_POLICIES
            .iter()
            .find(|(_, id)| *id == b.response_headers_policy_id)
        {
            Some((name, _)) => out.kv("response_headers_policy", string(name)),
            None => out.unmapped(
                &format!("{from}.ResponseHeadersPolicyId"),
                &format!(
                    "ResponseHeadersPolicyId = {}",
                    string(&b.response_headers_policy_id)
                ),
                "a custom response headers policy's settings are not in the DistributionConfig: \
                 define it in [[response_headers_policies]] and name it with response_headers_policy",
            ),
        }
    }
    for l in &b.lambda_function_associations.items {
        out.unmapped(
            &format!("{from}.LambdaFunctionAssociations"),
            &format!("{} = {}", l.event_type, string(&l.lambda_function_arn)),
            "Lambda@Edge has no counterpart in slabfront",
        );
    }
    for f in &b.function_associations.items {
        out.unmapped(
            &format!("{from}.FunctionAssociations"),
            &format!("{} = {}", f.event_type, string(&f.function_arn)),
            "CloudFront Functions are not imported (their code is not in the DistributionConfig)",
        );
    }
    if let Some(t) = b.trusted_signers.as_ref().filter(|t| t.enabled) {
        out.unmapped(
            &format!("{from}.TrustedSigners"),
            &format!("TrustedSigners = {}", strings(&t.items)),
            "CloudFront key pairs of AWS accounts are not supported; sign with a key group \
             (trusted_key_groups)",
        );
    }
    if let Some(t) = b.trusted_key_groups.as_ref().filter(|t| t.enabled) {
        out.kv("trusted_key_groups", strings(&t.items));
    }
    if !b.field_level_encryption_id.is_empty() {
        out.unmapped(
            &format!("{from}.FieldLevelEncryptionId"),
            &format!(
                "FieldLevelEncryptionId = {}",
                string(&b.field_level_encryption_id)
            ),
            "field-level encryption has no counterpart in slabfront",
        );
    }
    if !b.realtime_log_config_arn.is_empty() {
        out.unmapped(
            &format!("{from}.RealtimeLogConfigArn"),
            &format!("RealtimeLogConfigArn = {}", string(&b.realtime_log_config_arn)),
            "real-time logs (Kinesis) have no counterpart; the access log is written",
        );
    }
    if b.smooth_streaming {
        out.unmapped(
            &format!("{from}.SmoothStreaming"),
            "SmoothStreaming = true",
            "Microsoft Smooth Streaming has no counterpart",
        );
    }
    if b.grpc_config.as_ref().is_some_and(|g| g.enabled) {
        out.unmapped(
            &format!("{from}.GrpcConfig"),
            "GrpcConfig = true",
            "gRPC is not proxied",
        );
    }
    if b.cache_policy_id.is_empty() {
        // TTLs belong to ForwardedValues then; with a cache policy they are ignored by CloudFront.
    } else if b.min_ttl.is_some() || b.default_ttl.is_some() || b.max_ttl.is_some() {
        out.comment("MinTTL/DefaultTTL/MaxTTL beside a cache policy are ignored, as by CloudFront.");
    }
    other(out, from, &b.other);
}

fn error_response(out: &mut Out, e: &cf::CustomErrorResponse) {
    out.line("[[distributions.error_responses]]");
    out.kv("error_code", e.error_code);
    if !e.response_page_path.is_empty() {
        out.kv("response_page_path", string(&e.response_page_path));
    }
    match e.response_code.trim() {
        "" => {}
        c => match c.parse::<u16>() {
            Ok(c) => out.kv("response_code", c),
            Err(_) => out.unmapped(
                &format!("CustomErrorResponses ({})", e.error_code),
                &format!("ResponseCode = {}", string(c)),
                "not a status code",
            ),
        },
    }
    if let Some(t) = e.error_caching_min_ttl {
        out.kv("error_caching_min_ttl", t);
    }
}
