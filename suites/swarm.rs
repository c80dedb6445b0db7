//! A class graded on a real distributed engine run here: Docker's own
//! swarm mode. The test makes a one-node swarm of this machine's engine,
//! builds the grader image (ci/kubernetes/Dockerfile: this build's binary
//! on the server image), grades a class of six distinct submissions in
//! three shards with `ci/swarm/grade-class.sh` (a replicated-job, one task
//! at a time), and compares the merged table with the class graded in one
//! go on this machine: the same, claim by claim. It leaves the swarm again
//! (only when it made it: an engine already in a swarm is left alone and
//! the test skips, saying so), and nothing labelled for it stays behind.
//! Its own binary, so no other suite's stacks share the engine meanwhile.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Undone however the test ends: the grader image, the swarm this test
/// made, the network swarm leaves behind, the class's folders.
struct Made {
    swarm: bool,
    image: Option<String>,
    dir: PathBuf,
}

impl Drop for Made {
    fn drop(&mut self) {
        if self.swarm {
            let _ = docker(&["swarm", "leave", "--force"]);
            // Swarm's bridge to the host outlives the swarm on this engine.
            let _ = docker(&["network", "rm", "docker_gwbridge"]);
        }
        if let Some(image) = &self.image {
            let _ = docker(&["rmi", "-f", image]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("docker")
}

fn said(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// The CSV's rows, sorted: the same class graded two ways compares equal.
fn rows(csv: &str) -> Vec<String> {
    let mut rows: Vec<String> = csv.lines().map(String::from).collect();
    rows.sort();
    rows
}

#[test]
fn a_class_graded_in_three_shards_on_a_one_node_swarm_equals_the_class_graded_in_one_go() {
    let state = said(&docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]));
    if state.trim() != "inactive" {
        eprintln!(
            "SKIPPED: this engine is already in a swarm ({}): the test makes its own and leaves it, so it never touches one it did not make",
            state.trim()
        );
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("sp-swarm-{}", std::process::id()));
    let mut made = Made {
        swarm: false,
        image: None,
        dir: dir.clone(),
    };
    // The grader image: this build's binary on the server image, as
    // ci/kubernetes/Dockerfile builds it (its context the binary alone).
    let server = common::server_image();
    let context = dir.join("grader");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_stackproof"), context.join("stackproof")).unwrap();
    let image = format!("stackproof/grader:test-{}", std::process::id());
    made.image = Some(image.clone());
    let built = Command::new("docker")
        .args(["build", "-q", "-f"])
        .arg(root.join("ci/kubernetes/Dockerfile"))
        .args([
            "--build-arg",
            &format!("SERVER_IMAGE={server}"),
            "-t",
            &image,
        ])
        .arg(&context)
        .output()
        .unwrap();
    assert!(built.status.success(), "grader image: {}", said(&built));
    // A class of six distinct files, with mixed verdicts.
    let class = dir.join("class");
    let configs = root.join("tests/configs/haproxy");
    for (student, file) in [
        ("amy", "lb_debian_default.cfg"),
        ("bo", "lb_balance_source.cfg"),
        ("cy", "lb_leastconn.cfg"),
        ("dee", "lb_listen_style.cfg"),
        ("eli", "lb_sticky_cookie.cfg"),
        ("fay", "lb_no_global.cfg"),
    ] {
        std::fs::create_dir_all(class.join(student)).unwrap();
        std::fs::copy(configs.join(file), class.join(student).join("haproxy.cfg")).unwrap();
    }
    let claims = ["--claim", "distributed.lb.round_robin"];
    let init = docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
    if !init.status.success() {
        // Blocked, not broken: said in the engine's own words.
        eprintln!(
            "SKIPPED: this engine cannot make a swarm: {}",
            said(&init).trim()
        );
        return;
    }
    made.swarm = true;
    // The sweep knows swarm jobs: one left by a killed script goes, with
    // its task's container.
    let stray = docker(&[
        "service",
        "create",
        "--detach",
        "--quiet",
        "--name",
        "sp-stray-job",
        "--mode",
        "replicated-job",
        "--label",
        "stackproof.swarm=stray",
        "--container-label",
        "stackproof.swarm=stray",
        "--no-resolve-image",
        "--entrypoint",
        "sleep",
        &server,
        "300",
    ]);
    assert!(stray.status.success(), "{}", said(&stray));
    let until = |what: &str, done: &dyn Fn() -> bool| {
        let started = std::time::Instant::now();
        while !done() {
            assert!(started.elapsed().as_secs() < 60, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    };
    let strays = || {
        said(&docker(&[
            "ps",
            "-aq",
            "--filter",
            "label=stackproof.swarm=stray",
        ]))
    };
    until("the stray job's task started", &|| {
        !strays().trim().is_empty()
    });
    let swept = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["sweep", "--all"])
        .output()
        .unwrap();
    assert!(
        said(&swept).contains("swarm job sp-stray-job"),
        "{}",
        said(&swept)
    );
    until("the stray job's task removed", &|| {
        strays().trim().is_empty()
    });
    assert!(said(&docker(&["service", "ls", "-q"])).trim().is_empty());
    let results = dir.join("results");
    let swarm = Command::new("bash")
        .arg(root.join("ci/swarm/grade-class.sh"))
        .arg("distributed")
        .args([&class, &results])
        .arg("3")
        .args(claims)
        .env("STACKPROOF_GRADER_IMAGE", &image)
        .env("GRADE_CLASS_TIMEOUT", "900")
        .output()
        .unwrap();
    let swarm_said = said(&swarm);
    // Nothing of the job stays: its service, its tasks' containers.
    let services = said(&docker(&["service", "ls", "-q"]));
    let tasks = said(&docker(&[
        "ps",
        "-aq",
        "--filter",
        "label=stackproof.swarm",
    ]));
    // The same class in one go, on this machine.
    let whole = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args([
            "grade",
            "distributed",
            "amy",
            "bo",
            "cy",
            "dee",
            "eli",
            "fay",
        ])
        .args(claims)
        .arg("--out")
        .arg(dir.join("whole"))
        .current_dir(&class)
        .output()
        .unwrap();
    let merged = std::fs::read_to_string(results.join("merged/summary.csv")).unwrap_or_default();
    let one_go = std::fs::read_to_string(dir.join("whole/summary.csv")).unwrap_or_default();
    let shards_written = (0..3)
        .filter(|s| results.join(format!("shard-{s}/class.json")).exists())
        .count();
    drop(made);
    // One submission's file is refused by HAProxy (`listen` with an
    // address, 1.x syntax): the class's exit is 1 both ways, its row says why.
    assert_eq!(
        swarm.status.code(),
        Some(1),
        "grade-class.sh exits as merge does:\n{swarm_said}"
    );
    assert!(
        services.trim().is_empty(),
        "the job's service stayed: {services}"
    );
    assert!(tasks.trim().is_empty(), "task containers stayed: {tasks}");
    assert!(
        swarm_said.contains("3 task(s) on 1 node(s)"),
        "{swarm_said}"
    );
    assert_eq!(shards_written, 3, "each task wrote its shard: {swarm_said}");
    assert_eq!(whole.status.code(), Some(1), "{}", said(&whole));
    assert_eq!(
        rows(&merged).len(),
        7,
        "six submissions and a header: {merged}"
    );
    assert!(
        merged.contains(",PASS,") && merged.contains(",FAIL,"),
        "mixed verdicts: {merged}"
    );
    pretty_assertions::assert_eq!(rows(&merged), rows(&one_go));
}
