#![allow(clippy::unwrap_used)]
//! The command line: `check` reports every problem; the embedded default is valid.

use std::process::Command;

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

#[test]
fn check_accepts_the_embedded_default_and_the_example() {
    let (ok, stdout, _) = slabfront(&["check"]);
    assert!(ok);
    assert!(stdout.contains("configuration is valid"));
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/example.toml");
    // The schema is checked anywhere, files or not.
    let (ok, stdout, stderr) = slabfront(&["check", "--schema-only", "--config", example]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("schema is valid (2 distributions: www.example.com, static.example.com)"),
        "{stdout}"
    );
    // The whole check names what this machine lacks, and only that.
    let (ok, _, stderr) = slabfront(&["check", "--config", example]);
    assert!(!ok);
    assert!(
        stderr.contains("on this machine") && !stderr.contains("schema errors"),
        "{stderr}"
    );
    assert!(stderr.contains("distributions[1].origins[0].path"), "{stderr}");
    // With the files in place, it passes.
    let dir = tempfile::tempdir().unwrap();
    let cert = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let text = std::fs::read_to_string(example)
        .unwrap()
        .replace("/srv/www", env!("CARGO_MANIFEST_DIR"))
        .replace("/srv/static", env!("CARGO_MANIFEST_DIR"))
        .replace("/var/log/slabfront/", &format!("{}/", dir.path().display()));
    let text = ["edge.pem", "edge.key", "static.pem", "static.key"]
        .iter()
        .fold(text, |t, f| t.replace(&format!("/etc/slabfront/tls/{f}"), cert));
    let p = dir.path().join("example.toml");
    std::fs::write(&p, text).unwrap();
    let (ok, _, stderr) = slabfront(&["check", "--config", p.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    // Both distributions are taken up by the server: it goes as far as loading their
    // certificates (stand-ins here, so it stops there, saying so).
    let (ok, _, stderr) = slabfront(&["run", "--config", p.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("distribution=www.example.com")
            && stderr.contains("distribution=static.example.com")
            && stderr.contains("TLS for viewers"),
        "{stderr}"
    );
}

#[test]
fn check_reports_every_problem_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "[server]\nlisten = [\"nope\"]\ncolour = 1\n\n[[origins]]\nid = \"a\"\npath = \"/no/such/dir\"\n\n[default_cache_behavior]\ntarget_origin = \"b\"\n",
    )
    .unwrap();
    let (ok, _, stderr) = slabfront(&["check", "--config", p.to_str().unwrap()]);
    assert!(!ok);
    for needle in [
        "bad.toml:3:1: server.colour: unknown field",
        "bad.toml:2:",
        "server.listen[0]",
        "bad.toml:7:1: origins[0].path",
        "bad.toml:10:1: default_cache_behavior.target_origin",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
}

#[test]
fn running_with_a_missing_file_fails_clearly() {
    let (ok, _, stderr) = slabfront(&["--config", "/no/such/slabfront.toml"]);
    assert!(!ok);
    assert!(stderr.contains("cannot read /no/such/slabfront.toml"), "{stderr}");
}
