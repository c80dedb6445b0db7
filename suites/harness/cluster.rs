//! The manifests that grade a class on a Kubernetes cluster (ci/kubernetes/) say
//! what `grade --shard` and `merge` need: no cluster runs here, so this
//! reads them as the API server would and checks they agree with the CLI.

use yaml_rust2::{Yaml, YamlLoader};

fn manifest(name: &str) -> Yaml {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ci/kubernetes")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut docs = YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{name}: one document");
    docs.remove(0)
}

/// The container named `name` of a Job's pod (an init container too).
fn container<'a>(job: &'a Yaml, name: &str) -> &'a Yaml {
    let pod = &job["spec"]["template"]["spec"];
    ["containers", "initContainers"]
        .iter()
        .filter_map(|list| pod[*list].as_vec())
        .flatten()
        .find(|c| c["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no container `{name}`"))
}

#[test]
fn the_grading_job_gives_each_pod_its_own_shard_and_engine() {
    let job = manifest("grade-class.yaml");
    assert_eq!(job["apiVersion"].as_str(), Some("batch/v1"));
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let shards = spec["completions"].as_i64().unwrap();
    assert_eq!(
        spec["parallelism"].as_i64(),
        Some(shards),
        "every shard at once"
    );
    assert_eq!(
        spec["template"]["spec"]["restartPolicy"].as_str(),
        Some("Never")
    );
    let grade = container(&job, "grade");
    let command = grade["args"][0].as_str().unwrap();
    assert!(command.contains(" && stackproof grade "), "{command}");
    // Index 0..N-1 becomes slice 1..N of N, each shard its own folder.
    assert!(
        command.contains(&format!("--shard $((JOB_COMPLETION_INDEX + 1))/{shards}")),
        "{command}"
    );
    assert!(
        command.contains("--out /results/shard-$JOB_COMPLETION_INDEX"),
        "{command}"
    );
    // The engine beside it, reached where DOCKER_HOST says.
    let env = grade["env"].as_vec().unwrap();
    let docker_host = env
        .iter()
        .find(|e| e["name"].as_str() == Some("DOCKER_HOST"))
        .and_then(|e| e["value"].as_str())
        .unwrap();
    let engine = container(&job, "engine");
    assert!(engine["image"].as_str().unwrap().starts_with("docker:"));
    assert_eq!(
        engine["securityContext"]["privileged"].as_bool(),
        Some(true)
    );
    // A sidecar: started first, ready before the grader, stopped after it
    // (a plain second container would keep the pod, and the Job, running).
    let init: Vec<&str> = spec["template"]["spec"]["initContainers"]
        .as_vec()
        .expect("the engine is an init container")
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(init, ["engine"]);
    assert_eq!(engine["restartPolicy"].as_str(), Some("Always"));
    let probe = engine["startupProbe"]["exec"]["command"].as_vec().unwrap();
    let probe: Vec<&str> = probe.iter().map(|a| a.as_str().unwrap()).collect();
    assert!(probe.contains(&"info"), "{probe:?}");
    let listens = engine["args"][0].as_str().unwrap();
    let port = docker_host.rsplit(':').next().unwrap();
    assert!(
        docker_host.starts_with("tcp://localhost:") && listens.ends_with(&format!(":{port}")),
        "{docker_host} vs {listens}"
    );
    // Every volume a container mounts is one the pod has.
    let volumes: Vec<&str> = spec["template"]["spec"]["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    for c in [grade, engine] {
        for m in c["volumeMounts"].as_vec().unwrap() {
            assert!(volumes.contains(&m["name"].as_str().unwrap()), "{m:?}");
        }
    }
}

#[test]
fn the_merging_job_reads_every_shards_class_json() {
    let job = manifest("merge-class.yaml");
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let command = container(&job, "merge")["args"][0].as_str().unwrap();
    assert!(
        command.starts_with("stackproof merge /results/shard-*/class.json"),
        "{command}"
    );
    for flag in ["--html", "--csv", "--junit", "--markdown"] {
        assert!(command.contains(flag), "{command}");
    }
    // The flags the manifests use are the CLI's own.
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["merge", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in ["--html", "--csv", "--junit", "--markdown"] {
        assert!(help.contains(flag), "{help}");
    }
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["grade", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in ["--shard", "--out", "--html"] {
        assert!(help.contains(flag), "{help}");
    }
}
