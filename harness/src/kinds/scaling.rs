//! Scaling kinds: hosts added to the running design, as an operator would
//! add them, and what that changes (and what it must not).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::common::wait_for;
use super::{Facts, Kind, Param, Params, Ty};
use crate::failure::{CheckResult, Failure, ensure, ensure_eq};
use crate::measure::{self, http};
use crate::probe;
use crate::recorder::Recorder;
use crate::spec::HostSpec;
use crate::stack::{Fault, Stack};

/// The oldest process of each `host/service` (a graceful reload keeps it).
async fn main_pids(stack: &Stack, watched: &[&str]) -> Result<Vec<(String, Vec<u32>)>, Failure> {
    let mut out = Vec::new();
    for hs in watched {
        let (host, service) = hs
            .split_once('/')
            .ok_or_else(|| Failure::not_measured(format!("`{hs}` is not `host/service`"), ""))?;
        let cmd = format!(
            "pgrep -o -x '{}'",
            stack.service(service)?.processes.join("|")
        );
        let pids = stack
            .host(host)?
            .exec(&cmd)
            .await?
            .stdout
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        out.push((hs.to_string(), pids));
    }
    Ok(out)
}

/// `scaling.add_app_server`: the app tier grows alone.
pub const ADD_APP_SERVER: Kind = Kind {
    name: "scaling.add_app_server",
    doc: "A new host `new_host` running `app_service` is added at run time on `network`; the web server on `web` is reconfigured (design variable `var` set to `upstream`, where `{{ new }}` is the new host's address) and reloaded; then `requests` dynamic pages are all answered, both the old app server `app` and the new one served some (by their own access logs), and no process of `unchanged` (`host/service`) restarted.",
    params: &[
        Param::required("web", Ty::Host, "the web server that lists the app servers"),
        Param::required("app", Ty::Host, "the app server already there"),
        Param::required(
            "upstream",
            Ty::Text,
            "the new value of `var`: both app servers (`{{ new }}` is the new one's address)",
        ),
        Param::required(
            "new_host",
            Ty::Text,
            "the added host's name (not a host of the design)",
        ),
        Param::optional("network", Ty::Network, "its network", "\"private\""),
        Param::optional(
            "web_service",
            Ty::Service,
            "the web server's service",
            "\"nginx\"",
        ),
        Param::optional(
            "app_service",
            Ty::Service,
            "the app server's service",
            "\"php-fpm\"",
        ),
        Param::optional(
            "var",
            Ty::Text,
            "the design variable listing the app servers",
            "\"php_upstream\"",
        ),
        Param::optional(
            "unchanged",
            Ty::HostServices,
            "`host/service` that must not restart (each must run there: checked when the design is read, and again before the new host comes, so a service a mutant removed is a FAIL, not a silent pass)",
            "[]",
        ),
        Param::optional("requests", Ty::Int, "dynamic pages sent", "10"),
    ],
    example: r#"
[[claim]]
id = "my_site.tiers.scale_independently"
says = "each layer can be scaled independently"
kind = "scaling.add_app_server"
web = "web-1"
app = "app-1"
new_host = "app-2"
upstream = "server {{ app-1.private }}:9000; server {{ new }}:9000;"
unchanged = ["lb-1/haproxy", "web-1/nginx", "db-1/mariadb"]"#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(add_app_server),
};

