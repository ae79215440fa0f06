#![allow(clippy::unwrap_used)]
//! HTTPS for viewers: SNI, the default certificate, minimum versions, viewer protocol
//! policies, certificate reload under an open connection, and bad input on the TLS port.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use util::read_response;

struct Certs {
    pem: String,
    der: Vec<u8>,
    cert_path: std::path::PathBuf,
    key_path: std::path::PathBuf,
}

fn make_cert(dir: &std::path::Path, name: &str, sans: &[&str]) -> Certs {
    let ck =
        rcgen::generate_simple_self_signed(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let cert_path = dir.join(format!("{name}.pem"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&cert_path, ck.cert.pem()).unwrap();
    std::fs::write(&key_path, ck.key_pair.serialize_pem()).unwrap();
    Certs {
        pem: ck.cert.pem(),
        der: ck.cert.der().to_vec(),
        cert_path,
        key_path,
    }
}

struct Edge {
    child: Child,
    http: u16,
    https: u16,
    dir: tempfile::TempDir,
    cfg_path: std::path::PathBuf,
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(dir: &std::path::Path, certs: &[&Certs], min: &str, behaviors: &str) -> String {
    let site = dir.join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.html"), b"<h1>secure</h1>").unwrap();
    std::fs::create_dir_all(site.join("open")).unwrap();
    std::fs::write(site.join("open/x.txt"), b"open").unwrap();
    let mut c = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
listen_tls = ["127.0.0.1:0"]
workers = 2

[tls]
minimum_protocol_version = "{min}"

[[origins]]
id = "site"
path = "{site}"

{behaviors}
"#,
        site = site.display()
    );
    for cert in certs {
        c.push_str(&format!(
            "\n[[tls.certificates]]\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.cert_path.display(),
            cert.key_path.display()
        ));
    }
    c
}

fn start(dir: tempfile::TempDir, cfg: &str) -> Edge {
    let cfg_path = dir.path().join("tls.toml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_slabfront"))
        .arg("--config")
        .arg(&cfg_path)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut ports = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(line.contains("listening"), "{line}");
        ports.push(
            line.trim()
                .rsplit(':')
                .next()
                .unwrap()
                .trim_end_matches('/')
                .parse::<u16>()
                .unwrap(),
        );
    }
    Edge {
        child,
        http: ports[0],
        https: ports[1],
        dir,
        cfg_path,
    }
}

fn client(
    trust: &[&Certs],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in trust {
        roots
            .add(rustls::pki_types::CertificateDer::from(c.der.clone()))
            .unwrap();
    }
    let mut cfg =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn connect(port: u16, sni: &str, cfg: Arc<rustls::ClientConfig>) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ClientConnection::new(cfg, sni.to_string().try_into().unwrap()).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

fn get(s: &mut Tls, path: &str) -> util::Response {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: a.test\r\n\r\n").as_bytes())
        .unwrap();
    read_response(s, false).unwrap()
}

fn peer_der(s: &Tls) -> Vec<u8> {
    s.conn.peer_certificates().unwrap()[0].to_vec()
}

const V13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
const V12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

#[test]
fn sni_chooses_the_certificate_and_the_first_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let a = make_cert(dir.path(), "a", &["a.test"]);
    let b = make_cert(dir.path(), "b", &["*.b.test"]);
    let cfg = config(
        dir.path(),
        &[&a, &b],
        "TLSv1.2",
        "[default_cache_behavior]\ntarget_origin = \"site\"",
    );
    let e = start(dir, &cfg);
    let both = client(&[&a, &b], V13);
    let mut s = connect(e.https, "a.test", both.clone()).unwrap();
    assert_eq!(peer_der(&s), a.der);
    assert_eq!(s.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    let r = get(&mut s, "/");
    assert_eq!(r.body, b"<h1>secure</h1>");
    // Keep-alive over TLS.
    assert_eq!(get(&mut s, "/open/x.txt").body, b"open");
    let s = connect(e.https, "www.b.test", both.clone()).unwrap();
    assert_eq!(peer_der(&s), b.der, "wildcard match");
    // No matching name: the default (first) certificate, which this name does not verify.
    let err = connect(e.https, "other.test", both.clone()).err();
    assert!(err.is_some(), "the default certificate does not cover other.test");
    // TLS 1.2 works with the default minimum.
    let mut s = connect(e.https, "a.test", client(&[&a], V12)).unwrap();
    assert_eq!(s.conn.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
    assert_eq!(get(&mut s, "/").status, 200);
}

/// A site behind one certificate for `a.test`, with this minimum protocol version.
fn one_name(min: &str) -> (tempfile::TempDir, Certs, String) {
    let dir = tempfile::tempdir().unwrap();
    let a = make_cert(dir.path(), "a", &["a.test"]);
    let cfg = config(
        dir.path(),
        &[&a],
        min,
        "[default_cache_behavior]\ntarget_origin = \"site\"",
    );
    (dir, a, cfg)
}

/// A body larger than any socket buffer, read slowly through a small receive window: the
/// encrypted records wait for the socket many times and still arrive whole and in order.
#[test]
fn large_bodies_over_tls_survive_a_slow_reader() {
    let (dir, a, cfg) = one_name("TLSv1.3");
    let huge: Vec<u8> = (0..6_000_000u32)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 13) as u8)
        .collect();
    std::fs::write(dir.path().join("site/huge.bin"), &huge).unwrap();
    let e = start(dir, &cfg);
    let mut s = connect(e.https, "a.test", client(&[&a], V13)).unwrap();
    socket2::SockRef::from(&s.sock)
        .set_recv_buffer_size(32 * 1024)
        .unwrap();
    s.write_all(b"GET /huge.bin HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .unwrap();
    // Nothing read for a while: the server's send buffer fills up.
    std::thread::sleep(Duration::from_millis(200));
    let r = read_response(&mut s, false).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body == huge, "body differs");
    assert_eq!(
        get(&mut s, "/open/x.txt").body,
        b"open",
        "the connection is still usable"
    );
}

