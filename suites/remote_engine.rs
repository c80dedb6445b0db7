//! A run whose Docker engine is reached over TCP, as a remote engine is
//! (GitLab's `docker:dind`, `DOCKER_HOST=tcp://…`): a relay thread serves
//! the local engine's socket on a loopback port, `stackproof check` is pointed at it,
//! and a capture on the run's own networks shows every claim's traffic
//! leaving from a container (the probe host), none from this machine (the
//! networks' gateways). Its own binary, so no other run's traffic shares
//! the capture; it also keeps to the run's own subnets.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{EngineOverTcp, HostCapture};

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The subnets of the networks labelled with `pid` as their owner, once
/// there are `count` of them (the run creates its networks first of all).
fn subnets_of_run(pid: u32, count: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let out = Command::new("docker")
            .args([
                "network",
                "ls",
                "-q",
                "--filter",
                &format!("label=stackproof.pid={pid}"),
            ])
            .output()
            .expect("docker network ls");
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect();
        if ids.len() >= count {
            let mut args = vec![
                "network",
                "inspect",
                "--format",
                "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
            ];
            args.extend(ids.iter().map(String::as_str));
            let out = Command::new("docker").args(args).output().unwrap();
            return String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(String::from)
                .collect();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the run never created its {count} networks"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the capture saw: TCP and UDP packets by source address.
fn sources(capture: &str) -> BTreeMap<String, usize> {
    let mut by_source = BTreeMap::new();
    for line in capture.lines() {
        // "12:00:00.000000 veth12 Out IP 172.29.7.254.43210 > 172.29.7.10.80: tcp 0"
        let Some(after) = line.split(" IP ").nth(1) else {
            continue;
        };
        let Some(src) = after.split_whitespace().next() else {
            continue;
        };
        // Address and port: keep the four octets.
        let ip: Vec<&str> = src.split('.').take(4).collect();
        *by_source.entry(ip.join(".")).or_insert(0) += 1;
    }
    by_source
}

/// Runs `stackproof check design` against the engine over TCP (with
/// `STACKPROOF_TRAFFIC` as `traffic` says, unset for `None`) while capturing
/// the run's subnets; returns whether every claim held and the TCP and UDP
/// packets seen, by source address.
fn check_over_tcp(
    design: &str,
    networks: usize,
    traffic: Option<&str>,
) -> (bool, BTreeMap<String, usize>, String) {
    // Built (if the engine is empty) before the run whose networks are awaited.
    common::server_image();
    let engine = EngineOverTcp::start();
    let port = engine.port;
    let report = std::env::temp_dir().join(format!("remote-{design}-{}.json", std::process::id()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_stackproof"));
    command
        .args(["check", design, "--json"])
        .arg(&report)
        .env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
        .stdin(Stdio::null());
    match traffic {
        // Unset: the default must be the probe host.
        None => command.env_remove("STACKPROOF_TRAFFIC"),
        Some(t) => command.env("STACKPROOF_TRAFFIC", t),
    };
    let check = Killed(command.spawn().expect("start stackproof check"));
    let pid = check.0.id();
    let subnets = subnets_of_run(pid, networks);
    let filter = format!(
        "({}) and (tcp or udp)",
        subnets
            .iter()
            .map(|s| format!("net {s}"))
            .collect::<Vec<_>>()
            .join(" or ")
    );
    // Longer than any check here takes; dropped (removed) when it ends.
    let mut dump = HostCapture::start(
        &["-i", "any", "-nn", "-q", "-l", &filter],
        Duration::from_secs(900),
    );
    // tcpdump says "listening on any" once it captures.
    let mut err = BufReader::new(dump.child.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("listening") {
        let mut line = String::new();
        let n = err.read_line(&mut line).unwrap();
        said.push_str(&line);
        assert!(n > 0, "tcpdump did not start capturing: {said}");
    }
    let out = dump.child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            all.push_str(&l);
            all.push('\n');
        }
        all
    });

    let mut check = check;
    let status = check.0.wait().expect("stackproof check ran");
    drop(dump);
    let capture = reader.join().unwrap();
    let by_source = sources(&capture);
    eprintln!(
        "{design} over tcp://127.0.0.1:{port} (STACKPROOF_TRAFFIC={}): exit {status}; packets captured on the run's networks ({}) by source: {by_source:?}",
        traffic.unwrap_or("unset"),
        subnets.join(", ")
    );
    let json = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    (status.success(), by_source, json)
}

/// The report's claims that did not hold, one line each with their
/// evidence (the whole report is too long for a CI log's excerpt).
fn not_held(json: &str) -> String {
    let Ok(report) = serde_json::from_str::<serde_json::Value>(json) else {
        return format!("no readable report: {json:?}");
    };
    let claims = report["claims"].as_array().cloned().unwrap_or_default();
    claims
        .iter()
        .filter(|c| c["verdict"] != "PASS" && c["verdict"] != "SKIP")
        .map(|c| format!("{} {}: {}", c["verdict"], c["id"], c["evidence"]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Packets from a network's gateway (this machine) and from the probe host.
fn gateway_and_probe(by_source: &BTreeMap<String, usize>) -> (usize, usize) {
    let from = |suffix: &str| {
        by_source
            .iter()
            .filter(|(ip, _)| ip.ends_with(suffix))
            .map(|(_, n)| n)
            .sum::<usize>()
    };
    (from(".1"), from(".254"))
}

fn assert_all_from_containers(design: &str, networks: usize) {
    let (held, by_source, json) = check_over_tcp(design, networks, None);
    assert!(
        held,
        "every claim of {design} should hold over a TCP engine; did not:\n{}",
        not_held(&json)
    );
    let (gateway, probe) = gateway_and_probe(&by_source);
    assert!(
        probe > 0,
        "the capture saw no packet from the probe host: it proves nothing ({by_source:?})"
    );
    assert_eq!(
        gateway, 0,
        "packets left from this machine (a network's gateway), not from a container: {by_source:?}"
    );
}

// One test, the designs one after the other: two stacks at once on two
// cores would bend the failover timings the claims measure.
#[test]
fn over_a_tcp_engine_every_claim_is_sent_from_a_container() {
    // The control first: the capture does see this machine's packets when
    // the client sends them itself (possible here only because the engine
    // is local behind the relay), so the zero below means something.
    let (_, by_source, _) = check_over_tcp("simple_web", 1, Some("local"));
    let (gateway, probe) = gateway_and_probe(&by_source);
    assert!(
        gateway > 0 && probe == 0,
        "with STACKPROOF_TRAFFIC=local the capture should see packets from the gateway and none from a probe host: {by_source:?}"
    );
    assert_all_from_containers("scale_up", 2);
    assert_all_from_containers("secured_monitored", 2);
}

/// The grading pod's own command (ci/kubernetes/grade-class.yaml), run here
/// as the pod runs it: `sh -c` with JOB_COMPLETION_INDEX set, DOCKER_HOST
/// as the manifest writes it (the engine reached over TCP, as the pod
/// reaches its sidecar), the pod's volumes mapped to temporary folders.
/// Shard 1 of 4 takes the first of four students by name, and only her.
#[test]
fn the_kubernetes_grading_pod_command_grades_its_shard_over_a_tcp_engine() {
    use yaml_rust2::YamlLoader;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("ci/kubernetes/grade-class.yaml")).unwrap();
    let job = YamlLoader::load_from_str(&manifest).unwrap().remove(0);
    let grade = job["spec"]["template"]["spec"]["containers"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str() == Some("grade"))
        .unwrap()
        .clone();
    let command = grade["args"][0].as_str().unwrap();
    let docker_host = grade["env"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some("DOCKER_HOST"))
        .and_then(|e| e["value"].as_str())
        .unwrap()
        .to_string();

    let pod = std::env::temp_dir().join(format!("sp-pod-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&pod);
    for student in ["amy", "bo", "cy", "dee"] {
        let dir = pod.join("class").join(student);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            root.join("tests/configs/haproxy/https_complete.cfg"),
            dir.join("haproxy.cfg"),
        )
        .unwrap();
    }
    // An empty image cache: the engine has the image already.
    std::fs::create_dir_all(pod.join("images")).unwrap();
    std::fs::create_dir_all(pod.join("results")).unwrap();
    let at = |volume: &str| format!("{}/{volume}", pod.display());
    let command = command
        .replace(" /class/", &format!(" {}/", at("class")))
        .replace(" /images", &format!(" {}", at("images")))
        .replace(" /results/", &format!(" {}/", at("results")));

    let engine = EngineOverTcp::start();
    let port = engine.port;
    let (scheme_host, _) = docker_host.rsplit_once(':').unwrap();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_stackproof"))
        .parent()
        .unwrap();
    let started = Instant::now();
    let out = Command::new("sh")
        .args(["-c", &command])
        .env("JOB_COMPLETION_INDEX", "0")
        .env("DOCKER_HOST", format!("{scheme_host}:{port}"))
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "pod command over {scheme_host}:{port}: exit {} in {:.1} s\n{command}\n{stdout}\n{}",
        out.status,
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the pod command failed");
    assert!(stdout.contains("shard 1/4: amy\n"), "{stdout}");
    let class: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(pod.join("results/shard-0/class.json")).unwrap(),
    )
    .unwrap();
    let graded: Vec<&str> = class["submissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(graded, ["amy"]);
    assert!(pod.join("results/shard-0/class.html").exists());
    let _ = std::fs::remove_dir_all(&pod);
}
