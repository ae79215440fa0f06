#![allow(clippy::unwrap_used)]
//! `slabfront import` end to end: each CloudFront DistributionConfig of the config crate's
//! fixtures is imported by the binary, checked by `slabfront check`, then served from (its
//! origins pointed at a loopback origin, since this machine has none of them).

mod util;

use std::process::Command;
use toml_edit::{value, Array, DocumentMut};
use util::origin::{Origin, Reply};
use util::TestServer;

const FIXTURES: [&str; 5] = [
    "static-site-s3.json",
    "api-alb-caching-disabled.json",
    "multi-behavior-site.json",
    "origin-groups.json",
    "legacy-forwarded-values.json",
];

fn slabfront(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_slabfront"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixture(name: &str) -> String {
    format!(
        "{}/../config/tests/fixtures/cloudfront/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The imported file as it would be edited for this machine: loopback listener and origin,
/// a temporary slab and log, no certificate (there is no TLS listener here), plain HTTP
/// allowed for the test's client.
fn for_this_machine(text: &str, dir: &std::path::Path, origin_port: u16) -> String {
    let mut doc: DocumentMut = text.parse().unwrap();
    let mut listen = Array::new();
    listen.push("127.0.0.1:0");
    doc["server"]["listen"] = value(listen);
    doc["server"]["workers"] = value(1);
    doc["server"].as_table_mut().unwrap().remove("listen_tls");
    doc["cache"]["path"] = value(dir.join("slab").display().to_string());
    doc["cache"]["size"] = value("64MiB");
    let d = &mut doc["distributions"][0];
    d.as_table_mut().unwrap().remove("ssl_certificate");
    if d.get("logging").is_some() {
        d["logging"]["path"] = value(dir.join("access.log").display().to_string());
    }
    for o in d["origins"].as_array_of_tables_mut().unwrap().iter_mut() {
        // A bucket becomes the test's plain origin.
        for k in ["s3_bucket", "s3_region", "signing_behavior"] {
            o.remove(k);
        }
        o["domain_name"] = value("127.0.0.1");
        o["http_port"] = value(i64::from(origin_port));
        o["protocol"] = value("http-only");
    }
    d["default_cache_behavior"]["viewer_protocol_policy"] = value("allow-all");
    // An imported geo restriction needs a country database: one where loopback is in the US.
    if doc.get("geo").is_some() {
        let db = dir.join("country.mmdb");
        util::mmdb::write(&db, &[("127.0.0.0/8", "US")]);
        doc["geo"]["database"] = value(db.display().to_string());
    }
    doc.to_string()
}

#[test]
fn each_imported_distribution_is_checked_and_served() {
    let origin = Origin::start(|seen| {
        Reply::ok(
            format!("origin saw {}", seen.target).as_bytes(),
            &[("Content-Type", "text/plain")],
        )
    });
    for name in FIXTURES {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("imported.toml");
        let (ok, stdout, stderr) = slabfront(&["import", &fixture(name), "-o", out.to_str().unwrap()]);
        assert!(ok, "{name}: {stderr}");
        assert!(stdout.is_empty(), "{name}: the configuration goes to the file");
        assert!(stderr.contains("slabfront import: warning: "), "{name}: {stderr}");

        // As imported: the schema is valid anywhere.
        let (ok, stdout, stderr) = slabfront(&["check", "--schema-only", "--config", out.to_str().unwrap()]);
        assert!(ok, "{name}: {stderr}");
        assert!(
            stdout.contains("schema is valid (1 distribution: "),
            "{name}: {stdout}"
        );

        // Edited for this machine: the whole check passes and the distribution serves.
        let text = for_this_machine(&std::fs::read_to_string(&out).unwrap(), dir.path(), origin.port);
        let local = dir.path().join("local.toml");
        std::fs::write(&local, &text).unwrap();
        let (ok, _, stderr) = slabfront(&["check", "--config", local.to_str().unwrap()]);
        assert!(ok, "{name}: {stderr}\n{text}");

        let before = origin.count();
        let server = TestServer::start_config(tempfile::tempdir().unwrap(), &text);
        let r = server.get("/hello.txt", &[]);
        assert_eq!(r.status, 200, "{name}: {}", server.stderr());
        assert_eq!(r.body, b"origin saw /hello.txt", "{name}");
        assert_eq!(origin.count(), before + 1, "{name}");
        // The cache policy came across: CachingDisabled fetches again, the others keep it.
        let again = server.get("/hello.txt", &[]);
        assert_eq!(again.body, b"origin saw /hello.txt");
        let fetched = origin.count() - before;
        let disabled = name.starts_with("api-alb") || name.starts_with("multi-behavior");
        assert_eq!(
            fetched,
            if disabled { 2 } else { 1 },
            "{name}: {:?}",
            again.headers
        );
    }
}

#[test]
fn the_imported_file_fails_the_machine_check_only_for_what_this_machine_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("imported.toml");
    let (ok, _, stderr) = slabfront(&[
        "import",
        &fixture("static-site-s3.json"),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = slabfront(&["check", "--config", out.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("on this machine"), "{stderr}");
    assert!(!stderr.contains("schema errors"), "{stderr}");
    assert!(
        stderr.contains("distributions[0].ssl_certificate.cert"),
        "{stderr}"
    );
}

#[test]
fn import_reads_standard_input_and_writes_standard_output() {
    let json = std::fs::read_to_string(fixture("legacy-forwarded-values.json")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_slabfront"))
        .args(["import", "-", "--name", "www.example.org"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(json.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let toml = String::from_utf8(out.stdout).unwrap();
    assert!(toml.contains("name = \"www.example.org\""), "{toml}");
    assert!(toml.contains("aliases = [\"legacy.example.org\"]"), "{toml}");
    let (ok, _, stderr) = slabfront(&["import", "/no/such.json"]);
    assert!(!ok && stderr.contains("cannot read /no/such.json"), "{stderr}");
}
