//! Verifies AWS Signature Version 4 on CloudFront API requests: the signature is computed
//! again, with `aws-sigv4`, from the request's canonical form and the key's secret, and
//! compared in constant time. Service `cloudfront`, region `us-east-1` (CloudFront's global
//! endpoint).

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use std::time::{Duration, SystemTime};
use subtle::ConstantTimeEq;

const SERVICE: &str = "cloudfront";
const REGION: &str = "us-east-1";
/// The clock skew AWS allows.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// Why a request is not authenticated, as CloudFront's error codes say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization`, or not a SigV4 one: `MissingAuthenticationToken`-like; CloudFront
    /// answers `AccessDenied`.
    Missing,
    /// A SigV4 header that cannot be read (`IncompleteSignature`).
    Malformed(String),
    /// The key id is not one of `[[admin.access_keys]]`.
    UnknownKey,
    /// `X-Amz-Date` is more than 15 minutes off.
    Skewed,
    /// The signature is not the one the secret gives.
    Mismatch,
}

impl Refusal {
    /// CloudFront's error code and HTTP status.
    pub fn code(&self) -> (&'static str, u16) {
        match self {
            Refusal::Missing => ("AccessDenied", 403),
            Refusal::Malformed(_) => ("IncompleteSignature", 400),
            Refusal::UnknownKey => ("InvalidClientTokenId", 403),
            Refusal::Skewed => ("RequestTimeTooSkewed", 403),
            Refusal::Mismatch => ("SignatureDoesNotMatch", 403),
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::Missing => "a request must be signed with AWS Signature Version 4".into(),
            Refusal::Malformed(m) => m.clone(),
            Refusal::UnknownKey => "The security token included in the request is invalid.".into(),
            Refusal::Skewed => "Signature expired: the request time is more than 15 minutes \
                                from the server's time."
                .into(),
            Refusal::Mismatch => "The request signature we calculated does not match the \
                                  signature you provided. Check your AWS Secret Access Key and \
                                  signing method."
                .into(),
        }
    }
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
struct Parsed<'a> {
    key_id: &'a str,
    scope_date: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Parsed<'_>, Refusal> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ").ok_or(Refusal::Missing)?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let malformed = |m: &str| Refusal::Malformed(format!("Authorization header: {m}"));
    let credential = credential.ok_or_else(|| malformed("no Credential"))?;
    let signed = signed.ok_or_else(|| malformed("no SignedHeaders"))?;
    let signature = signature.ok_or_else(|| malformed("no Signature"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(malformed(
            "Credential is not KEY/DATE/REGION/SERVICE/aws4_request",
        ));
    };
    if *region != REGION || *service != SERVICE {
        return Err(Refusal::Malformed(format!(
            "Credential should be scoped to a valid region and service ({REGION}/{SERVICE}), \
             not {region}/{service}"
        )));
    }
    Ok(Parsed {
        key_id,
        scope_date: date,
        signed_headers: signed.split(';').collect(),
        signature,
    })
}

fn parse_amz_date(v: &str) -> Option<SystemTime> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(v, &fmt).ok()?.assume_utc();
    let secs = u64::try_from(t.unix_timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// A request to verify: method, target (path and query as sent), headers, body.
pub struct Request<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Request<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Checks the request's signature against `keys` (`(id, secret)`); the key id on success.
pub fn verify(keys: &[(String, String)], req: &Request<'_>, now: SystemTime) -> Result<String, Refusal> {
    let auth = req.header("authorization").ok_or(Refusal::Missing)?;
    let p = parse_authorization(auth)?;
    let Some((id, secret)) = keys.iter().find(|(id, _)| id == p.key_id) else {
        return Err(Refusal::UnknownKey);
    };
    let date = req
        .header("x-amz-date")
        .ok_or_else(|| Refusal::Malformed("X-Amz-Date is required".into()))?;
    let time = parse_amz_date(date)
        .ok_or_else(|| Refusal::Malformed(format!("X-Amz-Date {date:?} is not YYYYMMDDTHHMMSSZ")))?;
    if !date.starts_with(p.scope_date) {
        return Err(Refusal::Malformed(
            "the Credential's date is not X-Amz-Date's".into(),
        ));
    }
    let skew = now.duration_since(time).unwrap_or_else(|e| e.duration());
    if skew > MAX_SKEW {
        return Err(Refusal::Skewed);
    }
    if !p.signed_headers.contains(&"host") {
        return Err(Refusal::Malformed("SignedHeaders must include host".into()));
    }
    // Exactly the headers the client signed (x-amz-date is added by the signer).
    let mut signed: Vec<(&str, &str)> = Vec::with_capacity(p.signed_headers.len());
    for name in &p.signed_headers {
        if *name == "x-amz-date" {
            continue;
        }
        let values: Vec<&str> = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        if values.is_empty() {
            return Err(Refusal::Malformed(format!(
                "the signed header {name} is not in the request"
            )));
        }
        for v in values {
            signed.push((name, v));
        }
    }
    let expected = signature(id, secret, req, &signed, time).map_err(Refusal::Malformed)?;
    if bool::from(expected.as_bytes().ct_eq(p.signature.as_bytes())) {
        Ok(id.clone())
    } else {
        Err(Refusal::Mismatch)
    }
}

fn signature(
    id: &str,
    secret: &str,
    req: &Request<'_>,
    signed: &[(&str, &str)],
    time: SystemTime,
) -> Result<String, String> {
    let identity = aws_credential_types::Credentials::new(id, secret, None, None, "slabfront-admin").into();
    let mut settings = SigningSettings::default();
    // The client chose what to sign; every header it listed is given, nothing else.
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name(SERVICE)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = SignableRequest::new(
        req.method,
        req.target,
        signed.iter().copied(),
        SignableBody::Bytes(req.body),
    )
    .map_err(|e| format!("cannot canonicalize the request: {e}"))?;
    let out = sign(signable, &params).map_err(|e| format!("cannot canonicalize the request: {e}"))?;
    Ok(out.signature().to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Signs as a client would, with the same crate (the tests with boto3 and the AWS CLI
    /// check the real clients).
    fn signed(secret: &str, time: SystemTime, body: &[u8]) -> Vec<(String, String)> {
        let mut headers = vec![
            ("Host".to_string(), "127.0.0.1:9901".to_string()),
            ("Content-Type".to_string(), "text/xml".to_string()),
        ];
        let identity = aws_credential_types::Credentials::new("AKID", secret, None, None, "t").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name(SERVICE)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let req = SignableRequest::new(
            "POST",
            "/2020-05-31/distribution",
            headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(req, &params).unwrap().into_parts();
        let (add, _) = instructions.into_parts();
        for h in add {
            headers.push((h.name().to_string(), h.value().to_string()));
        }
        headers
    }

    #[test]
    fn good_bad_unknown_and_skewed() {
        let keys = vec![("AKID".to_string(), "secret".to_string())];
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let body = b"<DistributionConfig/>";
        let req = |h: &'static [(String, String)], b: &'static [u8]| Request {
            method: "POST",
            target: "/2020-05-31/distribution",
            headers: h,
            body: b,
        };
        let good: &'static [(String, String)] = Box::leak(signed("secret", now, body).into_boxed_slice());
        assert_eq!(verify(&keys, &req(good, body), now).unwrap(), "AKID");
        // A changed body, a wrong secret, a key nobody configured, an old request.
        assert_eq!(verify(&keys, &req(good, b"<x/>"), now), Err(Refusal::Mismatch));
        let wrong: &'static [(String, String)] = Box::leak(signed("other", now, body).into_boxed_slice());
        assert_eq!(verify(&keys, &req(wrong, body), now), Err(Refusal::Mismatch));
        let other = vec![("AKID2".to_string(), "secret".to_string())];
        assert_eq!(verify(&other, &req(good, body), now), Err(Refusal::UnknownKey));
        let later = now + Duration::from_secs(16 * 60);
        assert_eq!(verify(&keys, &req(good, body), later), Err(Refusal::Skewed));
        assert_eq!(verify(&keys, &req(&[], body), now), Err(Refusal::Missing));
    }
}
