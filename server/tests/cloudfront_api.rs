#![allow(clippy::unwrap_used)]
//! CloudFront's REST API on the admin listener, driven by real boto3 and the AWS CLI
//! (`util/cfapi_client.py`): the whole create → deployed → fetch → invalidate → disable →
//! delete workflow with the origin's bytes fetched through the new distribution, the file's
//! distributions read-only, SigV4 refusals that change nothing, concurrent updates with one
//! ETag, `kill -9` right after a 201, and 1,000 distributions listed page by page.

mod util;

use std::path::Path;
use util::cfapi::{clients, Target};
use util::origin::{Origin, Reply};
use util::TestServer;

const KEY: (&str, &str) = ("AKIDSLABFRONTTEST", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
const FILE_NAME: &str = "files.example";

/// An origin with a 300 kB object of every byte value and a small text.
fn origin() -> Origin {
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    Origin::start(move |seen| match seen.target.as_str() {
        "/a.bin" => Reply::ok(&big, &[("Cache-Control", "max-age=600")]),
        "/dir/b.txt" => Reply::ok(b"hello from the origin\n", &[("Cache-Control", "max-age=600")]),
        _ => Reply::status(404, &[]),
    })
}

fn config(state: &Path, origin_port: u16) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 2\n\
         [cache]\npath = {slab:?}\nsize = \"64MiB\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\nstate_dir = {state:?}\ndistribution_domain = \"edge.test\"\n\
         [[admin.access_keys]]\nid = \"{id}\"\nsecret_env = \"CFAPI_TEST_SECRET\"\n\
         [[distributions]]\nname = \"{FILE_NAME}\"\n\
         [[distributions.origins]]\nid = \"app\"\ndomain_name = \"127.0.0.1\"\nhttp_port = {origin_port}\nprotocol = \"http-only\"\n\
         [distributions.default_cache_behavior]\ntarget_origin = \"app\"\n",
        slab = state.parent().unwrap().join("slab"),
        id = KEY.0,
    )
}

struct Rig {
    server: TestServer,
    origin: Origin,
    state: tempfile::TempDir,
}

fn start_in(state: tempfile::TempDir, origin: Origin) -> Rig {
    let cfg = config(&state.path().join("api"), origin.port);
    let server = TestServer::start_config_env(
        tempfile::tempdir().unwrap(),
        &cfg,
        &[("CFAPI_TEST_SECRET", KEY.1)],
    );
    Rig {
        server,
        origin,
        state,
    }
}

fn start() -> Rig {
    start_in(tempfile::tempdir().unwrap(), origin())
}

impl Rig {
    fn target(&self) -> Target {
        Target {
            endpoint: format!("http://127.0.0.1:{}", self.server.admin_port.unwrap()),
            edge: format!("http://127.0.0.1:{}", self.server.port),
            origin: format!("http://127.0.0.1:{}", self.origin.port),
            key: (KEY.0.into(), KEY.1.into()),
            file_name: FILE_NAME.into(),
        }
    }

    fn run(&self, command: &str, args: &[&str]) -> serde_json::Value {
        clients()
            .run(&self.target(), command, args)
            .unwrap_or_else(|e| panic!("{e}\nslabfront's stderr (tail):\n{}", tail(&self.server.stderr())))
    }
}

/// A GET with this Host.
fn get(server: &TestServer, path: &str, host: &str) -> util::Response {
    use std::io::Write;
    let mut s = server.connect();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    util::read_response(&mut s, false).unwrap()
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

#[test]
fn boto3_runs_the_whole_workflow_and_the_file_distribution_is_read_only() {
    let rig = start();
    let out = rig.run("workflow", &[]);
    // Four fetches through the edge (two objects, by DomainName and by alias), byte-identical.
    assert_eq!(
        out["bytes"],
        serde_json::json!([300_000, 300_000, 22, 22]),
        "{out}"
    );
    assert!(out["domain"].as_str().unwrap().ends_with(".edge.test"), "{out}");
    rig.run("file-distribution", &[]);
    // The file's distribution still serves (it was refused a change, not changed).
    let r = get(&rig.server, "/dir/b.txt", FILE_NAME);
    assert_eq!(r.status, 200);
}

#[test]
fn the_aws_cli_runs_the_whole_workflow() {
    let rig = start();
    let out = rig.run("cli-workflow", &[]);
    assert_eq!(out["bytes"], 300_000, "{out}");
}

#[test]
fn unsigned_or_badly_signed_requests_change_nothing() {
    let rig = start();
    let out = rig.run("auth", &[]);
    assert_eq!(out["unsigned"], 403);
    // Only the file's distribution: nothing was created, and nothing is in the state.
    assert_eq!(out["distributions"], 1, "{out}");
    let files = std::fs::read_dir(rig.state.path().join("api")).unwrap().count();
    assert_eq!(files, 0);
}

#[test]
fn concurrent_updates_with_one_etag_let_exactly_one_win() {
    let rig = start();
    let out = rig.run("concurrent", &[]);
    assert_eq!(out["rounds"].as_array().unwrap().len(), 5, "{out}");
}

#[test]
fn kill_9_right_after_a_201_loses_nothing() {
    let mut rig = start();
    let made = rig.run("create", &["crash-1"]);
    rig.server.kill9();
    let Rig { state, origin, .. } = rig;
    let rig = start_in(state, origin);
    let id = made["id"].as_str().unwrap();
    let shown = rig.run("show", &[id]);
    assert_eq!(shown["etag"], made["etag"], "{shown}");
    assert_eq!(shown["domain"], made["domain"]);
    // Loaded with the file's configuration at start: served at once.
    assert_eq!(shown["status"], "Deployed");
    let host = made["domain"].as_str().unwrap();
    let r = get(&rig.server, "/dir/b.txt", host);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"hello from the origin\n"[..])
    );
    // And `slabfront check` reads the same state.
    let cfg = rig.server.dir.path().join("slabfront.toml");
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_slabfront"))
        .arg("check")
        .arg("--config")
        .arg(&cfg)
        .env("CFAPI_TEST_SECRET", KEY.1)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && text.contains("CloudFront API state is valid (1 distribution)"),
        "{text}"
    );
}

#[test]
fn a_thousand_distributions_are_created_and_listed_page_by_page() {
    let rig = start();
    let out = rig.run("many", &["1000"]);
    assert_eq!(out["created"], 1000, "{out}");
    // The file's distribution too; pages of 100.
    assert_eq!(out["listed"], 1001, "{out}");
    assert_eq!(out["pages"], 11, "{out}");
    eprintln!("1,000 distributions: {out}");
}

#[test]
fn slabfront_check_names_a_broken_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("api");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("E1BROKEN000000.json"), b"{\"Id\": ").unwrap();
    let cfg = dir.path().join("slabfront.toml");
    std::fs::write(&cfg, config(&state, 9)).unwrap();
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_slabfront"))
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(!check.status.success(), "{err}");
    assert!(err.contains("E1BROKEN000000.json"), "{err}");
}
