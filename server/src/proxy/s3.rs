//! S3 origins: credentials, SigV4 signing with the AWS SDK's signer (`aws-sigv4`), the
//! object path as S3 canonicalises it, and S3's XML error documents.
//!
//! Credentials come from, in order: the origin's `credentials_file` (with
//! `credentials_profile`, else `AWS_PROFILE`, else `default`); the environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`); the shared credentials
//! file (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`) with the same profile. An
//! origin's own file comes first because it is the most specific: two buckets behind one
//! distribution may need two identities, the environment holds one. The configuration is read
//! again on SIGHUP (each worker's clients are rebuilt), and a credentials file is checked for
//! changes at most once a second, so rotated keys are used without a reload.
//!
//! Secrets never leave this module except inside the `Authorization` header sent to the
//! origin: no `Debug`, no logging of values, nothing in metrics or error pages. Log lines name
//! the origin and the file, never a key.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// How often a credentials file is checked for a change.
const RECHECK: Duration = Duration::from_secs(1);

/// S3's canonical URI encoding: everything but RFC 3986's unreserved characters and `/`.
const S3_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Where an origin's credentials come from.
#[derive(Clone)]
enum Source {
    File { path: PathBuf, profile: String },
    Env,
    None,
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::File { path, profile } => format!("{} [{profile}]", path.display()),
            Source::Env => "environment".into(),
            Source::None => "nowhere".into(),
        }
    }
}

/// A file's identity and version: inode, length, modification time.
type Stamp = (u64, u64, Option<SystemTime>);

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.len(), m.modified().ok()))
}

/// One worker's signer for one S3 origin: credentials (re-read when their file changes), the
/// region, and the signing settings S3 wants.
pub struct Signer {
    origin: String,
    region: String,
    source: Source,
    creds: RefCell<Option<Credentials>>,
    checked: Cell<Instant>,
    seen: Cell<Option<Stamp>>,
    settings: SigningSettings,
}

/// Why an S3 origin request could not be signed.
#[derive(Debug, thiserror::Error)]
#[error("no credentials for S3 origin {origin} (looked in {looked})")]
pub struct NoCredentials {
    pub origin: String,
    pub looked: String,
}