async fn add_app_server(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    let (web, app, new_name) = (p.host("web"), p.host("app"), p.text("new_host"));
    let (web_service, app_service) = (p.text("web_service"), p.text("app_service"));
    let unchanged = p.list("unchanged");
    let n = p.int("requests") as usize;
    let before = main_pids(stack, &unchanged).await?;
    // Nothing running to compare is no evidence that nothing restarted.
    if let Some((hs, _)) = before.iter().find(|(_, pids)| pids.is_empty()) {
        return Err(Failure::new(
            format!(
                "precondition not met: `{hs}` runs no process before the new host comes, so whether it restarts cannot be seen"
            ),
            format!("before: {before:?}"),
        ));
    }
    let spec = HostSpec {
        name: new_name.into(),
        networks: vec![p.text("network").into()],
        services: vec![app_service.into()],
        memory_mib: None,
        vars: Default::default(),
    };
    let started = Instant::now();
    let added = stack
        .apply(Fault::AddHost(&spec, &Default::default()))
        .await?;
    let host = added.added_host().expect("an added host");
    let new_addr = host.main_addr();
    let upstream = BTreeMap::from([(
        p.text("var").to_string(),
        p.text("upstream")
            .replace("{{ new }}", &new_addr.to_string()),
    )]);
    let log = super::common::access_log(stack, app_service)?.to_string();
    let result = async {
        let reconfigured = stack
            .apply(Fault::Reconfigure(web, web_service, &upstream))
            .await?;
        let added_in = started.elapsed();
        let old_before = measure::log_lines(stack.host(app)?, &log).await?;
        let new_before = measure::log_lines(&host, &log).await?;
        let ok = probe::successes(
            &stack.client.fresh,
            std::iter::repeat_n(http("/index.php"), n),
        )
        .await;
        let old_grew = measure::log_lines(stack.host(app)?, &log).await? - old_before;
        let new_grew = measure::log_lines(&host, &log).await? - new_before;
        let after = main_pids(stack, &unchanged).await?;
        reconfigured.restore().await?;
        Ok::<_, Failure>((added_in, ok, old_grew, new_grew, after))
    }
    .await;
    let removed = added.restore().await;
    let (added_in, ok, old_grew, new_grew, after) = result?;
    removed?;
    let restarted: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b.1 != a.1)
        .map(|(b, _)| b.0.as_str())
        .collect();
    let evidence = format!(
        "{new_name} ({new_addr}) added and {web_service} on {web} reloaded in {} ms; {ok} of {n} dynamic pages answered; {app_service} served {app} +{old_grew}, {new_name} +{new_grew}; restarted elsewhere: {}",
        added_in.as_millis(),
        if restarted.is_empty() {
            "none".to_string()
        } else {
            restarted.join(", ")
        }
    );
    ensure_eq("dynamic pages answered", n, ok, &evidence)?;
    ensure(
        old_grew > 0 && new_grew > 0,
        "not both app servers served",
        &evidence,
    )?;
    ensure(
        restarted.is_empty(),
        "another tier restarted while the app tier grew",
        &evidence,
    )?;
    Ok(evidence)
}

/// `scaling.add_replica`: a replica added at run time takes the reads.
pub const ADD_REPLICA: Kind = Kind {
    name: "scaling.add_replica",
    doc: "A new host `new_host` running `replica_service` is added, replicating from `primary`; once it has caught up, the app on `app` is reconfigured to read from it (design variable `var`); then `requests` reads and `requests` writes are answered 200, and the application user's own counters (USER_STATISTICS) show the reads on the replica only and the writes on the primary only.",
    params: &[
        Param::required("primary", Ty::Host, "the primary database's host"),
        Param::required("app", Ty::Host, "the app server's host"),
        Param::required(
            "new_host",
            Ty::Text,
            "the added replica's name (not a host of the design)",
        ),
        Param::optional("network", Ty::Network, "its network", "\"private\""),
        Param::optional(
            "replica_service",
            Ty::Service,
            "the replica's service",
            "\"mariadb-replica\"",
        ),
        Param::optional(
            "app_service",
            Ty::Service,
            "the app server's service",
            "\"php-fpm\"",
        ),
        Param::optional(
            "var",
            Ty::Text,
            "the design variable naming where the app reads",
            "\"db_read_host\"",
        ),
        Param::optional(
            "user",
            Ty::Text,
            "the application's database user",
            "\"app\"",
        ),
        Param::optional("requests", Ty::Int, "reads and writes sent", "6"),
    ],
    example: r#"
[[claim]]
id = "my_site.remedy.replication"
says = "introduce replication"
kind = "scaling.add_replica"
primary = "db-1"
app = "app-1"
new_host = "db-2""#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(add_replica),
};

async fn add_replica(stack: &Stack, p: &Params, rec: &Recorder) -> CheckResult {
    let (primary_name, app, new_name) = (p.host("primary"), p.host("app"), p.text("new_host"));
    let user = p.text("user");
    let n = p.int("requests");
    let spec = HostSpec {
        name: new_name.into(),
        networks: vec![p.text("network").into()],
        services: vec![p.text("replica_service").into()],
        memory_mib: None,
        vars: Default::default(),
    };
    let added = stack
        .apply(Fault::AddHost(&spec, &Default::default()))
        .await?;
    let host = added.added_host().expect("an added host");
    let new_addr = host.main_addr();
    let result = async {
        rec.waiting_for(&format!("{new_name} to catch up with {primary_name}"));
        // Caught up: the app's table exists and holds the primary's rows.
        let caught_up = wait_for(Duration::from_secs(10), || async {
            host.exec("mariadb -N -e 'SELECT COUNT(*) FROM foobar.greetings'")
                .await
                .is_ok_and(|o| o.code == 0)
        })
        .await;
        let reads = BTreeMap::from([(p.text("var").to_string(), new_addr.to_string())]);
        let reconfigured = stack
            .apply(Fault::Reconfigure(app, p.text("app_service"), &reads))
            .await?;
        let primary = stack.host(primary_name)?;
        let count = |h| async move {
            Ok::<_, Failure>((
                measure::user_stat(h, user, "SELECT_COMMANDS").await?,
                measure::user_stat(h, user, "ROWS_INSERTED").await?,
            ))
        };
        let (b1, b2) = (count(primary).await?, count(&host).await?);
        let urls: Vec<String> = ["/index.php", "/write.php"]
            .iter()
            .flat_map(|path| vec![http(path); n as usize])
            .collect();
        let ok = probe::successes(&stack.client.fresh, urls).await;
        let (a1, a2) = (count(primary).await?, count(&host).await?);
        reconfigured.restore().await?;
        Ok::<_, Failure>((
            caught_up,
            ok,
            (a1.0 - b1.0, a1.1 - b1.1),
            (a2.0 - b2.0, a2.1 - b2.1),
        ))
    }
    .await;
    let removed = added.restore().await;
    let (caught_up, ok, on1, on2) = result?;
    removed?;
    let evidence = format!(
        "{new_name} ({new_addr}) added, replicating from {primary_name} ({}); app reads pointed at it; {n} reads + {n} writes, {ok} answered 200; the `{user}` user's (SELECTs, rows inserted): {primary_name} +{on1:?}, {new_name} +{on2:?}",
        caught_up
            .map(|d| format!("caught up in {} ms", d.as_millis()))
            .unwrap_or_else(|| "never caught up".into())
    );
    ensure_eq("requests answered 200", 2 * n as usize, ok, &evidence)?;
    ensure_eq(
        &format!("(SELECTs, inserts) on {primary_name}"),
        (0, n),
        on1,
        &evidence,
    )?;
    ensure_eq(
        &format!("(SELECTs, inserts) on {new_name}"),
        (n, 0),
        on2,
        &evidence,
    )?;
    Ok(evidence)
}

