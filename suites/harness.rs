//! The harness's own promises, against the real engine: nothing leaks (on
//! panic, on Ctrl-C, after a killed run), parallel runs do not collide, and
//! bad input gets one clear message naming the thing and the fix.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::debian_tool;
use stackproof::docker::{self, LABEL_PID, LABEL_RUN, LABEL_STARTED};
use stackproof::error::Error;
use stackproof::fixtures::Fixtures;
use stackproof::stack::Stack;
use testcontainers::bollard::Docker;
use testcontainers::bollard::models::NetworkCreateRequest;
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
};

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

#[test]
fn a_panicking_test_leaves_nothing_behind() {
    let (tx, rx) = std::sync::mpsc::channel();
    let panicked = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let stack = Stack::start(
                "simple_web",
                stackproof::design::fixtures("simple_web").unwrap(),
            )
            .await
            .unwrap();
            tx.send(stack.run.id.clone()).unwrap();
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

    let swept = docker::sweep_dead_runs(&docker).await.unwrap();
    assert!(
        swept.contains(&dead_run),
        "the dead run was not swept: {swept:?}"
    );
    assert_eq!(resources_with(&docker, LABEL_RUN, &dead_run).await, (0, 0));
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
            stackproof::design::fixtures("simple_web").unwrap()
        ),
        Stack::start(
            "simple_web",
            stackproof::design::fixtures("simple_web").unwrap()
        )
    )
    .unwrap();
    assert_ne!(a.run.id, b.run.id);
    assert_ne!(
        a.networks["public"].prefix, b.networks["public"].prefix,
        "two runs share a subnet"
    );
    for s in [&a, &b] {
        let body = s
            .client
            .fresh
            .get("http://www.foobar.com/static/hello.txt")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.starts_with("Hello from a static file"), "{body}");
        // Each run's client reaches its own server (the TCP peer as the
        // client's socket saw it: on the probe host, the agent's).
        let mark = s.client.mark();
        let resp = s
            .client
            .fresh
            .get("http://www.foobar.com/")
            .send()
            .await
            .unwrap();
        let peer = s.client.peer_of(&resp, mark).unwrap();
        assert_eq!(
            peer.ip(),
            std::net::IpAddr::V4(s.host("server-1").unwrap().main_addr())
        );
    }
    let runs = [a.run.id.clone(), b.run.id.clone()];
    drop((a, b));
    let docker = docker::connect().await.unwrap();
    for run in runs {
        assert_eq!(resources_with(&docker, LABEL_RUN, &run).await, (0, 0));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_the_server_rejects_stops_the_run_with_the_servers_own_words() {
    let dir = std::env::temp_dir().join(format!("sp-bad-{}", rand::random::<u32>()));
    std::fs::create_dir_all(dir.join("services/apache")).unwrap();
    std::fs::write(
        dir.join("services/apache/site.conf"),
        "<VirtualHost *:80>\n    NoSuchDirective on\n</VirtualHost>\n",
    )
    .unwrap();
    let fixtures = stackproof::design::fixtures("simple_web")
        .unwrap()
        .with_overlay(dir.clone())
        .unwrap();
    let err = Stack::start("simple_web", fixtures).await.unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    let text = err.to_string();
    assert!(matches!(err, Error::ConfigRejected { .. }), "{text}");
    assert!(
        text.contains("apache2ctl -t"),
        "the server's own check is not quoted: {text}"
    );
    assert!(
        text.contains("NoSuchDirective"),
        "the server's complaint is not quoted: {text}"
    );
    assert!(
        text.contains(&dir.join("services/apache/site.conf").display().to_string()),
        "the file is not named: {text}"
    );
    // Only the file that is not the library's: the service's own built-in
    // files are not the cause.
    let from = text.lines().next().unwrap_or_default();
    assert!(
        !from.contains(&Fixtures::builtin_dir().display().to_string()),
        "built-in files are named beside the user's: {from}"
    );
}

#[test]
fn unknown_names_say_what_exists() {
    let e = stackproof::catalogue::claims("lamp")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown design `lamp`") && e.contains("simple_web"),
        "{e}"
    );
    // Every design of the catalogue has claims, each named under its design.
    for design in stackproof::catalogue::designs() {
        let design = design.as_str();
        let claims = stackproof::catalogue::claims(design).unwrap();
        assert!(!claims.is_empty(), "{design} has no claims");
        assert!(
            claims
                .iter()
                .all(|c| c.id.starts_with(&format!("{design}."))),
            "{design}: {claims:?}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["check", "simple_web", "--claim", "simple_web.nope"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("unknown claim `simple_web.nope`") && err.contains("simple_web.issue.spof"),
        "{err}"
    );
    // `list` names every design with its claims and mutants, none "not implemented".
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .arg("list")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listed}");
    for design in stackproof::catalogue::designs() {
        assert!(listed.contains(&design), "{listed}");
    }
    assert!(!listed.contains("not implemented"), "{listed}");
}

