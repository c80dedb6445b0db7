//! The benchmark's comparison with docker-compose: the same hosts as a
//! design (image, command, capabilities, memory limits, networks and
//! addresses) started by `docker-compose up -d`, timed from the command's
//! start to its exit (compose's own start-up included, as a user pays it).
//!
//! Services are not started on either side of this figure: compose would
//! need a start script and a healthcheck per host to do what our readiness
//! does, which would compare a different program. So it is compared with
//! the part of our start that does the same work (the stack's `hosts_up` time).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::design::Design;
use crate::docker::{RunGuard, RunId};
use crate::network::FIRST_HOST;
use crate::spec::DesignSpec;

/// How long compose may take to answer or to start the hosts (it takes
/// about 1.5 s for scale_up's six): past it, no figure, and the run's guard
/// removes whatever it made.
const DEADLINE: Duration = Duration::from_secs(120);

/// What `docker-compose up -d` did with a design's hosts.
#[derive(Debug)]
pub struct ComposeUp {
    /// From the command's start to its exit.
    pub took: Duration,
    /// The run its resources were labelled with (all removed by now).
    pub run: String,
    /// Its containers that were running when it exited.
    pub running: usize,
}

/// How long `docker-compose up -d` took to create and start `spec`'s hosts,
/// or why it could not be measured (compose not installed, it failed, it
/// left a host not running). Everything it created carries the run's
/// labels and is removed on return.
pub async fn hosts_up(design: &Design, image: &str) -> std::result::Result<ComposeUp, String> {
    let spec = &design.spec;
    let found = tokio::time::timeout(
        DEADLINE,
        tokio::process::Command::new("docker-compose")
            .arg("version")
            .kill_on_drop(true)
            .output(),
    )
    .await;
    if !found.is_ok_and(|o| o.is_ok_and(|o| o.status.success())) {
        return Err("docker-compose is not installed (apt-get install docker-compose)".into());
    }
    let docker = crate::docker::connect().await.map_err(|e| e.chain())?;
    let run = RunId::new();
    let _guard = RunGuard::new(&run);
    let dir = std::env::temp_dir().join(format!("stackproof-compose-{}", run.id));
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let _dir = crate::tempdir::TempDir::adopt(dir.clone());
    let file = dir.join("docker-compose.yml");
    // A random subnet per network, as ours are; a clash with a live run
    // makes compose fail, which is reported, never retried into a figure.
    let subnets: Vec<(String, [u8; 3])> = spec
        .networks
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                [172, rand::random_range(28..32), rand::random_range(0..=255)],
            )
        })
        .collect();
    std::fs::write(&file, compose_file(spec, image, &run, &subnets))
        .map_err(|e| format!("write {}: {e}", file.display()))?;
    let started = Instant::now();
    let up = tokio::time::timeout(
        DEADLINE,
        tokio::process::Command::new("docker-compose")
            .args(["-p", &run.name("compose"), "-f"])
            .arg(&file)
            .args(["up", "-d", "--no-build"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| format!("docker-compose up did not finish within {DEADLINE:?}"))?
    .map_err(|e| format!("run docker-compose: {e}"))?;
    let took = started.elapsed();
    if !up.status.success() {
        return Err(format!(
            "docker-compose up failed: {}",
            String::from_utf8_lossy(&up.stderr).trim()
        ));
    }
    let filter = std::collections::HashMap::from([(
        "label",
        vec![format!("{}={}", crate::docker::LABEL_RUN, run.id)],
    )]);
    let running = docker
        .list_containers(Some(
            testcontainers::bollard::query_parameters::ListContainersOptionsBuilder::new()
                .filters(&filter)
                .build(),
        ))
        .await
        .map_err(|e| format!("list compose's containers: {e}"))?
        .len();
    if running != spec.hosts.len() {
        return Err(format!(
            "docker-compose left {running} of {} hosts running",
            spec.hosts.len()
        ));
    }
    Ok(ComposeUp {
        took,
        run: run.id.clone(),
        running,
    })
}

/// The compose file: one service per host, every resource labelled as a run's.
fn compose_file(
    spec: &DesignSpec,
    image: &str,
    run: &RunId,
    subnets: &[(String, [u8; 3])],
) -> String {
    let labels: String = run
        .labels()
        .iter()
        .map(|(k, v)| format!("      {k}: \"{v}\"\n"))
        .collect();
    let mut out = String::from("version: \"2.4\"\nservices:\n");
    for (i, h) in spec.hosts.iter().enumerate() {
        let octet = FIRST_HOST as usize + i;
        let _ = write!(
            out,
            "  {name}:\n    image: {image}\n    hostname: {name}\n    command: [\"tini\", \"-s\", \"--\", \"sleep\", \"infinity\"]\n    cap_add: [NET_ADMIN, NET_RAW]\n    labels:\n{labels}",
            name = h.name
        );
        if let Some(m) = h.memory_mib {
            let _ = write!(out, "    mem_limit: {m}m\n    memswap_limit: {m}m\n");
        }
        out.push_str("    networks:\n");
        for n in &h.networks {
            let p = subnets
                .iter()
                .find(|(name, _)| name == n)
                .expect("a declared network")
                .1;
            let _ = writeln!(
                out,
                "      {n}:\n        ipv4_address: {}.{}.{}.{octet}",
                p[0], p[1], p[2]
            );
        }
    }
    out.push_str("networks:\n");
    for (name, p) in subnets {
        let _ = write!(
            out,
            "  {name}:\n    internal: true\n    labels:\n{}    ipam:\n      config:\n        - subnet: {}.{}.{}.0/24\n",
            labels, p[0], p[1], p[2]
        );
    }
    out
}
