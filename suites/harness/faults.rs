//! Faults are applied and undone however a claim ends; a stack a claim
//! left changed is replaced; a host's kept shells behave as fresh execs.

use super::*;

/// A check that stops Apache and then errors out mid-fault, without undoing it.
fn errors_mid_fault<'a>(
    stack: &'a Stack,
    _: &'a stackproof::kinds::Params,
    _: &'a stackproof::Recorder,
) -> futures::future::BoxFuture<'a, stackproof::CheckResult> {
    Box::pin(async move {
        let _fault = stack
            .apply(stackproof::Fault::StopService("server-1", "apache"))
            .await?;
        Err(stackproof::Failure::not_measured(
            "gave up in the middle of a fault",
            "",
        ))
    })
}

/// A check that stops the whole server and then panics mid-fault.
fn panics_mid_fault<'a>(
    stack: &'a Stack,
    _: &'a stackproof::kinds::Params,
    _: &'a stackproof::Recorder,
) -> futures::future::BoxFuture<'a, stackproof::CheckResult> {
    Box::pin(async move {
        let _fault = stack.apply(stackproof::Fault::StopHost("server-1")).await?;
        panic!("a claim blew up mid-fault");
    })
}

/// A check whose fault cannot be undone: it stops Apache, then removes its binary.
fn breaks_its_own_undo<'a>(
    stack: &'a Stack,
    _: &'a stackproof::kinds::Params,
    _: &'a stackproof::Recorder,
) -> futures::future::BoxFuture<'a, stackproof::CheckResult> {
    Box::pin(async move {
        let _fault = stack
            .apply(stackproof::Fault::StopService("server-1", "apache"))
            .await?;
        stack
            .host("server-1")?
            .run("mv /usr/sbin/apache2 /usr/sbin/apache2.gone")
            .await?;
        Ok("stopped apache and hid its binary".into())
    })
}

/// A check that the design's static page is served: the stack is whole.
fn static_page_served<'a>(
    stack: &'a Stack,
    _: &'a stackproof::Params,
    _: &'a stackproof::Recorder,
) -> futures::future::BoxFuture<'a, stackproof::CheckResult> {
    Box::pin(async move {
        let url = format!("http://{}/static/hello.txt", stackproof::WWW);
        let status = stack
            .http()
            .get(&url)
            .send()
            .await
            .map_err(|e| stackproof::Failure::new(format!("GET {url}: {e}"), ""))?
            .status();
        let evidence = format!("GET {url} → {status}");
        stackproof::ensure(status == 200, format!("answered {status}"), &evidence)?;
        Ok(evidence)
    })
}