#[test]
fn no_engine_gets_one_line_saying_how_to_start_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["check", "simple_web"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no Docker engine answers at `unix:///nonexistent/docker.sock`"),
        "{err}"
    );
    assert!(err.contains("systemctl start docker"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
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
        let started = Instant::now();
        while resources_with(&docker, LABEL_PID, &pid).await.0 == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the CLI never started a container"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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

/// A check that stops Apache and then errors out mid-fault, without undoing it.
fn errors_mid_fault<'a>(
    stack: &'a Stack,
    _: &'a stackproof::kinds::Params,
) -> futures::future::BoxFuture<'a, stackproof::claim::CheckResult> {
    Box::pin(async move {
        let _fault = stack
            .apply(stackproof::stack::Fault::StopService("server-1", "apache"))
            .await?;
        Err(stackproof::claim::Failure::not_measured(
            "gave up in the middle of a fault",
            "",
        ))
    })
}

/// A check that stops the whole server and then panics mid-fault.
fn panics_mid_fault<'a>(
    stack: &'a Stack,
    _: &'a stackproof::kinds::Params,
) -> futures::future::BoxFuture<'a, stackproof::claim::CheckResult> {
    Box::pin(async move {
        let _fault = stack
            .apply(stackproof::stack::Fault::StopHost("server-1"))
            .await?;
        panic!("a claim blew up mid-fault");
    })
}

