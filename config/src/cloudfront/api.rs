//! The CloudFront API's side of the one mapping: a DistributionConfig (JSON in the shapes'
//! form, whatever it was read from) becomes a [`Distribution`] through [`map`] and the TOML
//! loader, exactly as `slabfront import` turns it into a file; and back, for distributions
//! of the configuration file, a DistributionConfig that describes them.

use super::map::{map, Options};
use super::shapes::DistributionConfig;
use crate::schema::{Config, KeyPart, OriginProtocol, ViewerProtocolPolicy};
use crate::Distribution;
use serde_json::{json, Value};

/// A DistributionConfig turned into a distribution, with every setting that had no
/// counterpart (accepted, reported, not applied).
#[derive(Debug, Clone)]
pub struct Mapped {
    pub distribution: Distribution,
    pub ignored: Vec<String>,
}

/// Why a DistributionConfig cannot be served: the element (or the configuration key it
/// became) and what is wrong, for CloudFront's `InvalidArgument`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// Maps `dc` (the DistributionConfig as JSON shapes) onto a distribution named `name`.
/// What slabfront cannot do and CloudFront would not ignore is refused.
pub fn distribution_from_json(dc: &Value, name: &str) -> Result<Mapped, Refused> {
    let shapes: DistributionConfig =
        serde_json::from_value(dc.clone()).map_err(|e| Refused(format!("DistributionConfig: {e}")))?;
    let cert = shapes.viewer_certificate.as_ref();
    if let Some(c) = cert.filter(|c| !c.acm_certificate_arn.is_empty() || !c.iam_certificate_id.is_empty()) {
        let which = if c.acm_certificate_arn.is_empty() {
            "IAMCertificateId"
        } else {
            "ACMCertificateArn"
        };
        return Err(Refused(format!(
            "ViewerCertificate.{which}: slabfront cannot fetch certificates from AWS; give the \
             distribution a certificate in the configuration file (ssl_certificate)"
        )));
    }
    if shapes.origins.items.is_empty() {
        return Err(Refused("Origins: at least one origin is required".into()));
    }
    let imported = map(
        &shapes,
        &Options {
            name: Some(name.to_string()),
        },
    );
    let cfg = Config::from_toml_str_schema_only(&imported.toml).map_err(|e| match e {
        crate::ConfigError::Invalid { problems, .. } => Refused(
            problems
                .iter()
                .map(|p| format!("{}: {}", p.key, p.message))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => Refused(other.to_string()),
    })?;
    let Some(mut distribution) = cfg.distributions.into_iter().next() else {
        return Err(Refused("DistributionConfig: no distribution".into()));
    };
    // Standard logs go to S3 in CloudFront; the mapping's file path is the importer's
    // suggestion for a file, not something the API may write to.
    distribution.logging = None;
    let mut ignored = imported.warnings;
    if shapes.logging.as_ref().is_some_and(|l| l.enabled) {
        ignored.push(
            "Logging: standard logs are not delivered to S3 by this version; no log is written \
             for this distribution"
                .into(),
        );
    }
    Ok(Mapped {
        distribution,
        ignored,
    })
}

fn list<T: serde::Serialize>(items: &[T]) -> Value {
    if items.is_empty() {
        json!({ "Quantity": 0 })
    } else {
        json!({ "Quantity": items.len(), "Items": items })
    }
}

fn key_part(p: &KeyPart) -> (bool, Vec<String>) {
    match p {
        KeyPart::None => (false, Vec::new()),
        KeyPart::All => (true, vec!["*".into()]),
        KeyPart::List(l) => (true, l.clone()),
    }
}

fn behavior(b: &crate::schema::CacheBehavior) -> Value {
    let (qs, qs_keys) = key_part(&b.query_strings);
    let (_, headers) = key_part(&b.headers);
    let cookies = match &b.cookies {
        KeyPart::None => json!({ "Forward": "none" }),
        KeyPart::All => json!({ "Forward": "all" }),
        KeyPart::List(l) => json!({ "Forward": "whitelist", "WhitelistedNames": list(l) }),
    };
    let qs_keys = if qs_keys == ["*"] { Vec::new() } else { qs_keys };
    let mut v = json!({
        "TargetOriginId": b.target_origin,
        "ViewerProtocolPolicy": match b.viewer_protocol_policy {
            ViewerProtocolPolicy::AllowAll => "allow-all",
            ViewerProtocolPolicy::RedirectToHttps => "redirect-to-https",
            ViewerProtocolPolicy::HttpsOnly => "https-only",
        },
        "AllowedMethods": {
            "Quantity": b.allowed_methods.len(),
            "Items": b.allowed_methods,
            "CachedMethods": list(&b.cached_methods),
        },
        "ForwardedValues": {
            "QueryString": qs,
            "Cookies": cookies,
            "Headers": list(&headers),
            "QueryStringCacheKeys": list(&qs_keys),
        },
        "MinTTL": b.min_ttl,
        "DefaultTTL": b.default_ttl,
        "MaxTTL": b.max_ttl,
    });
    if !b.path_pattern.is_empty() {
        v["PathPattern"] = json!(b.path_pattern);
    }
    v
}

/// A DistributionConfig describing a distribution of the configuration file, so the API can
/// list and show it (it cannot change it). Directory origins have no CloudFront counterpart:
/// they appear as custom origins whose `DomainName` is `file://` and the directory.
pub fn distribution_to_json(d: &Distribution) -> Value {
    let origins: Vec<Value> = d
        .origins
        .iter()
        .map(|o| {
            let domain = match (&o.domain_name, &o.path, &o.s3_bucket) {
                (Some(d), _, _) => d.clone(),
                (_, Some(p), _) => format!("file://{p}"),
                (_, _, Some(b)) => format!("{b}.s3.{}.amazonaws.com", o.s3_region),
                _ => String::new(),
            };
            json!({
                "Id": o.id,
                "DomainName": domain,
                "OriginPath": "",
                "CustomOriginConfig": {
                    "HTTPPort": o.http_port,
                    "HTTPSPort": o.https_port,
                    "OriginProtocolPolicy": match o.protocol {
                        OriginProtocol::HttpOnly => "http-only",
                        OriginProtocol::HttpsOnly => "https-only",
                        OriginProtocol::MatchViewer => "match-viewer",
                    },
                    "OriginReadTimeout": o.read_timeout.0.as_secs(),
                },
                "ConnectionTimeout": o.connect_timeout.0.as_secs(),
            })
        })
        .collect();
    let behaviors: Vec<Value> = d.behaviors.iter().map(behavior).collect();
    json!({
        "CallerReference": format!("slabfront-config-file:{}", d.name),
        "Aliases": list(&d.aliases),
        "DefaultRootObject": d.default_root_object,
        "Origins": list(&origins),
        "DefaultCacheBehavior": behavior(&d.default_cache_behavior),
        "CacheBehaviors": list(&behaviors),
        "Comment": d.comment,
        "Enabled": d.enabled,
        "PriceClass": "PriceClass_All",
        "HttpVersion": "http1.1",
        "IsIPV6Enabled": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> Value {
        json!({
            "CallerReference": "r1",
            "Aliases": {"Quantity": 1, "Items": ["www.example.com"]},
            "Origins": {"Quantity": 1, "Items": [{"Id": "app", "DomainName": "127.0.0.1",
                "CustomOriginConfig": {"HTTPPort": 8080, "HTTPSPort": 443,
                  "OriginProtocolPolicy": "http-only"}}]},
            "DefaultCacheBehavior": {"TargetOriginId": "app", "ViewerProtocolPolicy": "allow-all",
                "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
            "Comment": "c", "Enabled": true,
            "ViewerCertificate": {"CloudFrontDefaultCertificate": true}
        })
    }

    #[test]
    fn the_api_shares_the_import_mapping() {
        let m = distribution_from_json(&minimal(), "d1.example.net").unwrap();
        let d = &m.distribution;
        assert_eq!(d.name, "d1.example.net");
        assert_eq!(d.aliases, ["www.example.com"]);
        assert_eq!(d.origins[0].http_port, 8080);
        assert_eq!(d.default_cache_behavior.max_ttl, 31_536_000); // CachingOptimized
                                                                  // Accepted and reported: the *.cloudfront.net certificate.
        assert!(m
            .ignored
            .iter()
            .any(|w| w.contains("CloudFrontDefaultCertificate")));
        // And back, for the file's distributions: the same mapping reads it again.
        let again = distribution_from_json(&distribution_to_json(d), "d1.example.net").unwrap();
        assert_eq!(
            again.distribution.origins[0].domain_name,
            d.origins[0].domain_name
        );
        assert_eq!(again.distribution.default_cache_behavior.max_ttl, 31_536_000);
    }

    #[test]
    fn what_cannot_be_served_is_refused_naming_the_element() {
        let mut v = minimal();
        v["DefaultCacheBehavior"]["TargetOriginId"] = json!("nope");
        let e = distribution_from_json(&v, "d1.example.net").unwrap_err();
        assert!(e.0.contains("target_origin"), "{e:?}");
        let mut v = minimal();
        v["ViewerCertificate"] = json!({"ACMCertificateArn": "arn:aws:acm:us-east-1:1:certificate/x"});
        let e = distribution_from_json(&v, "d1.example.net").unwrap_err();
        assert!(e.0.contains("ACMCertificateArn"), "{e:?}");
        let mut v = minimal();
        v.as_object_mut().unwrap().remove("Origins");
        let e = distribution_from_json(&v, "d1.example.net").unwrap_err();
        assert!(e.0.contains("Origins"), "{e:?}");
    }
}
