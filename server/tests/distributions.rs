#![allow(clippy::unwrap_used)]
//! `[[distributions]]` as the server takes them today: a file with one distribution is served
//! exactly as the same distribution written at the top level; a file with more is refused at
//! start and on reload (the running configuration stays) until routing by Host is wired.

mod util;

use std::process::Command;
use std::time::{Duration, Instant};
use util::TestServer;

fn one(name: &str, root: &std::path::Path, root_object: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[[distributions]]\nname = \"{name}\"\n\
         root_object = \"{root_object}\"\n[[distributions.origins]]\nid = \"files\"\npath = {root:?}\n\
         [distributions.default_cache_behavior]\ntarget_origin = \"files\"\n"
    )
}

fn two(root: &std::path::Path) -> String {
    format!(
        "{}\n[[distributions]]\nname = \"b.example\"\n[[distributions.origins]]\nid = \"files\"\n\
         path = {root:?}\n[distributions.default_cache_behavior]\ntarget_origin = \"files\"\n",
        one("a.example", root, "index.html")
    )
}

fn wait_for(server: &TestServer, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let s = server.stderr();
        if s.contains(needle) || start.elapsed() > Duration::from_secs(10) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn one_distribution_serves_and_a_reload_to_two_is_refused() {
    let site = util::site();
    std::fs::write(site.path().join("two.html"), b"<h1>two</h1>").unwrap();
    let server = TestServer::start_config(
        tempfile::tempdir().unwrap(),
        &one("a.example", site.path(), "index.html"),
    );
    assert_eq!(server.get("/", &[]).body, b"<h1>index</h1>\n");
    assert!(
        server.stderr().contains("serving one distribution"),
        "{}",
        server.stderr()
    );

    let cfg_path = server.dir.path().join("slabfront.toml");
    let hup = || {
        let ok = Command::new("kill")
            .arg("-HUP")
            .arg(server.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    };
    std::fs::write(&cfg_path, two(site.path())).unwrap();
    hup();
    let stderr = wait_for(&server, "reload refused");
    assert!(
        stderr.contains("2 distributions (a.example, b.example)"),
        "{stderr}"
    );
    assert_eq!(
        server.get("/", &[]).body,
        b"<h1>index</h1>\n",
        "the running configuration stays"
    );

    // Back to one distribution, with the seed spelling root_object: reloaded and served.
    std::fs::write(&cfg_path, one("a.example", site.path(), "two.html")).unwrap();
    hup();
    wait_for(&server, "configuration reloaded");
    assert_eq!(server.get("/", &[]).body, b"<h1>two</h1>");
}

#[test]
fn two_distributions_do_not_start() {
    let site = util::site();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("two.toml");
    std::fs::write(&p, two(site.path())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_slabfront"))
        .args(["run", "--config", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not wired into the server yet"), "{stderr}");
}

#[test]
fn a_disabled_distribution_does_not_start() {
    let site = util::site();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("off.toml");
    let text =
        one("a.example", site.path(), "index.html").replace("root_object", "enabled = false\nroot_object");
    std::fs::write(&p, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_slabfront"))
        .args(["run", "--config", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"a.example\" is disabled"), "{stderr}");
}