/// Runs the claims `only` names of `plan` in turn through the one runner:
/// their outcomes, what it said between them (a stack replaced) and the
/// notes of the first stack.
async fn in_turn(
    plan: stackproof::Plan,
    only: &[&str],
) -> (Vec<stackproof::Outcome>, Vec<String>, Vec<String>) {
    use stackproof::{Event, Runner, Schedule};
    use std::sync::Mutex;
    let prepared = plan
        .with_only(only.iter().map(|id| id.to_string()).collect())
        .prepare()
        .await
        .unwrap();
    let (said, notes) = (Mutex::new(Vec::new()), Mutex::new(Vec::new()));
    let ran = Runner::new(prepared)
        .run(Schedule::InTurn, |e| match e {
            Event::Note(n) => said.lock().unwrap().push(n),
            Event::Up(stack) => notes.lock().unwrap().extend(stack.notes().iter().cloned()),
            Event::Ended(_) => {}
        })
        .await
        .unwrap();
    (
        ran.outcomes,
        said.into_inner().unwrap(),
        notes.into_inner().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fault_is_undone_however_its_claim_ends() {
    use stackproof::{Claim, Verdict};
    let whole = |id: &str| {
        Claim::rust(
            id,
            "the design is whole",
            "its static page is served",
            static_page_served,
        )
    };
    let ending = |id: &str, check: stackproof::kinds::KindCheck| {
        Claim::rust(
            id,
            "a claim that ends in the middle of its fault",
            "nothing: it errors, panics or cannot undo its fault",
            check,
        )
    };
    let ids = [
        "simple_web.test.errors_mid_fault",
        "simple_web.test.whole_after_error",
        "simple_web.test.panics_mid_fault",
        "simple_web.test.whole_after_panic",
        "simple_web.test.breaks_its_own_undo",
        "simple_web.test.whole_after_taint",
    ];
    let plan = stackproof::Plan::new("simple_web").with_claims(vec![
        ending(ids[0], errors_mid_fault),
        whole(ids[1]),
        ending(ids[2], panics_mid_fault),
        whole(ids[3]),
        ending(ids[4], breaks_its_own_undo),
        whole(ids[5]),
    ]);
    let (outcomes, said, _) = in_turn(plan, &ids).await;
    let by_id = |id: &str| outcomes.iter().find(|o| o.id == id).unwrap();
    for (ended, next) in [(ids[0], ids[1]), (ids[2], ids[3])] {
        assert!(
            matches!(by_id(ended).verdict, Verdict::Error(_)),
            "{ended} should be ERROR: {:?}",
            by_id(ended).verdict
        );
        assert!(
            by_id(next).verdict.passed(),
            "after {ended}, the next claim should find the design whole: {}",
            stackproof::report::checklist_line(by_id(next))
        );
    }
    // A fault that cannot be undone taints the stack: the claim is not a
    // PASS, and the claim after it runs on a fresh stack, which is whole.
    assert!(!by_id(ids[4]).verdict.passed(), "{:?}", by_id(ids[4]));
    assert!(
        by_id(ids[5]).verdict.passed(),
        "{}",
        stackproof::report::checklist_line(by_id(ids[5]))
    );
    let replaced: Vec<&String> = said
        .iter()
        .filter(|n| n.contains("left the stack changed"))
        .collect();
    assert_eq!(replaced.len(), 1, "{said:?}");
    assert!(replaced[0].starts_with(ids[4]), "{said:?}");
}

/// A check that www resolves, in the run's DNS, to one address that is no
/// LB's own (the design's VIP), not to an LB a failover pointed it at.
fn www_on_the_vip<'a>(
    stack: &'a Stack,
    _: &'a stackproof::Params,
    _: &'a stackproof::Recorder,
) -> futures::future::BoxFuture<'a, stackproof::CheckResult> {
    Box::pin(async move {
        let records = stack.a_records("www").await?;
        let evidence = format!("www → {records:?}");
        let mut own = Vec::new();
        for lb in ["lb-1", "lb-2"] {
            own.push(std::net::IpAddr::V4(stack.host(lb)?.main_addr()));
        }
        stackproof::ensure(records.len() == 1, "www has not one record", &evidence)?;
        stackproof::ensure(
            !own.contains(&records[0]),
            "www is left on an LB's own address",
            &evidence,
        )?;
        Ok(evidence)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claim_leaves_the_dns_zone_as_it_found_it() {
    use stackproof::{Claim, Event, Runner, Schedule};
    // The health-checked failover changes www's records and runs a check
    // task: when it stopped that task without waiting for it, a check still
    // connecting to the stopped LB wrote www's answer after the records were
    // put back (www stayed on lb-2's own address). Three rounds on one
    // stack, www checked after each.
    let prepared = stackproof::Plan::new("scale_up")
        .with_claims(vec![Claim::rust(
            "scale_up.test.www_on_the_vip",
            "www is the VIP between claims",
            "www's one record is no LB's own address",
            www_on_the_vip,
        )])
        .with_only(vec![
            "scale_up.remedy.dns_failover".into(),
            "scale_up.test.www_on_the_vip".into(),
        ])
        .prepare()
        .await
        .unwrap();
    let said = std::sync::Mutex::new(Vec::new());
    let ran = Runner::new(prepared)
        .run(Schedule::Repeated(3), |e| {
            if let Event::Note(n) = e {
                said.lock().unwrap().push(n)
            }
        })
        .await
        .unwrap();
    assert_eq!(ran.outcomes.len(), 2);
    for o in &ran.outcomes {
        assert!(
            o.verdict.passed(),
            "{}",
            stackproof::report::checklist_line(o)
        );
    }
    let said = said.into_inner().unwrap();
    assert!(
        !said.iter().any(|n| n.contains("left the stack changed")),
        "every round on one stack: {said:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_design_whose_backends_never_come_up_starts_and_its_claims_fail() {
    use stackproof::Verdict;
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
    let plan = stackproof::Plan::new("distributed").with_fixtures(Some(dir.clone()));
    let (outcomes, _, notes) = in_turn(plan, &["distributed.lb.round_robin"]).await;
    std::fs::remove_dir_all(&dir).unwrap();
    let notes = notes.join("\n");
    assert!(
        notes.contains("haproxy") && notes.contains("DOWN") && notes.contains("L7STS"),
        "the note should quote HAProxy's own view of its servers:\n{notes}"
    );
    assert!(
        matches!(outcomes[0].verdict, Verdict::Fail(_)),
        "round-robin over no live backend is a FAIL: {}",
        stackproof::report::checklist_line(&outcomes[0])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_is_settled_only_once_it_has_the_primarys_data() {
    let stack = Stack::start(
        "distributed",
        stackproof::Design::fixtures_of("distributed").unwrap(),
    )
    .await
    .unwrap();
    let unsettled: Vec<&String> = stack
        .notes()
        .iter()
        .filter(|n| n.contains("did not settle"))
        .collect();
    assert!(unsettled.is_empty(), "every service settles: {unsettled:?}");
    // The app's user, made on the primary as it starts, is on the replica
    // before the first claim: the first page read through it can succeed.
    let replica = stack.host("server-2").unwrap();
    let users = replica
        .exec("mariadb -N -e \"SELECT COUNT(*) FROM mysql.user WHERE User = 'app'\"")
        .await
        .unwrap();
    assert_eq!(users.stdout.trim(), "1", "the app's user on the replica");
    // Replication stopped: the replica does not settle, in its own words.
    replica.exec("mariadb -e 'STOP SLAVE'").await.unwrap();
    let notes = stack.settle(&["server-2".to_string()]).await;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("`mariadb-replica` on host `server-2`")
                && n.contains("Slave_IO_Running: No")),
        "a stopped replica never settles, quoting SHOW SLAVE STATUS: {notes:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fault_takes_effect_and_its_guard_undoes_it() {
    use stackproof::Fault;
    let stack = Stack::start(
        "distributed",
        stackproof::Design::fixtures_of("distributed").unwrap(),
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
    use stackproof::Host;
    let docker = docker::connect().await.unwrap();
    let image = stackproof::images::ensure_server_image(
        &docker,
        &stackproof::Design::fixtures_of("simple_web").unwrap(),
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

/// A figure past its budget is a FAIL the runner gives, with the figure and
/// the budget, on one run and on a percentile of repeated runs: a failover
/// outage can never be under 1 ms, so a claim that promises that cannot hold.
#[test]
fn a_figure_past_its_budget_fails_the_claim_on_a_run_and_on_a_percentile() {
    let base = outside_the_repo("budget");
    let folder = base.join("my_pair");
    new_design_with(&folder, &["--from", "scale_up"]);
    let claims = folder.join("claims.toml");
    let theirs = std::fs::read_to_string(&claims).unwrap();
    std::fs::write(
        &claims,
        theirs
            + r#"
[[claim]]
id = "my_pair.lb.instant_failover"
says = "the backup takes over without a single lost millisecond"
kind = "vrrp.failover"
master = "lb-1"
backup = "lb-2"
fault = "stop_host"
outage_budget_ms = 1
percentile = 95
"#,
    )
    .unwrap();
    let claim = ["--claim", "my_pair.lb.instant_failover"];
    let once = cli_ending_with(
        &[&["check", folder.to_str().unwrap()][..], &claim].concat(),
        1,
    );
    let twice = cli_ending_with(
        &[
            &["check", folder.to_str().unwrap(), "--repeat", "2"][..],
            &claim,
        ]
        .concat(),
        1,
    );
    std::fs::remove_dir_all(&base).unwrap();
    assert!(
        once.contains("FAIL  my_pair.lb.instant_failover")
            && once.contains("past its budget of 1")
            && once.contains("failover outage (ms) was"),
        "{once}"
    );
    assert!(
        twice.contains("the p95 of failover outage (ms) was past its budget"),
        "{twice}"
    );
}