#[test]
fn tls_1_2_is_refused_when_the_minimum_is_1_3() {
    let (dir, a, cfg) = one_name("TLSv1.3");
    let e = start(dir, &cfg);
    assert!(connect(e.https, "a.test", client(&[&a], V12)).is_err());
    let mut s = connect(e.https, "a.test", client(&[&a], V13)).unwrap();
    assert_eq!(
        get(&mut s, "/").status,
        200,
        "still serving after a refused handshake"
    );
}

/// The server's order decides: a viewer that prefers AES-256-GCM (rustls's own order) gets
/// AES-128-GCM by default, and only what `cipher_suites` lists when it is set.
#[test]
fn cipher_suites_are_chosen_in_the_servers_order() {
    use rustls::CipherSuite as S;
    let suite = |s: &Tls| s.conn.negotiated_cipher_suite().unwrap().suite();
    let (dir, a, cfg) = one_name("TLSv1.2");
    let e = start(dir, &cfg);
    let s = connect(e.https, "a.test", client(&[&a], V13)).unwrap();
    assert_eq!(suite(&s), S::TLS13_AES_128_GCM_SHA256);
    let s = connect(e.https, "a.test", client(&[&a], V12)).unwrap();
    assert_eq!(suite(&s), S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256);
    drop(e);

    let (dir, a, cfg) = one_name("TLSv1.2");
    let cfg = cfg.replace(
        "minimum_protocol_version = \"TLSv1.2\"",
        "minimum_protocol_version = \"TLSv1.2\"\ncipher_suites = [\"TLS_CHACHA20_POLY1305_SHA256\", \
         \"TLS_AES_256_GCM_SHA384\", \"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\"]",
    );
    let e = start(dir, &cfg);
    let mut s = connect(e.https, "a.test", client(&[&a], V13)).unwrap();
    assert_eq!(suite(&s), S::TLS13_CHACHA20_POLY1305_SHA256);
    assert_eq!(get(&mut s, "/").status, 200);
    let s = connect(e.https, "a.test", client(&[&a], V12)).unwrap();
    assert_eq!(suite(&s), S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384);
    // A viewer with nothing in common is refused; the server keeps serving.
    let mut only128 = rustls::crypto::ring::default_provider();
    only128
        .cipher_suites
        .retain(|c| c.suite() == S::TLS13_AES_128_GCM_SHA256);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(a.der.clone()))
        .unwrap();
    let narrow = rustls::ClientConfig::builder_with_provider(Arc::new(only128))
        .with_protocol_versions(V13)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    assert!(connect(e.https, "a.test", Arc::new(narrow)).is_err());
    let mut s = connect(e.https, "a.test", client(&[&a], V13)).unwrap();
    assert_eq!(get(&mut s, "/").status, 200);
}