impl Signer {
    /// Finds the credentials as the module docs say; `Err` names the places looked in.
    pub fn new(o: &config::Origin) -> Result<Signer, NoCredentials> {
        let profile = o
            .credentials_profile
            .clone()
            .or_else(|| std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()))
            .unwrap_or_else(|| "default".into());
        let env = || {
            std::env::var("AWS_ACCESS_KEY_ID").is_ok_and(|v| !v.is_empty())
                && std::env::var("AWS_SECRET_ACCESS_KEY").is_ok_and(|v| !v.is_empty())
        };
        let shared = || {
            std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")))
        };
        let source = match (&o.credentials_file, shared()) {
            (Some(f), _) => Source::File {
                path: f.into(),
                profile,
            },
            _ if env() => Source::Env,
            (None, Some(path)) if path.exists() => Source::File { path, profile },
            _ => Source::None,
        };
        let mut settings = SigningSettings::default();
        // S3 signs the path as sent (no double encoding, no normalisation) and wants the
        // payload hash header; bodies are not hashed (UNSIGNED-PAYLOAD), so a streamed body
        // need not be read twice.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let s = Signer {
            origin: o.id.clone(),
            region: o.s3_region.clone(),
            source,
            creds: RefCell::new(None),
            checked: Cell::new(Instant::now()),
            seen: Cell::new(None),
            settings,
        };
        s.load().map_err(|looked| NoCredentials {
            origin: o.id.clone(),
            looked,
        })?;
        Ok(s)
    }

    /// (Re)reads the credentials; `Err` describes where they were looked for.
    fn load(&self) -> Result<(), String> {
        let found = match &self.source {
            Source::Env => {
                let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
                match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
                    (Some(a), Some(s)) => Some(Credentials::new(a, s, var("AWS_SESSION_TOKEN"), None, "env")),
                    _ => None,
                }
            }
            Source::File { path, profile } => {
                self.seen.set(stamp(path));
                read_profile(path, profile)?
            }
            Source::None => None,
        };
        match found {
            Some(c) => {
                *self.creds.borrow_mut() = Some(c);
                Ok(())
            }
            None => Err(self.source.describe()),
        }
    }

    /// Re-reads a credentials file that changed since it was last read (checked at most once
    /// per [`RECHECK`]). A file that became unreadable or lost its keys leaves the old ones in
    /// use, with an error logged.
    fn refresh(&self) {
        let Source::File { path, .. } = &self.source else {
            return;
        };
        if self.checked.get().elapsed() < RECHECK {
            return;
        }
        self.checked.set(Instant::now());
        let now = stamp(path);
        if now.is_none() || now == self.seen.get() {
            return;
        }
        match self.load() {
            Ok(()) => tracing::info!(origin = %self.origin, file = %path.display(), "S3 credentials re-read"),
            Err(looked) => tracing::error!(
                origin = %self.origin,
                file = %looked,
                "S3 credentials file changed but holds no usable keys; the previous ones stay in use"
            ),
        }
    }

    /// The headers that sign a request: `x-amz-date`, `x-amz-content-sha256`,
    /// `authorization`, and `x-amz-security-token` with session credentials. `target` is the
    /// path and query as sent; `signed` the headers to cover (`host` and any `x-amz-*`).
    pub fn sign(
        &self,
        method: &str,
        target: &str,
        signed: &[(&str, &str)],
        time: SystemTime,
    ) -> Result<Vec<(&'static str, String)>, String> {
        self.refresh();
        let creds = self.creds.borrow();
        let Some(creds) = creds.as_ref() else {
            return Err(format!("no credentials ({})", self.source.describe()));
        };
        let identity = creds.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(time)
            .settings(self.settings.clone())
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let req = SignableRequest::new(
            method,
            target,
            signed.iter().copied(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(req, &params).map_err(|e| e.to_string())?.into_parts();
        let (headers, _) = instructions.into_parts();
        Ok(headers
            .into_iter()
            .map(|h| (h.name(), h.value().to_string()))
            .collect())
    }
}

/// The keys of `profile` in an INI credentials file; `Ok(None)` when the profile or its keys
/// are missing, `Err` when the file cannot be read.
fn read_profile(path: &std::path::Path, profile: &str) -> Result<Option<Credentials>, String> {
    let ini = ini::Ini::load_from_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let Some(sec) = ini.section(Some(profile)) else {
        return Ok(None);
    };
    let get = |k: &str| {
        sec.get(k)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    Ok(match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(a), Some(s)) => Some(Credentials::new(a, s, get("aws_session_token"), None, "file")),
        _ => None,
    })
}

/// A request path as S3 canonicalises it: percent-escapes decoded, then every byte but the
/// unreserved ones and `/` escaped. What is sent is what is signed.
pub fn canonical_path(path: &[u8]) -> String {
    let decoded: Vec<u8> = percent_encoding::percent_decode(path).collect();
    percent_encoding::percent_encode(&decoded, S3_PATH).to_string()
}

/// The `<Code>` of an S3 XML error document.
pub fn error_code(body: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(body).ok()?;
    let start = s.find("<Code>")? + "<Code>".len();
    let len = s[start..].find("</Code>")?;
    Some(&s[start..start + len])
}

/// S3 error codes that mean this edge's credentials or signature were refused: the
/// distribution is misconfigured, the viewer asked nothing wrong (a 502, not the 403).
pub fn is_credentials_error(code: &str) -> bool {
    matches!(
        code,
        "SignatureDoesNotMatch"
            | "InvalidAccessKeyId"
            | "ExpiredToken"
            | "InvalidToken"
            | "TokenRefreshRequired"
            | "AuthorizationHeaderMalformed"
            | "RequestTimeTooSkewed"
            | "InvalidSecurity"
            | "MissingSecurityHeader"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_as_s3_encodes_them() {
        assert_eq!(canonical_path(b"/a b/caf%C3%A9.txt"), "/a%20b/caf%C3%A9.txt");
        assert_eq!(canonical_path(b"/a%20b(1)+x"), "/a%20b%281%29%2Bx");
        assert_eq!(canonical_path(b"/plain-key_1.~/x"), "/plain-key_1.~/x");
    }

    #[test]
    fn error_documents() {
        let doc =
            b"<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>x</Message></Error>";
        assert_eq!(error_code(doc), Some("SignatureDoesNotMatch"));
        assert!(is_credentials_error("InvalidAccessKeyId"));
        assert!(!is_credentials_error("NoSuchKey"));
        assert!(!is_credentials_error("AccessDenied"));
        assert_eq!(error_code(b"<html>"), None);
    }
}
