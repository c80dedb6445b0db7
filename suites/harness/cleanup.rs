//! Nothing leaks: a panicking test, a killed run, runs side by side,
//! Ctrl-C, stacks removed in the background, prewarmed hosts.

use super::*;

#[test]
fn a_panicking_test_leaves_nothing_behind() {
    let (tx, rx) = std::sync::mpsc::channel();
    let panicked = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let stack = Stack::start(
                "simple_web",
                stackproof::Design::fixtures_of("simple_web").unwrap(),
            )
            .await
            .unwrap();
            tx.send(stack.run_id().to_string()).unwrap();
            panic!("a claim blew up mid-run");
        })
    })
    .join();
    assert!(panicked.is_err(), "the thread should have panicked");
    let run = rx.recv().expect("the stack started before the panic");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let docker = docker::connect().await.unwrap();
        assert_eq!(
            resources_with(&docker, LABEL_RUN, &run).await,
            (0, 0),
            "run {run} left resources after a panic"
        );
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_runs_leftovers_are_swept_and_a_live_run_is_not() {
    let docker = docker::connect().await.unwrap();
    // A pid that surely is gone: a child we started and reaped.
    let mut child = Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let make = |run: &str, pid: u32| NetworkCreateRequest {
        name: format!("sp-test-{run}"),
        internal: Some(true),
        labels: Some(HashMap::from([
            (LABEL_RUN.to_string(), run.to_string()),
            (LABEL_PID.to_string(), pid.to_string()),
            (LABEL_STARTED.to_string(), "0".to_string()),
        ])),
        ..Default::default()
    };
    let dead_run = format!("dead-{}", rand::random::<u32>());
    let live_run = stackproof::docker::RunId::new();
    docker
        .create_network(make(&dead_run, dead_pid))
        .await
        .unwrap();
    let mut live = NetworkCreateRequest {
        name: format!("sp-test-{}", live_run.id),
        internal: Some(true),
        ..Default::default()
    };
    live.labels = Some(live_run.labels());
    docker.create_network(live).await.unwrap();

    // Swept by this call, or by another test's stack starting meanwhile
    // (every start sweeps): either way it is gone, and the live run is not.
    let swept = docker::sweep_dead_runs(&docker).await.unwrap();
    assert_eq!(
        resources_with(&docker, LABEL_RUN, &dead_run).await,
        (0, 0),
        "the dead run was not swept: {swept:?}"
    );
    assert_eq!(
        resources_with(&docker, LABEL_RUN, &live_run.id).await,
        (0, 1),
        "a live run was swept"
    );
    docker::remove_run(&docker, &live_run.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_runs_at_once_do_not_collide() {
    let (a, b) = tokio::try_join!(
        Stack::start(
            "simple_web",
            stackproof::Design::fixtures_of("simple_web").unwrap()
        ),
        Stack::start(
            "simple_web",
            stackproof::Design::fixtures_of("simple_web").unwrap()
        )
    )
    .unwrap();
    assert_ne!(a.run_id(), b.run_id());
    let addr = |s: &Stack| s.host("server-1").unwrap().main_addr();
    assert_ne!(addr(&a), addr(&b), "two runs share a subnet");
    // Each run's client reaches its own server: the request marked with its
    // run's id is in its own server's access log and not in the other's.
    for s in [&a, &b] {
        let url = format!("http://www.foobar.com/static/hello.txt?run={}", s.run_id());
        let body = s
            .http()
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.starts_with("Hello from a static file"), "{body}");
    }
    for (s, other) in [(&a, &b), (&b, &a)] {
        let log = s
            .host("server-1")
            .unwrap()
            .run("cat /var/log/apache2/access.log")
            .await
            .unwrap();
        assert!(log.contains(&format!("run={}", s.run_id())), "{log}");
        assert!(!log.contains(&format!("run={}", other.run_id())), "{log}");
    }
    let runs = [a.run_id().to_string(), b.run_id().to_string()];
    drop((a, b));
    let docker = docker::connect().await.unwrap();
    for run in runs {
        assert_eq!(resources_with(&docker, LABEL_RUN, &run).await, (0, 0));
    }
}

/// Waits (up to 2 minutes) until process `pid` has `n` containers.
async fn wait_for_containers_of(docker: &Docker, pid: &str, n: usize) {
    let started = Instant::now();
    while resources_with(docker, LABEL_PID, pid).await.0 < n {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "process {pid} never started {n} container(s)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn ctrl_c_of_the_cli_removes_its_run() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["check", "simple_web"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let docker = docker::connect().await.unwrap();
        wait_for_containers_of(&docker, &pid, 1).await;
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.code(), Some(130), "exit after Ctrl-C: {stderr}");
        assert_eq!(
            resources_with(&docker, LABEL_PID, &pid).await,
            (0, 0),
            "Ctrl-C left resources behind"
        );
    });
}