#[test]
fn viewer_protocol_policies() {
    let dir = tempfile::tempdir().unwrap();
    let a = make_cert(dir.path(), "a", &["a.test"]);
    let behaviors = r#"
[default_cache_behavior]
target_origin = "site"
viewer_protocol_policy = "redirect-to-https"

[[behaviors]]
path_pattern = "/open/*"
target_origin = "site"
viewer_protocol_policy = "allow-all"

[[behaviors]]
path_pattern = "/secret*"
target_origin = "site"
viewer_protocol_policy = "https-only"
"#;
    let cfg = config(dir.path(), &[&a], "TLSv1.2", behaviors);
    let e = start(dir, &cfg);
    let plain = |req: &str| {
        let mut c = TcpStream::connect(("127.0.0.1", e.http)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(req.as_bytes()).unwrap();
        read_response(&mut c, false).unwrap()
    };
    let r = plain("GET /index.html?x=1 HTTP/1.1\r\nHost: cdn.test:8080\r\n\r\n");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://cdn.test/index.html?x=1"));
    let r = plain("POST /form HTTP/1.1\r\nHost: cdn.test\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!(r.status, 307);
    assert_eq!(r.header("location"), Some("https://cdn.test/form"));
    assert_eq!(
        plain("GET /secret.txt HTTP/1.1\r\nHost: cdn.test\r\n\r\n").status,
        403
    );
    assert_eq!(
        plain("GET /open/x.txt HTTP/1.1\r\nHost: cdn.test\r\n\r\n").body,
        b"open"
    );
    let mut s = connect(e.https, "a.test", client(&[&a], V13)).unwrap();
    assert_eq!(get(&mut s, "/index.html").status, 200, "HTTPS is served");
}

#[test]
fn certificates_reload_without_dropping_an_open_connection() {
    let dir = tempfile::tempdir().unwrap();
    let old = make_cert(dir.path(), "old", &["a.test"]);
    let new = make_cert(dir.path(), "new", &["a.test"]);
    let cfg = config(
        dir.path(),
        &[&old],
        "TLSv1.2",
        "[default_cache_behavior]\ntarget_origin = \"site\"",
    );
    let e = start(dir, &cfg);
    let trust = client(&[&old, &new], V13);
    let mut open = connect(e.https, "a.test", trust.clone()).unwrap();
    assert_eq!(get(&mut open, "/").status, 200);
    // A bad new certificate: logged, the old one keeps serving.
    std::fs::write(&old.cert_path, "not a certificate").unwrap();
    Command::new("kill")
        .arg("-HUP")
        .arg(e.child.id().to_string())
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let s = connect(e.https, "a.test", trust.clone()).unwrap();
    assert_eq!(peer_der(&s), old.der);
    let stderr = std::fs::read_to_string(e.dir.path().join("stderr")).unwrap();
    assert!(stderr.contains("reload failed"), "{stderr}");
    // A good new certificate.
    std::fs::write(&old.cert_path, &new.pem).unwrap();
    std::fs::copy(&new.key_path, &old.key_path).unwrap();
    Command::new("kill")
        .arg("-HUP")
        .arg(e.child.id().to_string())
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let s = connect(e.https, "a.test", trust.clone()).unwrap();
    assert_eq!(peer_der(&s), new.der, "new connections get the new certificate");
    assert_eq!(get(&mut open, "/").status, 200, "the open connection survived");
    let _ = &e.cfg_path;
}

#[test]
fn plaintext_and_malformed_hellos_on_the_tls_port_are_closed_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let a = make_cert(dir.path(), "a", &["a.test"]);
    let cfg = config(
        dir.path(),
        &[&a],
        "TLSv1.2",
        "[default_cache_behavior]\ntarget_origin = \"site\"",
    );
    let e = start(dir, &cfg);
    for junk in [
        &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        &b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\xff"[..],
        &b"\x16\x03\x01\xff\xff garbage garbage"[..],
    ] {
        let mut c = TcpStream::connect(("127.0.0.1", e.https)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(junk).unwrap();
        let mut got = Vec::new();
        // The server answers with at most an alert, then closes (no hang, no HTTP).
        let _ = c.read_to_end(&mut got);
        assert!(!got.starts_with(b"HTTP/"), "{got:?}");
    }
    let mut s = connect(e.https, "a.test", client(&[&a], V13)).unwrap();
    assert_eq!(get(&mut s, "/").status, 200, "still serving");
}

#[test]
fn sni_picks_each_distributions_certificate_and_host_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let a = make_cert(dir.path(), "a", &["a.test"]);
    let b = make_cert(dir.path(), "b", &["b.test"]);
    let mut cfg =
        String::from("[server]\nlisten = [\"127.0.0.1:0\"]\nlisten_tls = [\"127.0.0.1:0\"]\nworkers = 1\n");
    for (name, cert) in [("a.test", &a), ("b.test", &b)] {
        let site = dir.path().join(name);
        std::fs::create_dir_all(&site).unwrap();
        std::fs::write(site.join("index.html"), format!("<h1>{name}</h1>")).unwrap();
        cfg.push_str(&format!(
            "\n[[distributions]]\nname = \"{name}\"\n[distributions.ssl_certificate]\ncert = {:?}\nkey = {:?}\n\
             [[distributions.origins]]\nid = \"site\"\npath = {site:?}\n[distributions.default_cache_behavior]\ntarget_origin = \"site\"\n",
            cert.cert_path, cert.key_path
        ));
    }
    let edge = start(tempfile::tempdir().unwrap(), &cfg);
    for (name, cert) in [("a.test", &a), ("b.test", &b)] {
        let mut s = connect(edge.https, name, client(&[&a, &b], V13)).unwrap();
        assert_eq!(peer_der(&s), cert.der, "{name}: its own certificate");
        s.write_all(format!("GET / HTTP/1.1\r\nHost: {name}\r\n\r\n").as_bytes())
            .unwrap();
        let r = read_response(&mut s, false).unwrap();
        assert_eq!(r.body, format!("<h1>{name}</h1>").as_bytes());
    }
}
