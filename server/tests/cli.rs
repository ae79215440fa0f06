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
    let text = std::fs::read_to_string(example)
        .unwrap()
        .replace("/srv/www", env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let text = text
        .replace(
            "/var/log/slabfront/access.log",
            &dir.path().join("access.log").display().to_string(),
        )
        .replace(
            "/etc/slabfront/tls/edge.pem",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        )
        .replace(
            "/etc/slabfront/tls/edge.key",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        );
    let p = dir.path().join("example.toml");
    std::fs::write(&p, text).unwrap();
    let (ok, _, stderr) = slabfront(&["check", "--config", p.to_str().unwrap()]);
    assert!(ok, "{stderr}");
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