/// A run killed with SIGKILL (no handler runs, no later run sweeps) leaves
/// nothing: its process's reaper removes every container and network
/// labelled with the process within seconds, and then itself.
#[test]
fn a_run_killed_with_sigkill_leaves_nothing_with_no_later_run() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["check", "simple_web"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let docker = docker::connect().await.unwrap();
        wait_for_containers_of(&docker, &pid, 2).await;
        assert_eq!(
            resources_with(&docker, "stackproof.reaper", &pid).await.0,
            1,
            "the run has its reaper"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let killed = Instant::now();
        loop {
            let left = resources_with(&docker, LABEL_PID, &pid).await;
            let reaper = resources_with(&docker, "stackproof.reaper", &pid).await;
            if left == (0, 0) && reaper.0 == 0 {
                break;
            }
            assert!(
                killed.elapsed() < Duration::from_secs(15),
                "15 s after SIGKILL: {left:?} of the run and {} reaper(s) left",
                reaper.0
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!(
            "nothing left {} ms after SIGKILL",
            killed.elapsed().as_millis()
        );
    });
}

/// A stack handed to a background removal is still there until the
/// removal is dropped (which waits for it), and then nothing of it is.
#[tokio::test(flavor = "multi_thread")]
async fn a_stack_removed_in_the_background_is_gone_once_its_removal_is_dropped() {
    let stack = Stack::start(
        "simple_web",
        stackproof::Design::fixtures_of("simple_web").unwrap(),
    )
    .await
    .unwrap();
    let run = stack.run_id().to_string();
    let removal = stack.remove_in_background();
    drop(removal);
    let docker = docker::connect().await.unwrap();
    assert_eq!(resources_with(&docker, LABEL_RUN, &run).await, (0, 0));
}

/// The bench's docker-compose side starts the design's hosts for real and
/// removes all of it, labelled as a run of this process.
#[tokio::test(flavor = "multi_thread")]
async fn the_compose_comparison_starts_the_same_hosts_and_leaves_nothing() {
    debian_tool("docker-compose", &["docker-compose"]);
    let design = stackproof::Design::load("scale_up").unwrap();
    let docker = docker::connect().await.unwrap();
    let image = stackproof::images::ensure_server_image(&docker, design.fixtures())
        .await
        .unwrap();
    let up = stackproof::compose::hosts_up(&design, &image.tag)
        .await
        .unwrap_or_else(|why| panic!("compose did not start the hosts: {why}"));
    assert_eq!(up.running, design.host_names().len(), "{up:?}");
    assert!(up.took > Duration::ZERO);
    assert_eq!(
        resources_with(&docker, LABEL_RUN, &up.run).await,
        (0, 0),
        "the compose run left something behind"
    );
}

/// A process that starts stack after stack (here `bench --runs 2`) starts
/// the later one on hosts made while the first ran its claims, and the
/// spare made after the last one, which nobody takes, is removed too.
#[test]
fn a_later_stack_starts_on_hosts_made_meanwhile_and_nothing_is_left() {
    let stdout = cli_leaving_nothing(&["bench", "simple_web", "--runs", "2"]);
    // min, median, max of the two runs: the later stack waited for no host.
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("hosts created and started"))
        .unwrap_or_else(|| panic!("no hosts figure in:\n{stdout}"));
    let min: f64 = line
        .split_whitespace()
        .rev()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unreadable: {line}"));
    assert!(
        min < 100.0,
        "the later stack made its own hosts ({min} ms): {line}"
    );
}

/// `check --stacks 2` shares the claims out between two stacks of the
/// design: every claim is reported once, in catalogue order, and both
/// stacks are gone when it exits.
#[test]
fn check_on_two_stacks_reports_every_claim_once_in_order_and_leaves_nothing() {
    let stdout = cli_leaving_nothing(&["check", "simple_web", "--stacks", "2"]);
    assert_eq!(
        stdout.matches(" up in ").count(),
        2,
        "two stacks started:\n{stdout}"
    );
    let reported: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("PASS "))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(reported.len(), 7, "{stdout}");
    let mut unique = reported.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 7, "a claim reported twice:\n{stdout}");
    // In the checklist's order: grouped by part, parts in catalogue order.
    let part_index = |id: &str| {
        let part = stackproof::report::part(id);
        stackproof::report::PARTS.iter().position(|p| *p == part)
    };
    let parts: Vec<_> = reported.iter().map(|id| part_index(id)).collect();
    assert!(
        parts.windows(2).all(|w| w[0] <= w[1]),
        "not in the checklist's order:\n{stdout}"
    );
}
