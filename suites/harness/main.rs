//! The harness's own promises, against the real engine: nothing leaks (on
//! panic, on Ctrl-C, after a killed run), parallel runs do not collide, and
//! bad input gets one clear message naming the thing and the fix.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../common/mod.rs"]
mod common;
use common::{debian_tool, in_tools_container};
use stackproof::Error;
use stackproof::Stack;
use stackproof::docker::{self, LABEL_PID, LABEL_RUN, LABEL_STARTED};
use stackproof::fixtures::Fixtures;
use testcontainers::bollard::Docker;
use testcontainers::bollard::models::NetworkCreateRequest;
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
};

mod cleanup;
mod cluster;
mod faults;
mod input;
mod reports;

/// Containers and networks carrying `label=value`.
async fn resources_with(docker: &Docker, label: &str, value: &str) -> (usize, usize) {
    let filter = HashMap::from([("label", vec![format!("{label}={value}")])]);
    let c = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await
        .unwrap()
        .len();
    let n = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filter).build(),
        ))
        .await
        .unwrap()
        .len();
    (c, n)
}

/// Whether `from` gets an answer from `to`'s web server within a second.
async fn answers(stack: &Stack, from: &str, to: &str) -> bool {
    let addr = stack.host(to).unwrap().main_addr();
    stack
        .host(from)
        .unwrap()
        .exec(&format!(
            "curl -sf -m 1 -o /dev/null http://{addr}/static/hello.txt"
        ))
        .await
        .is_ok_and(|o| o.code == 0)
}

/// A folder under the system's temporary directory, outside the repository.
fn outside_the_repo(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sp-{what}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A new design folder at `folder`, made by `stackproof new` as a user would.
fn new_design(folder: &std::path::Path) {
    new_design_with(folder, &[]);
}

/// As [`new_design`], with `new`'s options (`--from scale_up`).
fn new_design_with(folder: &std::path::Path, options: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["new", folder.to_str().unwrap()])
        .args(options)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the CLI to its end and asserts it succeeded and that nothing
/// labelled with its process is left: its stdout.
fn cli_leaving_nothing(args: &[&str]) -> String {
    cli_ending_with(args, 0)
}

/// Runs the CLI; it must exit with `code` and leave no container or network.
fn cli_ending_with(args: &[&str], code: i32) -> String {
    let child = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stackproof {}:\n{stdout}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let docker = docker::connect().await.unwrap();
        assert_eq!(
            resources_with(&docker, LABEL_PID, &pid).await,
            (0, 0),
            "stackproof {} left resources behind",
            args.join(" ")
        );
    });
    stdout
}