/// A check whose fault cannot be undone: it stops Apache, then removes its binary.
fn breaks_its_own_undo<'a>(
    stack: &'a Stack,
    _: &'a stackproof::kinds::Params,
) -> futures::future::BoxFuture<'a, stackproof::claim::CheckResult> {
    Box::pin(async move {
        let _fault = stack
            .apply(stackproof::stack::Fault::StopService("server-1", "apache"))
            .await?;
        stack
            .host("server-1")?
            .run("mv /usr/sbin/apache2 /usr/sbin/apache2.gone")
            .await?;
        Ok("stopped apache and hid its binary".into())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fault_is_undone_however_its_claim_ends() {
    use stackproof::claim::{self, Claim, Verdict};
    let stack = Stack::start(
        "simple_web",
        stackproof::design::fixtures("simple_web").unwrap(),
    )
    .await
    .unwrap();
    let static_claim = stackproof::catalogue::claims("simple_web")
        .unwrap()
        .into_iter()
        .find(|c| c.id == "simple_web.web.static_by_apache")
        .unwrap();
    for (id, check) in [
        (
            "test.errors_mid_fault",
            errors_mid_fault as stackproof::kinds::KindCheck,
        ),
        ("test.panics_mid_fault", panics_mid_fault),
    ] {
        let broken = Claim::rust(
            id,
            "a claim that ends in the middle of its fault",
            "nothing: it errors or panics mid-fault",
            check,
        );
        let o = claim::run(&stack, &broken).await;
        assert!(
            matches!(o.verdict, Verdict::NotMeasured(_)),
            "{id} should be ERROR: {o:?}"
        );
        assert!(
            !stack.tainted(),
            "{id}: the fault was undone, so the stack is whole"
        );
        let next = claim::run(&stack, &static_claim).await;
        assert!(
            next.verdict.held(),
            "after {id}, the next claim should find the design whole: {}",
            stackproof::report::checklist_line(&next)
        );
    }
    // A fault that cannot be undone taints the stack, and the claim is not a PASS.
    let o = claim::run(
        &stack,
        &Claim::rust(
            "test.breaks_its_own_undo",
            "a claim whose fault cannot be undone",
            "nothing: its fault cannot be undone",
            breaks_its_own_undo,
        ),
    )
    .await;
    assert!(stack.tainted(), "a failed undo must taint the stack");
    assert!(!o.verdict.held(), "{o:?}");
}

/// A check that points www elsewhere in the run's DNS and leaves it so.
fn leaves_www_changed<'a>(
    stack: &'a Stack,
    _: &'a stackproof::kinds::Params,
) -> futures::future::BoxFuture<'a, stackproof::claim::CheckResult> {
    Box::pin(async move {
        stack
            .dns
            .set_a("www", &[std::net::Ipv4Addr::new(172, 28, 0, 99)], 5)
            .await?;
        Ok("pointed www elsewhere".into())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claim_leaves_the_dns_zone_as_it_found_it() {
    use stackproof::claim::{self, Claim, Verdict};
    // The health-checked failover changes www's records and runs a check
    // task: when it stopped that task without waiting for it, a check still
    // connecting to the stopped LB wrote www's answer after the records were
    // put back (www stayed on lb-2's own address). Three times on one stack.
    let stack = Stack::start(
        "scale_up",
        stackproof::design::fixtures("scale_up").unwrap(),
    )
    .await
    .unwrap();
    let vip = stack.dns.a_records("www").await.unwrap();
    let failover = stackproof::catalogue::claims("scale_up")
        .unwrap()
        .into_iter()
        .find(|c| c.id == "scale_up.remedy.dns_failover")
        .unwrap();
    for round in 1..=3 {
        let o = claim::run(&stack, &failover).await;
        assert!(
            o.verdict.held(),
            "round {round}: {}",
            stackproof::report::checklist_line(&o)
        );
        assert_eq!(
            vip,
            stack.dns.a_records("www").await.unwrap(),
            "round {round}: www's records after the claim"
        );
        assert!(!stack.tainted(), "round {round}");
    }
    // A claim that leaves the zone changed is no PASS: the zone is put
    // back and the stack marked, so no later claim measures another design.
    let o = claim::run(
        &stack,
        &Claim::rust(
            "test.leaves_www_changed",
            "a claim that leaves the DNS zone changed",
            "nothing: it changes www and leaves it",
            leaves_www_changed,
        ),
    )
    .await;
    match &o.verdict {
        Verdict::NotMeasured(f) => assert!(
            f.summary.contains("DNS zone was not the design") && f.summary.contains("172.28.0.99"),
            "{}",
            f.summary
        ),
        v => panic!("a claim that changed the zone should be ERROR, not {v:?}"),
    }
    assert!(stack.tainted());
    assert_eq!(vip, stack.dns.a_records("www").await.unwrap(), "put back");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_design_whose_backends_never_come_up_starts_and_its_claims_fail() {
    use stackproof::claim::{self, Verdict};
    // HAProxy checks a page the web servers do not have: every backend DOWN.
    let dir = std::env::temp_dir().join(format!("sp-broken-{}", std::process::id()));
    let cfg = dir.join("services/haproxy/haproxy.cfg");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    let base =
        std::fs::read_to_string(Fixtures::builtin_dir().join("services/haproxy/haproxy.cfg"))
            .unwrap()
            .replace(
                "option httpchk GET /static/hello.txt",
                "option httpchk GET /no-such-page",
            );
    std::fs::write(&cfg, base).unwrap();
    let fixtures = stackproof::design::fixtures("distributed")
        .unwrap()
        .with_overlay(dir.clone())
        .unwrap();
    let started = Stack::start("distributed", fixtures).await;
    std::fs::remove_dir_all(&dir).unwrap();
    let stack = started.expect("the servers start: a broken design is not a start failure");
    let notes = stack.notes.join("\n");
    assert!(
        notes.contains("haproxy") && notes.contains("DOWN") && notes.contains("L7STS"),
        "the note should quote HAProxy's own view of its servers:\n{notes}"
    );
    let rr = stackproof::catalogue::claims("distributed")
        .unwrap()
        .into_iter()
        .find(|c| c.id == "distributed.lb.round_robin")
        .unwrap();
    let o = claim::run(&stack, &rr).await;
    assert!(
        matches!(o.verdict, Verdict::Broken(_)),
        "round-robin over no live backend is a FAIL: {}",
        stackproof::report::checklist_line(&o)
    );
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

#[tokio::test(flavor = "multi_thread")]
async fn every_fault_takes_effect_and_its_guard_undoes_it() {
    use stackproof::stack::Fault;
    let stack = Stack::start(
        "distributed",
        stackproof::design::fixtures("distributed").unwrap(),
    )
    .await
    .unwrap();
    assert!(
        answers(&stack, "lb-1", "server-1").await,
        "server-1 answers before any fault"
    );
    let cut: &[(&str, Fault<'_>, &str)] = &[
        (
            "partition",
            Fault::Partition("lb-1", "server-1", None),
            "server-1",
        ),
        (
            "packet loss",
            Fault::LosePackets("server-1", 1.0),
            "server-1",
        ),
        ("paused host", Fault::PauseHost("server-2"), "server-2"),
        (
            "paused service",
            Fault::PauseService("server-2", "nginx"),
            "server-2",
        ),
        (
            "disconnected",
            Fault::Disconnect("server-2", "public"),
            "server-2",
        ),
    ];
    for (what, fault, target) in cut {
        let guard = stack.apply(fault.clone()).await.unwrap();
        assert!(
            !answers(&stack, "lb-1", target).await,
            "{what}: {target} still answers"
        );
        guard.restore().await.unwrap();
        assert!(
            answers(&stack, "lb-1", target).await,
            "{what}: {target} does not answer after the undo"
        );
    }
    // A partition of one protocol only leaves the web alone.
    let vrrp_only = stack
        .apply(Fault::Partition("lb-1", "server-1", Some("112")))
        .await
        .unwrap();
    assert!(
        answers(&stack, "lb-1", "server-1").await,
        "dropping VRRP must not drop HTTP"
    );
    vrrp_only.restore().await.unwrap();

    // A slow link: 64 kbit/s makes 64 KiB take seconds instead of milliseconds.
    let server = stack.host("server-1").unwrap();
    server
        .run("head -c 65536 /dev/urandom > /var/www/html/static/big.bin")
        .await
        .unwrap();
    let fetch = || async {
        let addr = stack.host("server-1").unwrap().main_addr();
        let started = Instant::now();
        let out = stack
            .host("lb-1")
            .unwrap()
            .exec(&format!(
                "curl -sf -m 20 -o /dev/null http://{addr}/static/big.bin"
            ))
            .await
            .unwrap();
        assert_eq!(out.code, 0, "{}", out.combined());
        started.elapsed()
    };
    let fast = fetch().await;
    let slow_guard = stack.apply(Fault::SlowLink("server-1", 64)).await.unwrap();
    let slow = fetch().await;
    slow_guard.restore().await.unwrap();
    let back = fetch().await;
    println!("64 KiB from server-1: {fast:?} before, {slow:?} at 64 kbit/s, {back:?} after");
    assert!(
        slow > Duration::from_secs(3)
            && fast < Duration::from_secs(1)
            && back < Duration::from_secs(1),
        "64 KiB took {fast:?} before, {slow:?} on a 64 kbit/s link, {back:?} after"
    );

    // A CPU quota shows in the host's own cgroup, and goes with its guard.
    let quota = "cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us";
    let cpu_guard = stack.apply(Fault::CpuQuota("server-1", 0.2)).await.unwrap();
    let limited = server.run(quota).await.unwrap();
    cpu_guard.restore().await.unwrap();
    let lifted = server.run(quota).await.unwrap();
    assert!(limited.contains("20000"), "quota while limited: {limited}");
    assert!(
        lifted.contains("-1") || lifted.contains("max"),
        "quota after: {lifted}"
    );

    // Faults left applied are undone by the runner's sweep, as after a claim.
    let _left = stack.apply(Fault::PauseHost("server-2")).await.unwrap();
    let _also = stack
        .apply(Fault::Partition("lb-1", "server-1", None))
        .await
        .unwrap();
    stack.restore_faults().await.unwrap();
    assert!(!stack.tainted());
    assert!(answers(&stack, "lb-1", "server-1").await && answers(&stack, "lb-1", "server-2").await);
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
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["new", folder.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_design_written_outside_the_repo_runs_from_its_folder_with_a_skipped_claim() {
    let base = outside_the_repo("own-design");
    let folder = base.join("my_site");
    let bin = env!("CARGO_BIN_EXE_stackproof");
    new_design(&folder);
    // A user skips one sentence, with the reason they give.
    let claims = folder.join("claims.toml");
    let text = std::fs::read_to_string(&claims).unwrap().replace(
        "kind = \"outage.restart_downtime\"",
        "kind = \"outage.restart_downtime\"\nskip = \"we deploy with reloads only\"",
    );
    std::fs::write(&claims, text).unwrap();
    // `new` refuses to touch what exists.
    let again = Command::new(bin)
        .args(["new", folder.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let out = Command::new(bin)
        .args(["check", "./my_site"])
        .current_dir(&base)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    std::fs::remove_dir_all(&base).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("PASS  my_site.web.static_by_nginx"),
        "claims are named by the folder: {stdout}"
    );
    assert!(
        stdout.contains("SKIP  my_site.issue.restart_downtime")
            && stdout.contains("we deploy with reloads only"),
        "a skipped claim shows as SKIP with its reason: {stdout}"
    );
    assert!(
        stdout.contains("6 held, 0 broken, 0 not measured, 1 skipped"),
        "{stdout}"
    );
}

#[test]
fn a_claims_file_error_names_the_file_the_line_and_what_exists() {
    let base = outside_the_repo("bad-claims");
    let folder = base.join("site");
    let bin = env!("CARGO_BIN_EXE_stackproof");
    new_design(&folder);
    let claims = folder.join("claims.toml");
    let good = std::fs::read_to_string(&claims).unwrap();
    std::fs::create_dir_all(folder.join("variants/fix")).unwrap();
    let remedy = "[[claim]]\nid = \"site.remedy.x\"\nsays = \"the fix\"\nkind = \"tls.reencrypt_remedy\"\nlb = \"server-1\"\nbackends = [\"server-1\"]\nnetwork = \"public\"\n";
    for (broken, says) in [
        (
            good.replace(
                "points_at = \"server-1\"",
                "points_at = \"server-1\"\nhots = 1",
            ),
            vec!["no parameter `hots`", "points_at", "claims.toml:"],
        ),
        (
            good.replace("host = \"server-1\"", "host = \"web-9\""),
            vec!["no host `web-9`", "server-1"],
        ),
        (
            good.replace("kind = \"db.query_flow\"", "kind = \"db.query_flo\""),
            vec!["no check kind `db.query_flo`", "db.query_flow"],
        ),
        (
            good.replace("fault = \"stop_host\"", "fault = \"reboot\""),
            vec!["`reboot` is not one of", "stop_host"],
        ),
        (
            good.replace("web = \"nginx\"\nserver_header", "server_header"),
            vec!["needs parameter `web`"],
        ),
        // A remedy's variant and the claims that must still hold with it.
        (
            format!("{good}\n{remedy}variant = \"nope\"\n"),
            vec!["no variant `nope`", "variants/nope/"],
        ),
        (
            format!("{good}\n{remedy}still_hold = [\"site.dns.www_a_record\"]\n"),
            vec!["has no `variant`"],
        ),
        (
            format!("{good}\n{remedy}variant = \"fix\"\nstill_hold = [\"site.typo\"]\n"),
            vec!["`still_hold` names `site.typo`", "site.issue.spof"],
        ),
    ] {
        std::fs::write(&claims, &broken).unwrap();
        let out = Command::new(bin)
            .args(["list", folder.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        for s in says {
            assert!(err.contains(s), "`{s}` missing from: {err}");
        }
    }
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn an_installed_binary_finds_its_fixtures_without_the_source_tree() {
    // STACKPROOF_EMBEDDED makes the binary use the copy compiled into it,
    // as `cargo install` then a run from anywhere would.
    let base = outside_the_repo("installed");
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["list", "scale_up"])
        .current_dir(&base)
        .env("STACKPROOF_EMBEDDED", "1")
        .env("XDG_CACHE_HOME", &base)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(listed.contains("scale_up.lb.failover"), "{listed}");
    let unpacked: Vec<_> = std::fs::read_dir(base.join("stackproof"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    std::fs::remove_dir_all(&base).unwrap();
    assert!(
        unpacked.len() == 1 && unpacked[0].starts_with("fixtures-"),
        "{unpacked:?}"
    );
}

#[test]
fn junit_reports_validate_against_the_schema_jenkins_and_gitlab_read() {
    use stackproof::claim::{Failure, Outcome, Verdict};
    use stackproof::report::{RunReport, write_junit};
    let outcome = |id: &str, verdict: Verdict| Outcome {
        id: id.into(),
        says: "a sentence with <markup> & \"quotes\"".into(),
        verdict,
        evidence: "measured: 5 of 5".into(),
        millis: 1234,
        figures: vec![("outage (ms)".into(), 305.0)],
        timelines: Vec::new(),
    };
    let claims = vec![
        outcome("d.lb.round_robin", Verdict::Held),
        outcome(
            "d.lb.health_check",
            Verdict::Broken(Failure::new(
                "HAProxy did not eject it",
                "evidence \u{1b}[31mred\u{1b}[0m",
            )),
        ),
        outcome(
            "d.db.replication",
            Verdict::NotMeasured(Failure::not_measured("Prometheus did not answer", "")),
        ),
        outcome(
            "d.issue.restart_downtime",
            Verdict::Skipped("we deploy with reloads only".into()),
        ),
    ];
    let dir = std::env::temp_dir().join(format!("sp-junit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("report.xml");
    write_junit(
        &file,
        &RunReport {
            design: "d",
            run: "r-1",
            up_ms: 1,
            image_built: false,
            image: "img",
            claims: &claims,
            versions: &[],
        },
    )
    .unwrap();
    let xml = std::fs::read_to_string(&file).unwrap();
    let schema =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/junit-10.xsd");
    let out = Command::new(debian_tool("xmllint", &["libxml2-utils"]))
        .args(["--noout", "--schema"])
        .arg(&schema)
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success(),
        "the JUnit report does not validate:\n{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
    for part in [
        "<failure message=\"HAProxy did not eject it\"",
        "<error message=\"Prometheus did not answer\"",
        "<skipped message=\"we deploy with reloads only\"/>",
        "failures=\"1\" errors=\"1\" skipped=\"1\"",
    ] {
        assert!(xml.contains(part), "`{part}` missing:\n{xml}");
    }
}

#[test]
fn the_html_report_renders_in_chromium_with_the_diagram_and_every_claim() {
    let dir = outside_the_repo("chromium");
    let html = dir.join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["check", "simple_web", "--html"])
        .arg(&html)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let browser = debian_tool("chromium", &["chromium", "fonts-dejavu-core"]);
    let headless = |extra: &[&str]| {
        Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1280,2400",
            ])
            .args(extra)
            .arg(format!("file://{}", html.display()))
            .env("HOME", &dir)
            .output()
            .unwrap()
    };
    // The page as the browser built it, script run.
    let dom = String::from_utf8_lossy(&headless(&["--dump-dom"]).stdout).into_owned();
    let png = dir.join("report.png");
    let shot = headless(&[&format!("--screenshot={}", png.display())]);
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    // Keep the picture for docs/ when asked (STACKPROOF_SCREENSHOT=docs/screenshot-simple_web.png).
    if let Some(keep) = std::env::var_os("STACKPROOF_SCREENSHOT") {
        let _ = std::fs::copy(&png, keep);
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        dom.contains("class=\"topology\""),
        "the diagram is not in the rendered page: {dom}"
    );
    for id in stackproof::catalogue::claims("simple_web")
        .unwrap()
        .iter()
        .map(|c| c.id.clone())
    {
        assert!(dom.contains(&id), "claim {id} is not in the rendered page");
    }
    assert!(
        size > 20_000,
        "the screenshot is {size} bytes: nothing was drawn ({})",
        String::from_utf8_lossy(&shot.stderr)
    );
}

#[test]
fn a_mutant_run_draws_its_broken_part_red_in_the_html_report() {
    let dir = outside_the_repo("mutant-html");
    let html = dir.join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args([
            "check",
            "simple_web",
            "--mutant",
            "second_server",
            "--claim",
            "simple_web.issue.spof",
            "--html",
        ])
        .arg(&html)
        .output()
        .unwrap();
    let page = std::fs::read_to_string(&html).unwrap_or_default();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The mutant's second server is in the picture, and the host the broken claim concerns is red.
    assert!(page.contains("data-host=\"server-2\""), "{page}");
    assert!(page.contains("fill=\"#f8d7da\""), "{page}");
}

#[test]
fn a_listing_cut_short_by_its_reader_ends_quietly() {
    use std::io::Read as _;
    // As `stackproof list scale_up | head -1`: the reader is gone before the
    // listing is written (reading the design takes longer than closing the pipe).
    let mut child = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["list", "scale_up"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(status.success(), "{status:?}: {stderr}");
}

#[test]
fn a_ci_matrixs_reports_merge_into_one_page_one_junit_file_and_one_summary() {
    let dir = std::env::temp_dir().join(format!("sp-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Two shards, as a matrix runs them: one design as it is, one broken.
    for (design, extra) in [
        ("simple_web", &[][..]),
        ("simple_web_nginx", &["--mutant", "no_php_location"][..]),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
            .args(["check", design, "--json"])
            .arg(dir.join(format!("{design}.json")))
            .args(["--claim", &format!("{design}.dns.www_a_record")])
            .args(["--claim", &format!("{design}.app.dynamic_by_php")])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.code().is_some_and(|c| c < 2),
            "{design}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .arg("merge")
        .arg(dir.join("simple_web.json"))
        .arg(dir.join("simple_web_nginx.json"))
        .arg("--html")
        .arg(dir.join("all.html"))
        .arg("--junit")
        .arg(dir.join("all.xml"))
        .arg("--markdown")
        .arg(dir.join("all.md"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let html = std::fs::read_to_string(dir.join("all.html")).unwrap_or_default();
    let md = std::fs::read_to_string(dir.join("all.md")).unwrap_or_default();
    let schema =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/junit-10.xsd");
    let lint = Command::new(debian_tool("xmllint", &["libxml2-utils"]))
        .args(["--noout", "--schema"])
        .arg(&schema)
        .arg(dir.join("all.xml"))
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    // The worst shard decides: the mutant broke a claim.
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("simple_web: 2 held, 0 broken")
            && stdout.contains("simple_web_nginx: 1 held, 1 broken"),
        "{stdout}"
    );
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stderr)
    );
    assert!(
        html.contains("<section id=\"simple_web\">")
            && html.contains("<section id=\"simple_web_nginx\">"),
        "{html}"
    );
    assert_eq!(html.matches("<svg").count(), 2, "a topology per design");
    assert!(html.contains("simple_web_nginx.app.dynamic_by_php"));
    assert!(
        md.contains("## stackproof check simple_web:")
            && md.contains("## stackproof check simple_web_nginx:"),
        "{md}"
    );
}

/// A stack handed to a background removal is still there until the
/// removal is dropped (which waits for it), and then nothing of it is.
#[tokio::test(flavor = "multi_thread")]
async fn a_stack_removed_in_the_background_is_gone_once_its_removal_is_dropped() {
    let stack = Stack::start(
        "simple_web",
        stackproof::design::fixtures("simple_web").unwrap(),
    )
    .await
    .unwrap();
    let run = stack.run.id.clone();
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
    let design = stackproof::design::Design::load("scale_up").unwrap();
    let docker = docker::connect().await.unwrap();
    let image = stackproof::images::ensure_server_image(&docker, &design.fixtures)
        .await
        .unwrap();
    let up = stackproof::compose::hosts_up(&design.spec, &image.tag)
        .await
        .unwrap_or_else(|why| panic!("compose did not start the hosts: {why}"));
    assert_eq!(up.running, design.spec.hosts.len(), "{up:?}");
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

#[test]
fn check_runs_the_claims_after_one_that_left_the_stack_changed_on_a_fresh_stack() {
    // A service that starts once and refuses a second start: the claim
    // that stops it cannot undo its fault, so the stack is no longer the
    // design, and the claims after it must not be measured on it.
    let base = outside_the_repo("tainted");
    let folder = base.join("my_site");
    new_design(&folder);
    std::fs::create_dir_all(folder.join("services/once")).unwrap();
    std::fs::write(
        folder.join("services/once/service.toml"),
        r#"name = "once"
processes = ["onced"]
start = "test ! -e /run/once-started && touch /run/once-started && cp /bin/sleep /usr/local/bin/onced && setsid -f /usr/local/bin/onced infinity"
stop = "pkill -x onced; true"
reload = "true"
kill = "pkill -KILL -x onced; true"
ready = { exec = "pgrep -x onced" }
"#,
    )
    .unwrap();
    let design = folder.join("design.toml");
    let text = std::fs::read_to_string(&design).unwrap().replace(
        r#"services = ["mariadb", "php-fpm", "nginx"]"#,
        r#"services = ["mariadb", "php-fpm", "nginx", "once"]"#,
    );
    std::fs::write(&design, text).unwrap();
    let claims = folder.join("claims.toml");
    let text = std::fs::read_to_string(&claims).unwrap();
    std::fs::write(
        &claims,
        format!(
            r#"[[claim]]
id = "my_site.dns.undo_fails"
says = "a claim whose fault cannot be undone"
kind = "outage.spof"
fault = "stop_service"
service = "once"
hosts = ["server-1"]

{text}"#
        ),
    )
    .unwrap();
    let stdout = cli_ending_with(&["check", folder.to_str().unwrap()], 1);
    std::fs::remove_dir_all(&base).unwrap();
    assert!(
        stdout.contains("FAIL  my_site.dns.undo_fails")
            && stdout.contains(
                "note: my_site.dns.undo_fails left the stack changed; the claims after it run on a fresh one"
            ),
        "{stdout}"
    );
    // On the fresh stack the design is whole again. (The design's own spof
    // claim stops the host, and `once` refuses that restart too: FAIL.)
    for id in [
        "dns.www_a_record",
        "web.static_by_nginx",
        "app.dynamic_by_php",
    ] {
        assert!(
            stdout.contains(&format!("PASS  my_site.{id}")),
            "{id} holds on the fresh stack: {stdout}"
        );
    }
}

/// A host's commands go to shells kept open on it (one exec each, not one
/// per command); each command still sees what a fresh `sh -c` exec would:
/// its own output, error and status, no input, no state from the last one,
/// and a shell that died with its host is replaced without the caller noticing.
#[tokio::test(flavor = "multi_thread")]
async fn a_hosts_commands_see_what_a_fresh_exec_would() {
    use stackproof::host::Host;
    let docker = docker::connect().await.unwrap();
    let image = stackproof::images::ensure_server_image(
        &docker,
        &stackproof::design::fixtures("simple_web").unwrap(),
    )
    .await
    .unwrap();
    let run = docker::RunId::new();
    let _guard = docker::RunGuard::new(&run);
    let host = Host::create_isolated(&docker, &run, &image.tag, "shell")
        .await
        .unwrap();
    let out = |cmd: &'static str| {
        let host = host.clone();
        async move {
            let o = host.exec(cmd).await.unwrap();
            (o.code, o.stdout, o.stderr)
        }
    };
    assert_eq!(out("printf a").await, (0, "a".into(), "".into()));
    assert_eq!(
        out("echo out; echo err >&2; exit 3").await,
        (3, "out\n".into(), "err\n".into())
    );
    assert_eq!(
        out(r#"echo "it's 'quoted'"; printf '\n\n'"#).await,
        (0, "it's 'quoted'\n\n\n".into(), "".into())
    );
    // No input: a command that reads it does not eat the commands after it.
    assert_eq!(out("cat; echo done").await, (0, "done\n".into(), "".into()));
    assert_eq!(out("cd /tmp; X=1; export X").await.0, 0);
    // A signal to its own process group ends the command, not the shell.
    assert_eq!(out("kill -TERM 0; echo unreachable").await.0, 143);
    assert_eq!(
        out("pwd; echo ${X:-unset}").await,
        (0, "/\nunset\n".into(), "".into())
    );
    // At once: each command its own shell, each output its own.
    let many = (0..12).map(|i| {
        let host = host.clone();
        async move { host.exec(&format!("sleep 0.2; echo {i}")).await.unwrap() }
    });
    let outputs = futures::future::join_all(many).await;
    for (i, o) in outputs.iter().enumerate() {
        assert_eq!(o.stdout, format!("{i}\n"));
    }
    // Past its deadline a command is an error, and the next one runs.
    let late = host
        .exec_within("sleep 5", Duration::from_millis(300))
        .await;
    assert!(matches!(late, Err(Error::Timeout { .. })), "{late:?}");
    assert_eq!(out("echo next").await, (0, "next\n".into(), "".into()));
    // Restarted behind the host's back: its kept shells died with it.
    docker
        .restart_container(
            &host.container,
            Some(
                testcontainers::bollard::query_parameters::RestartContainerOptionsBuilder::new()
                    .t(0)
                    .build(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        out("echo after restart").await,
        (0, "after restart\n".into(), "".into())
    );
}
