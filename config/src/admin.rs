//! `[admin]`: the admin listener, and what its CloudFront API needs (the keys requests are
//! signed with, where the distributions it creates are kept, the domain they are named under).

use serde::Deserialize;

/// `[admin]`: the listener for invalidations, metrics, health and the CloudFront API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Address of the admin listener, e.g. "127.0.0.1:9901".
    pub listen: String,
    /// When set, every admin request needs `Authorization: Bearer <token>` (the CloudFront
    /// API, under `/2020-05-31/`, is authenticated by `access_keys` instead).
    #[serde(default)]
    pub token: Option<String>,
    /// Where distributions made through the CloudFront API are kept (default: a directory
    /// `cloudfront-api` beside the slab file).
    #[serde(default)]
    pub state_dir: Option<String>,
    /// The domain under which API distributions get their `DomainName`
    /// (`d<13 characters>.<distribution_domain>`), as CloudFront names them under
    /// `cloudfront.net`.
    #[serde(default = "default_distribution_domain")]
    pub distribution_domain: String,
    /// Keys that may sign CloudFront API requests (AWS Signature Version 4). Without any,
    /// the API is off (every request under `/2020-05-31/` is `AccessDenied`) and no state
    /// directory is used.
    #[serde(default)]
    pub access_keys: Vec<AccessKey>,
}

fn default_distribution_domain() -> String {
    "slabfront.localhost".into()
}

/// `[[admin.access_keys]]`: an access key id and its secret, given in exactly one way.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    /// The access key id (`AWS_ACCESS_KEY_ID` on the client).
    pub id: String,
    /// The secret itself (prefer `secret_file` or `secret_env`: a config file is often
    /// readable by more people than a secret should be).
    #[serde(default)]
    pub secret: Option<String>,
    /// A file holding the secret (surrounding whitespace ignored).
    #[serde(default)]
    pub secret_file: Option<String>,
    /// An environment variable holding the secret.
    #[serde(default)]
    pub secret_env: Option<String>,
}

impl std::fmt::Debug for AccessKey {
    /// Never the secret: configurations get logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("secret_file", &self.secret_file)
            .field("secret_env", &self.secret_env)
            .finish()
    }
}

impl AccessKey {
    /// Reads the secret from where it is given.
    pub fn read_secret(&self) -> Result<String, String> {
        if let Some(s) = &self.secret {
            return Ok(s.clone());
        }
        if let Some(p) = &self.secret_file {
            return std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("{p:?}: {e}"));
        }
        if let Some(v) = &self.secret_env {
            return std::env::var(v).map_err(|_| format!("the environment variable {v} is not set"));
        }
        Err("no secret".into())
    }
}

impl Admin {
    /// The API's state directory: `state_dir`, else `cloudfront-api` beside the slab.
    pub fn state_dir(&self, cache_path: &str) -> std::path::PathBuf {
        match &self.state_dir {
            Some(d) => d.into(),
            None => std::path::Path::new(cache_path)
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("cloudfront-api"),
        }
    }
}

pub(crate) fn check(a: &Admin, bad: &dyn Fn(String, String)) {
    if a.state_dir.as_deref() == Some("") {
        bad("admin.state_dir".into(), "must not be empty".into());
    }
    if let Err(m) = crate::distributions::host_name(&a.distribution_domain, false) {
        bad("admin.distribution_domain".into(), m);
    }
    for (i, k) in a.access_keys.iter().enumerate() {
        let at = format!("admin.access_keys[{i}]");
        if k.id.is_empty() || !k.id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            bad(
                format!("{at}.id"),
                "an access key id is letters and digits, e.g. \"AKIAIOSFODNN7EXAMPLE\"".into(),
            );
        }
        if a.access_keys[..i].iter().any(|o| o.id == k.id) {
            bad(format!("{at}.id"), format!("{:?} is listed twice", k.id));
        }
        let given = [&k.secret, &k.secret_file, &k.secret_env]
            .iter()
            .filter(|s| s.is_some())
            .count();
        if given != 1 {
            bad(
                at.clone(),
                "give the secret in exactly one of secret, secret_file or secret_env".into(),
            );
        }
        if k.secret.as_deref() == Some("") {
            bad(format!("{at}.secret"), "must not be empty".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    const BASE: &str = "[[origins]]\nid = \"o\"\ndomain_name = \"127.0.0.1\"\nprotocol = \"http-only\"\n\
                        [default_cache_behavior]\ntarget_origin = \"o\"\n";

    #[test]
    fn access_keys_need_exactly_one_secret_and_are_never_printed() {
        let ok = format!(
            "{BASE}[admin]\nlisten = \"127.0.0.1:9901\"\n[[admin.access_keys]]\nid = \"AKID1\"\nsecret = \"s3cr3t\"\n"
        );
        let cfg = Config::from_toml_str_schema_only(&ok).unwrap();
        let a = cfg.admin.unwrap();
        assert_eq!(a.access_keys[0].read_secret().unwrap(), "s3cr3t");
        assert!(!format!("{:?}", a.access_keys).contains("s3cr3t"));
        assert_eq!(a.distribution_domain, "slabfront.localhost");
        let both = format!(
            "{BASE}[admin]\nlisten = \"127.0.0.1:9901\"\n[[admin.access_keys]]\nid = \"AKID1\"\nsecret = \"a\"\nsecret_env = \"B\"\n"
        );
        let e = Config::from_toml_str_schema_only(&both).unwrap_err().to_string();
        assert!(
            e.contains("admin.access_keys[0]") && e.contains("exactly one"),
            "{e}"
        );
        let none =
            format!("{BASE}[admin]\nlisten = \"127.0.0.1:9901\"\n[[admin.access_keys]]\nid = \"AKID1\"\n");
        assert!(Config::from_toml_str_schema_only(&none).is_err());
        let domain = format!("{BASE}[admin]\nlisten = \"127.0.0.1:9901\"\ndistribution_domain = \"a_b\"\n");
        let e = Config::from_toml_str_schema_only(&domain)
            .unwrap_err()
            .to_string();
        assert!(e.contains("admin.distribution_domain"), "{e}");
    }
}
