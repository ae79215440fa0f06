//! HTTPS for viewers: the rustls server configuration built from `[tls]` — certificates
//! chosen by SNI (wildcards included, the first as default), the minimum protocol version,
//! ALPN `http/1.1`, session tickets with rotating keys and a session cache. The crypto
//! provider is aws-lc-rs for key exchange and signatures (faster than ring here for
//! handshakes) with ring's record ciphers (ring's AES-GCM uses VAES/AVX2 where the CPU has
//! it: twice aws-lc-rs's throughput on this machine, see bench/README.md).

use config::{Config, TlsVersion};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::Arc;

/// One loaded certificate: its chain and key, and the leaf's DER for name matching.
#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    leaf: CertificateDer<'static>,
}

/// Picks the certificate whose names cover the SNI name, else the first.
#[derive(Debug)]
struct SniResolver {
    certs: Vec<Loaded>,
}

impl SniResolver {
    fn pick(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = sni.and_then(|n| ServerName::try_from(n.to_string()).ok()) {
            for c in &self.certs {
                let Ok(ee) = webpki::EndEntityCert::try_from(&c.leaf) else {
                    continue;
                };
                if ee.verify_is_valid_for_subject_name(&name).is_ok() {
                    return Some(c.key.clone());
                }
            }
        }
        self.certs.first().map(|c| c.key.clone())
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(hello.server_name())
    }
}

/// Reads one certificate chain and key, checking that they belong together.
fn load(cert: &str, key: &str, provider: &rustls::crypto::CryptoProvider) -> Result<Loaded, String> {
    use rustls::pki_types::pem::PemObject;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{cert}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{cert}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("{cert}: no certificate in the file (an empty chain)"));
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{key}: {e}"))?;
    let signing = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| format!("{key}: {e}"))?;
    let ck = CertifiedKey::new(chain.clone(), signing);
    ck.keys_match()
        .map_err(|e| format!("{key} does not match the certificate in {cert}: {e}"))?;
    warn_if_expiring(cert, &chain[0]);
    Ok(Loaded {
        key: Arc::new(ck),
        leaf: chain[0].clone(),
    })
}

/// A warning for a certificate that expires within 14 days (or has expired).
fn warn_if_expiring(path: &str, leaf: &CertificateDer<'_>) {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(leaf.as_ref()) else {
        return;
    };
    let not_after = parsed.validity().not_after.timestamp();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let left = not_after - now;
    if left < 0 {
        tracing::warn!(cert = path, "certificate has expired");
    } else if left < 14 * 86_400 {
        tracing::warn!(
            cert = path,
            days = left / 86_400,
            "certificate expires within 14 days"
        );
    }
}

/// The crypto provider for viewers and origins: aws-lc-rs's key exchange groups, signature
/// algorithms, key loading and randomness; ring's cipher suites (the same suites in the same
/// order; they carry the record encryption and the handshake's hash and HKDF).
pub fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::CryptoProvider {
        cipher_suites: rustls::crypto::ring::DEFAULT_CIPHER_SUITES.to_vec(),
        ..rustls::crypto::aws_lc_rs::default_provider()
    }
}

/// The provider for viewers: [`provider`] with the configured suites in the configured order.
fn viewer_provider(suites: &[config::CipherSuite]) -> rustls::crypto::CryptoProvider {
    use config::CipherSuite as C;
    use rustls::crypto::ring::cipher_suite as r;
    let suites = suites
        .iter()
        .map(|c| match c {
            C::TLS_AES_128_GCM_SHA256 => r::TLS13_AES_128_GCM_SHA256,
            C::TLS_AES_256_GCM_SHA384 => r::TLS13_AES_256_GCM_SHA384,
            C::TLS_CHACHA20_POLY1305_SHA256 => r::TLS13_CHACHA20_POLY1305_SHA256,
            C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => r::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => r::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
                r::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            }
            C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => r::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => r::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => r::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        })
        .collect();
    rustls::crypto::CryptoProvider {
        cipher_suites: suites,
        ..provider()
    }
}

/// The viewer TLS configuration, or `None` when there are no HTTPS listeners. The suites
/// are chosen in the server's order (`[tls] cipher_suites`), not the viewer's.
pub fn server_config(cfg: &Config) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
    if cfg.server.listen_tls.is_empty() {
        return Ok(None);
    }
    let provider = Arc::new(viewer_provider(&cfg.tls.cipher_suites));
    let mut certs = Vec::new();
    for c in &cfg.tls.certificates {
        certs.push(load(&c.cert, &c.key, &provider)?);
    }
    if certs.is_empty() {
        return Err("HTTPS listeners need at least one [[tls.certificates]]".into());
    }
    let versions: &[&rustls::SupportedProtocolVersion] = match cfg.tls.minimum_protocol_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let mut sc = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { certs }));
    sc.ignore_client_order = true;
    // HTTP/2 first: a viewer that offers both gets it (RFC 7301: the server picks).
    sc.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    sc.session_storage = rustls::server::ServerSessionMemoryCache::new(64 * 1024);
    sc.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().map_err(|e| e.to_string())?;
    Ok(Some(Arc::new(sc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_files(dir: &std::path::Path, name: &str, sans: &[&str]) -> (String, String) {
        let ck = rcgen::generate_simple_self_signed(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        let c = dir.join(format!("{name}.pem"));
        let k = dir.join(format!("{name}.key"));
        std::fs::write(&c, ck.cert.pem()).unwrap();
        std::fs::write(&k, ck.key_pair.serialize_pem()).unwrap();
        (c.display().to_string(), k.display().to_string())
    }

    #[test]
    fn sni_picks_by_name_and_wildcard_with_the_first_as_default() {
        let d = tempfile::tempdir().unwrap();
        let p = rustls::crypto::aws_lc_rs::default_provider();
        let (a, ak) = cert_files(d.path(), "a", &["a.example"]);
        let (w, wk) = cert_files(d.path(), "w", &["*.b.example"]);
        let r = SniResolver {
            certs: vec![load(&a, &ak, &p).unwrap(), load(&w, &wk, &p).unwrap()],
        };
        let first = r.certs[0].key.clone();
        let wild = r.certs[1].key.clone();
        assert!(Arc::ptr_eq(&r.pick(Some("a.example")).unwrap(), &first));
        assert!(Arc::ptr_eq(&r.pick(Some("x.b.example")).unwrap(), &wild));
        assert!(
            Arc::ptr_eq(&r.pick(Some("b.example")).unwrap(), &first),
            "a wildcard covers one label"
        );
        assert!(Arc::ptr_eq(&r.pick(None).unwrap(), &first));
    }

    #[test]
    fn mismatched_keys_and_empty_chains_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = rustls::crypto::aws_lc_rs::default_provider();
        let (a, _) = cert_files(d.path(), "a", &["a.example"]);
        let (_, bk) = cert_files(d.path(), "b", &["b.example"]);
        let e = load(&a, &bk, &p).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let empty = d.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let e = load(empty.to_str().unwrap(), &bk, &p).unwrap_err();
        assert!(e.contains("empty chain"), "{e}");
        assert!(load("/no/such.pem", &bk, &p).is_err());
    }
}