/// `host.memory_isolation`: a hog meets its host's limit, and the rest keeps serving.
pub const MEMORY_ISOLATION: Kind = Kind {
    name: "host.memory_isolation",
    doc: "A process allocating `hog_mib` MiB on `host` is killed by the kernel's OOM killer inside that host's memory limit (its cgroup's own OOM count grows; exit status 137), `service` there still runs, and a probe of the site every 20 ms meanwhile sees no failure.",
    params: &[
        Param::required("host", Ty::Host, "the host with a memory limit"),
        Param::optional(
            "service",
            Ty::Service,
            "the service there that must survive",
            "\"php-fpm\"",
        ),
        Param::optional(
            "hog_mib",
            Ty::Int,
            "how much the hog allocates (well over the limit)",
            "600",
        ),
        Param::optional(
            "path",
            Ty::Text,
            "the page probed meanwhile",
            "\"/static/hello.txt\"",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.remedy.resource_isolation"
says = "use containers to enforce boundaries"
kind = "host.memory_isolation"
host = "app-1""#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(memory_isolation),
};

async fn memory_isolation(stack: &Stack, p: &Params, rec: &Recorder) -> CheckResult {
    let (name, service, hog_mib) = (p.host("host"), p.text("service"), p.int("hog_mib"));
    let h = stack.host(name)?;
    // cgroup v1 or v2, whichever the engine gives the container.
    let limit = h
        .run("cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
        .await?
        .trim()
        .to_string();
    let ooms = "grep -h '^oom_kill ' /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null | awk '{print $2}' | head -1";
    let oom_before: u64 = h.run(ooms).await?.trim().parse().unwrap_or(0);
    let hog = format!("head -c {hog_mib}M /dev/zero | tail > /dev/null; echo $?");
    let (report, hog_out) = probe::probe_through(
        &stack.client.fresh,
        &http(p.text("path")),
        Duration::from_millis(20),
        Duration::from_millis(200),
        2000,
        h.exec_within(&hog, Duration::from_secs(60)),
    )
    .await;
    let hog_out = hog_out?;
    crate::failure::ensure_measured(
        report.sent() > 0,
        "the probe sent no request",
        &report.summary(),
    )?;
    rec.record_timeline(
        &format!("a {hog_mib} MiB memory hog on {name}"),
        &report,
        None,
    );
    let oom_after: u64 = h.run(ooms).await?.trim().parse().unwrap_or(0);
    let alive = !stack.pids(name, service).await?.is_empty();
    let limit_mib = limit
        .parse::<u64>()
        .map(|b| format!("{} MiB", b / 1048576))
        .unwrap_or(limit.clone());
    let evidence = format!(
        "{name}'s memory limit {limit_mib}; a {hog_mib} MiB hog there ended with status {}, kernel OOM kills {oom_before} → {oom_after}; {service} {}; the site meanwhile: {}",
        hog_out.stdout.trim(),
        if alive { "still running" } else { "GONE" },
        report.summary()
    );
    ensure(
        hog_out.stdout.trim() == "137" && oom_after > oom_before,
        format!("the hog was not stopped by {name}'s memory limit"),
        &evidence,
    )?;
    ensure(
        alive,
        format!("{service} on {name} did not survive the hog"),
        &evidence,
    )?;
    ensure_eq(
        "failed requests during the hog",
        0,
        report.failed(),
        &evidence,
    )?;
    Ok(evidence)
}
