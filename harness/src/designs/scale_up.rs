//! scale_up: a load-balancer pair holding a VIP (HAProxy + keepalived,
//! VRRP) over split tiers: web-1 (Nginx) → app-1 (PHP-FPM) → db-1 (MariaDB).
//! Design file: `fixtures/designs/scale_up/design.toml`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::FutureExt;
use hickory_proto::rr::RecordType;

use super::www_addresses;
use super::{prometheus, req_failed, wait_for};
use crate::claim::{CheckResult, Claim, Failure, ensure, ensure_eq};
use crate::client::{self, DnsTransport};
use crate::dns::HealthCheck;
use crate::fixtures::render;
use crate::measure::{self, FPM_ACCESS_LOG, NGINX_ACCESS_LOG, http};
use crate::probe;
use crate::spec::HostSpec;
use crate::stack::{Fault, FaultGuard, Stack, WWW};

const LBS: [&str; 2] = ["lb-1", "lb-2"];
const MASTER: &str = "lb-1";
const BACKUP: &str = "lb-2";
const WEB: &str = "web-1";
const APP: &str = "app-1";
const DB: &str = "db-1";
const APP_USER: &str = "app";
const STATIC: &str = "/static/hello.txt";
/// DESIGN.md's budget for a load-balancer failover outage.
const FAILOVER_BUDGET: Duration = Duration::from_secs(1);
/// The failover probe's interval: fine enough to time a sub-second outage.
const FAILOVER_PROBE: Duration = Duration::from_millis(20);
/// How long the probe keeps going after the VIP moved, to show service is back.
const FAILOVER_SETTLE: Duration = Duration::from_millis(1500);
/// Samples of who holds the VIP, and their spacing.
const VIP_SAMPLES: usize = 20;
const VIP_SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// How long keepalived's health script may take to give up the VIP: its
/// interval (1 s) × fall (1), plus the backup's takeover (3 adverts of 0.1 s)
/// and slack.
const CRASH_FAILOVER_BUDGET: Duration = Duration::from_millis(3000);
/// VRRP is IP protocol 112 (not UDP or TCP): the partition drops only it.
const VRRP_PROTOCOL: &str = "112";
/// How long the backup may take to claim the VIP once it hears no adverts:
/// 3 adverts of 0.1 s plus skew, with ample slack.
const SPLIT_WAIT: Duration = Duration::from_secs(5);
/// How long the split is held, to see what clients get meanwhile.
const SPLIT_HOLD: Duration = Duration::from_secs(1);
/// Requests sent while something is down.
const DOWN_REQUESTS: usize = 10;
/// The QPS claim: N requests at a fixed rate.
const QPS_REQUESTS: usize = 40;
const QPS_INTERVAL: Duration = Duration::from_millis(50);
/// Reads and writes for the database claims.
const DB_REQUESTS: u64 = 6;
/// The memory hog's appetite: well over app-1's 256 MiB limit.
const HOG_MIB: u64 = 600;
/// Our own polling's share of the DNS failover budget (we ask every 50 ms).
const DNS_POLL_SLACK: Duration = Duration::from_millis(250);
/// The longest the DNS failover claim waits for a dead address to go,
/// well inside the claim's own deadline.
const DNS_MAX_WAIT: Duration = Duration::from_secs(60);
/// The HostDown rule's window: scrape every 1 s, `for: 2s`, evaluation every 1 s, plus slack.
const ALERT_WINDOW: Duration = Duration::from_millis(6000);

/// The claims of scale_up, in CLAIMS.md order.
pub fn claims() -> Vec<Claim> {
    vec![
        super::builtin(
            "scale_up.dns.www_to_vip",
            "users reach the cluster",
            "www's A record is the VIP",
            check!(www_to_vip),
        ),
        super::builtin(
            "scale_up.lb.single_master",
            "a primary LB with a backup",
            "exactly one LB holds the VIP at any sample",
            check!(single_master),
        ),
        super::builtin(
            "scale_up.lb.failover",
            "if the primary fails, the backup takes over seamlessly",
            "stop lb-1's host during a probe loop: the VIP moves to lb-2; report the measured outage (ms) and failed requests; it stays under the budget and every request after it succeeds",
            check!(failover),
        ),
        super::builtin(
            "scale_up.lb.haproxy_crash_failover",
            "fault tolerance",
            "kill only the HAProxy process on the master: keepalived's health script moves the VIP",
            check!(haproxy_crash_failover),
        ),
        super::builtin(
            "scale_up.tiers.split",
            "split components, each on its own server",
            "web-1 runs no PHP or mysqld, app-1 no web server or mysqld, db-1 only mysqld",
            check!(split),
        ),
        super::builtin(
            "scale_up.tiers.web_to_app",
            "the web server sends dynamic work to the app server",
            "with every tier up a dynamic page is 200; app-1's PHP-FPM stopped: dynamic pages 502, static pages still 200",
            check!(web_to_app),
        ),
        super::builtin(
            "scale_up.tiers.scale_independently",
            "each layer can be scaled independently",
            "add app-2 at run time: both app servers serve, no other tier restarted",
            check!(scale_independently),
        ),
        super::builtin(
            "scale_up.issue.both_lbs_down",
            "if both LBs fail the system is down",
            "both stopped: 0 of N requests succeed",
            check!(both_lbs_down),
        ),
        super::builtin(
            "scale_up.remedy.dns_failover",
            "use DNS-based failover",
            "two LB addresses behind health-checked DNS, seen through a caching resolver: the record carries the design's TTL, and a dead LB's address stops being returned within the design's TTL + check interval + check timeout",
            check!(dns_failover),
        ),
        super::builtin(
            "scale_up.issue.db_bottleneck",
            "a single database takes all writes and reads",
            "with db-1 alone, all reads and writes raise db-1's counters",
            check!(db_bottleneck),
        ),
        super::builtin(
            "scale_up.remedy.replication",
            "introduce replication",
            "with db-2 added, reads move to db-2 and writes stay on db-1",
            check!(replication),
        ),
        super::builtin(
            "scale_up.remedy.resource_isolation",
            "use containers to enforce boundaries",
            "a memory hog on app-1 is stopped inside app-1's limit; web-1 keeps serving",
            check!(resource_isolation),
        ),
        super::builtin(
            "scale_up.monitoring.qps_from_access_logs",
            "parse access logs for QPS",
            "QPS from the web server's access log is N/T ± 10 %",
            check!(qps_from_access_logs),
        ),
        super::builtin(
            "scale_up.monitoring.access_logs_parsed",
            "enable access logs and parse them using tools like Prometheus",
            "mtail turns web-1's access log into a request counter (by method and status) that Prometheus scrapes; N HEAD requests sent at a fixed rate raise it by N ± 10 %, so its rate equals the sent rate ± 10 %",
            check!(access_logs_parsed),
        ),
        super::builtin(
            "scale_up.issue.split_brain",
            "(not in the text: what a careful reader must know about an LB pair)",
            "with the VRRP adverts between lb-1 and lb-2 dropped (IP protocol 112) while clients reach both, both hold the VIP; reports how soon, for how long and how many client requests failed; one master again once the adverts flow",
            check!(split_brain),
        ),
        super::builtin(
            "scale_up.monitoring.resources",
            "track CPU, memory, disk I/O",
            "the monitoring server holds CPU, memory and disk series for every host",
            check!(resources),
        ),
        super::builtin(
            "scale_up.monitoring.alert_on_down",
            "alert administrators for downtime",
            "stopping a host fires an alert within the rule's window",
            check!(alert_on_down),
        ),
    ]
}

/// www's A record is the VIP.
async fn www_to_vip(stack: &Stack) -> CheckResult {
    let seen = www_addresses(stack).await?;
    let vip = stack.vars["public.vip"].clone();
    let evidence = format!(
        "{WWW} → {}; the VIP is {vip}; held by {}",
        seen.join(", "),
        holders(stack).await?.join(", ")
    );
    ensure_eq("www's A records", vec![vip], seen, &evidence)?;
    Ok(evidence)
}

/// The load balancers that hold the VIP right now (by their own interfaces).
async fn holders(stack: &Stack) -> Result<Vec<String>, Failure> {
    let vip = &stack.vars["public.vip"];
    // Both load balancers asked at once: a sample is one moment, not two.
    let asks = LBS.map(|lb| async move {
        let h = stack.host(lb)?;
        // A stopped host holds nothing.
        let o = h
            .exec_within("ip -4 -o addr show", Duration::from_secs(5))
            .await;
        Ok::<_, Failure>(
            matches!(o, Ok(ref o) if o.stdout.contains(&format!("inet {vip}/")))
                .then(|| lb.to_string()),
        )
    });
    Ok(futures::future::try_join_all(asks)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// Waits until exactly `lb` holds the VIP; returns how long that took.
async fn wait_holder(
    stack: &Stack,
    lb: &str,
    deadline: Duration,
) -> Result<Option<Duration>, Failure> {
    wait_holders(stack, deadline, |h| h == [lb.to_string()]).await
}

/// Polls the VIP's holders every 20 ms until `want` accepts them, at most
/// `deadline`; returns how long that took.
async fn wait_holders(
    stack: &Stack,
    deadline: Duration,
    want: impl Fn(&[String]) -> bool,
) -> Result<Option<Duration>, Failure> {
    let started = Instant::now();
    while started.elapsed() < deadline {
        if want(&holders(stack).await?) {
            return Ok(Some(started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(None)
}

/// Exactly one LB holds the VIP at every sample.
async fn single_master(stack: &Stack) -> CheckResult {
    let mut samples = Vec::new();
    for _ in 0..VIP_SAMPLES {
        samples.push(holders(stack).await?);
        tokio::time::sleep(VIP_SAMPLE_EVERY).await;
    }
    let bad: Vec<&Vec<String>> = samples.iter().filter(|s| s.len() != 1).collect();
    let evidence = format!(
        "{VIP_SAMPLES} samples {} ms apart: {} with exactly one holder ({}){}",
        VIP_SAMPLE_EVERY.as_millis(),
        VIP_SAMPLES - bad.len(),
        samples.first().map(|s| s.join("+")).unwrap_or_default(),
        bad.first()
            .map(|b| format!("; a bad sample: [{}]", b.join(", ")))
            .unwrap_or_default()
    );
    ensure_eq(
        "samples without exactly one VIP holder",
        0,
        bad.len(),
        &evidence,
    )?;
    Ok(evidence)
}

/// Undoes the faults on the load balancers and waits until the master holds the VIP again.
async fn restore_lb_pair(stack: &Stack, faults: Vec<FaultGuard<'_>>) -> Result<(), Failure> {
    for fault in faults {
        fault.restore().await?;
    }
    wait_holder(stack, MASTER, Duration::from_secs(10))
        .await?
        .ok_or_else(|| {
            Failure::new(
                format!("{MASTER} did not take the VIP back after the fault"),
                "",
            )
        })?;
    Ok(())
}

/// lb-1's host stopped during a probe loop: the VIP moves to lb-2, the
/// outage is measured, and every request after it succeeds.
async fn failover(stack: &Stack) -> CheckResult {
    let before = holders(stack).await?;
    let (report, applied) = probe::probe_through(
        &stack.client.probe,
        &http(STATIC),
        FAILOVER_PROBE,
        FAILOVER_SETTLE,
        5000,
        async {
            let fault = stack.apply(Fault::StopHost(MASTER)).await?;
            let moved = wait_holder(stack, BACKUP, Duration::from_secs(10)).await?;
            Ok::<_, Failure>((fault, moved))
        },
    )
    .await;
    let (fault, moved) = applied?;
    crate::claim::ensure_measured(
        report.sent() > 0,
        "the probe sent no request",
        &report.summary(),
    )?;
    ensure(
        matches!(report.samples[0].result, Ok(200..=299)),
        "the site did not answer before the fault",
        &report.summary(),
    )?;
    let after = holders(stack).await;
    restore_lb_pair(stack, vec![fault]).await?;
    let after = after?;
    let last_fail = report
        .samples
        .iter()
        .rposition(|s| !matches!(s.result, Ok(200..=299)));
    stack.record("failover outage (ms)", report.outage_ms() as f64);
    stack.record("failover failed requests", report.failed() as f64);
    if let Some(d) = moved {
        stack.record("failover VIP moved (ms)", d.as_millis() as f64);
    }
    let after_outage_ok = match last_fail {
        Some(i) => {
            report.samples[i + 1..]
                .iter()
                .all(|s| matches!(s.result, Ok(200..=299)))
                && i + 1 < report.samples.len()
        }
        None => true,
    };
    let evidence = format!(
        "probe every {} ms; VIP on [{}] before, [{}] after {MASTER} was stopped (moved in {}); {}; budget {} ms{}",
        FAILOVER_PROBE.as_millis(),
        before.join(", "),
        after.join(", "),
        moved
            .map(|d| format!("{} ms", d.as_millis()))
            .unwrap_or_else(|| "never".into()),
        report.summary(),
        FAILOVER_BUDGET.as_millis(),
        report
            .first_error()
            .map(|e| format!("; first error: {e}"))
            .unwrap_or_default()
    );
    ensure_eq(
        "VIP holder before",
        vec![MASTER.to_string()],
        before,
        &evidence,
    )?;
    ensure_eq(
        "VIP holder after",
        vec![BACKUP.to_string()],
        after,
        &evidence,
    )?;
    ensure(
        report.outage_ms() < FAILOVER_BUDGET.as_millis(),
        "the outage exceeded the budget",
        &evidence,
    )?;
    ensure(
        after_outage_ok,
        "requests kept failing after the failover",
        &evidence,
    )?;
    Ok(evidence)
}

/// Only HAProxy killed on the master: keepalived's health script moves the VIP.
async fn haproxy_crash_failover(stack: &Stack) -> CheckResult {
    let before = holders(stack).await?;
    ensure_eq(
        "VIP holder before HAProxy is killed",
        vec![MASTER.to_string()],
        before.clone(),
        "",
    )?;
    let fault = stack.apply(Fault::KillService(MASTER, "haproxy")).await?;
    let moved = wait_holder(stack, BACKUP, CRASH_FAILOVER_BUDGET * 2).await;
    let (ok, err) = probe::burst(&stack.client.fresh, &http(STATIC), DOWN_REQUESTS).await;
    let restarted = fault.restore().await;
    let back = wait_holder(stack, MASTER, Duration::from_secs(10)).await;
    let moved = moved?;
    restarted?;
    if let Some(d) = moved {
        stack.record("HAProxy crash: VIP moved (ms)", d.as_millis() as f64);
    }
    let evidence = format!(
        "VIP on [{}]; HAProxy killed on {MASTER} (keepalived left running): VIP on {BACKUP} after {} (budget {} ms); then {ok} of {DOWN_REQUESTS} requests succeeded{}; HAProxy restarted: VIP back on {MASTER} {}",
        before.join(", "),
        moved
            .map(|d| format!("{} ms", d.as_millis()))
            .unwrap_or_else(|| "never".into()),
        CRASH_FAILOVER_BUDGET.as_millis(),
        err.map(|e| format!(" (first error: {e})"))
            .unwrap_or_default(),
        match back? {
            Some(d) => format!("after {} ms", d.as_millis()),
            None => "never".into(),
        }
    );
    ensure(
        moved.is_some_and(|d| d <= CRASH_FAILOVER_BUDGET),
        "the VIP did not leave the LB whose HAProxy died",
        &evidence,
    )?;
    ensure_eq(
        "requests that succeeded after the VIP moved",
        DOWN_REQUESTS,
        ok,
        &evidence,
    )?;
    Ok(evidence)
}

/// web-1 runs no PHP or mysqld, app-1 no web server or mysqld, db-1 only mysqld.
async fn split(stack: &Stack) -> CheckResult {
    // Any web server, any PHP-FPM version, MariaDB or MySQL.
    let probes = [
        ("web", &["nginx", "apache2", "httpd"][..]),
        ("php", &["php-fpm[0-9.]*"][..]),
        ("db", &["mariadbd", "mysqld"][..]),
    ];
    let mut seen = Vec::new();
    for host in [WEB, APP, DB] {
        let h = stack.host(host)?;
        let mut running = Vec::new();
        for (kind, names) in probes {
            let out = h.exec(&format!("pgrep -x '{}'", names.join("|"))).await?;
            if out.code == 0 {
                running.push(kind.to_string());
            }
        }
        seen.push((host.to_string(), running));
    }
    let evidence = seen
        .iter()
        .map(|(h, r)| format!("{h} runs [{}]", r.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    let expected: Vec<(String, Vec<String>)> = [(WEB, "web"), (APP, "php"), (DB, "db")]
        .iter()
        .map(|(h, k)| (h.to_string(), vec![k.to_string()]))
        .collect();
    ensure_eq("what each tier's host runs", expected, seen, &evidence)?;
    Ok(evidence)
}

/// The app server on app-1 stopped: dynamic pages 502, static pages still 200.
/// (We stop PHP-FPM rather than the whole host: a refused connection is
/// Nginx's 502 at once, where a vanished host is a timeout, 504, seconds later.)
async fn web_to_app(stack: &Stack) -> CheckResult {
    let before = status(stack, "/index.php").await;
    // A web tier that never served a dynamic page proves nothing by failing one now.
    ensure_eq(
        "dynamic page status with every tier up",
        "200".to_string(),
        before.clone(),
        &format!("dynamic page {before} with {APP} up"),
    )?;
    let fault = stack.apply(Fault::StopService(APP, "php-fpm")).await?;
    let dynamic = status(stack, "/index.php").await;
    let static_ = status(stack, STATIC).await;
    let restored = fault.restore().await;
    let after = status(stack, "/index.php").await;
    restored?;
    let evidence = format!(
        "dynamic page {before} with {APP} up; PHP-FPM on {APP} stopped: dynamic {dynamic}, static {static_}; PHP-FPM back: dynamic {after}"
    );
    ensure_eq(
        "(dynamic, static) status with the app server stopped",
        ("502".to_string(), "200".to_string()),
        (dynamic, static_),
        &evidence,
    )?;
    Ok(evidence)
}

async fn status(stack: &Stack, path: &str) -> String {
    match stack.client.fresh.get(http(path)).send().await {
        Ok(r) => r.status().as_u16().to_string(),
        Err(e) => format!("error ({})", probe::error_chain(&e)),
    }
}

/// Both LBs stopped: no request succeeds.
async fn both_lbs_down(stack: &Stack) -> CheckResult {
    let (ok_before, _) = probe::burst(&stack.client.fresh, &http(STATIC), 3).await;
    ensure(
        ok_before == 3,
        format!("before the fault only {ok_before} of 3 requests succeeded"),
        "",
    )?;
    let mut faults = Vec::new();
    for lb in LBS {
        faults.push(stack.apply(Fault::StopHost(lb)).await?);
    }
    let (ok, err) = probe::burst(&stack.client.probe, &http(STATIC), DOWN_REQUESTS).await;
    // The web tier itself was fine all along: reachable directly.
    let direct = stack
        .client
        .fresh
        .get(format!("http://{}{STATIC}", stack.host(WEB)?.main_addr()))
        .send()
        .await;
    restore_lb_pair(stack, faults).await?;
    let evidence = format!(
        "both load balancers stopped: {ok} of {DOWN_REQUESTS} requests to {WWW} succeeded{}; web-1 directly: {}",
        err.map(|e| format!(" (first error: {e})"))
            .unwrap_or_default(),
        match &direct {
            Ok(r) => r.status().to_string(),
            Err(e) => probe::error_chain(e),
        }
    );
    ensure(
        direct.is_ok_and(|r| r.status().is_success()),
        "web-1 itself was down, so this proves nothing about the LBs",
        &evidence,
    )?;
    ensure_eq(
        "requests that succeeded with both LBs down",
        0,
        ok,
        &evidence,
    )?;
    Ok(evidence)
}

/// With db-1 alone, the app's reads and writes all raise db-1's own counters.
async fn db_bottleneck(stack: &Stack) -> CheckResult {
    let db = stack.host(DB)?;
    let selects = measure::user_stat(db, APP_USER, "SELECT_COMMANDS").await?;
    let inserts = measure::user_stat(db, APP_USER, "ROWS_INSERTED").await?;
    let urls: Vec<String> = ["/index.php", "/write.php"]
        .iter()
        .flat_map(|p| vec![http(p); DB_REQUESTS as usize])
        .collect();
    let ok = probe::successes(&stack.client.fresh, urls).await;
    ensure_eq("requests answered 200", 2 * DB_REQUESTS as usize, ok, "")?;
    let selects = measure::user_stat(db, APP_USER, "SELECT_COMMANDS").await? - selects;
    let inserts = measure::user_stat(db, APP_USER, "ROWS_INSERTED").await? - inserts;
    let evidence = format!(
        "{DB_REQUESTS} reads and {DB_REQUESTS} writes, {ok} answered 200; on {DB} the `{APP_USER}` user's SELECTs +{selects}, rows inserted +{inserts}"
    );
    ensure_eq(
        "(SELECTs, rows inserted) on db-1",
        (DB_REQUESTS, DB_REQUESTS),
        (selects, inserts),
        &evidence,
    )?;
    Ok(evidence)
}

/// QPS computed from web-1's own access log matches the rate we sent, ± 10 %.
async fn qps_from_access_logs(stack: &Stack) -> CheckResult {
    let marker = format!("qps{:08x}", rand::random::<u32>());
    let started = Instant::now();
    let mut tick = tokio::time::interval(QPS_INTERVAL);
    let mut sent_at = Vec::new();
    for i in 0..QPS_REQUESTS {
        tick.tick().await;
        sent_at.push(started.elapsed());
        let path = format!("{STATIC}?{marker}-{i}");
        let _ = stack
            .client
            .pooled
            .get(http(&path))
            .send()
            .await
            .map_err(|e| req_failed(&path, &e))?;
    }
    let sent_span = (sent_at[QPS_REQUESTS - 1] - sent_at[0]).as_secs_f64();
    let sent_qps = (QPS_REQUESTS - 1) as f64 / sent_span;
    measure::log_lines(stack.host(WEB)?, NGINX_ACCESS_LOG).await?;
    let log = stack
        .host(WEB)?
        .run(&format!("grep '{marker}-' {NGINX_ACCESS_LOG} || true"))
        .await?;
    let times: Vec<f64> = log
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    let (count, log_qps) = match (times.first(), times.last()) {
        (Some(first), Some(last)) if times.len() > 1 && last > first => {
            (times.len(), (times.len() - 1) as f64 / (last - first))
        }
        _ => (times.len(), 0.0),
    };
    let error = if sent_qps > 0.0 {
        (log_qps - sent_qps).abs() / sent_qps * 100.0
    } else {
        100.0
    };
    stack.record("access-log QPS error (%)", error);
    let evidence = format!(
        "sent {QPS_REQUESTS} requests every {} ms: {sent_qps:.1} qps; web-1's access log has {count} of them: {log_qps:.1} qps; error {error:.1} % (allowed 10 %)",
        QPS_INTERVAL.as_millis()
    );
    ensure_eq(
        "requests found in the access log",
        QPS_REQUESTS,
        count,
        &evidence,
    )?;
    ensure(
        error <= 10.0,
        "the access-log QPS is off by more than 10 %",
        &evidence,
    )?;
    Ok(evidence)
}

/// The parsed-log counter of HEAD requests as Prometheus holds it, or
/// `None` when Prometheus has no healthy mtail target to hold it from.
async fn parsed_heads(stack: &Stack) -> Result<Option<f64>, Failure> {
    let up = prometheus(stack, "up{job=\"mtail\"}").await?;
    if !up.iter().any(|r| r["value"][1].as_str() == Some("1")) {
        return Ok(None);
    }
    let rows = prometheus(stack, "sum(nginx_http_requests_total{method=\"HEAD\"})").await?;
    // Before the first HEAD request mtail has no such series: a true 0,
    // since the target itself is up.
    Ok(Some(
        rows.first()
            .and_then(|r| r["value"][1].as_str()?.parse().ok())
            .unwrap_or(0.0),
    ))
}

/// The access log parsed by mtail into a counter Prometheus scrapes: our
/// HEAD requests (the load balancers' health checks are GETs, so HEAD is
/// ours alone) raise it by what we sent, ± 10 %.
async fn access_logs_parsed(stack: &Stack) -> CheckResult {
    // A fresh monitoring server needs a scrape or two.
    let _ = wait_for(Duration::from_secs(10), || async {
        parsed_heads(stack).await.is_ok_and(|v| v.is_some())
    })
    .await;
    let Some(before) = parsed_heads(stack).await? else {
        return Err(Failure::new(
            "Prometheus has no mtail target that is up: the parsed access log is not monitored",
            format!(
                "up{{job=\"mtail\"}}: {:?}",
                prometheus(stack, "up{job=\"mtail\"}").await?
            ),
        ));
    };
    let started = Instant::now();
    let mut tick = tokio::time::interval(QPS_INTERVAL);
    let mut answered = 0;
    for _ in 0..QPS_REQUESTS {
        tick.tick().await;
        if stack
            .client
            .pooled
            .head(http(STATIC))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            answered += 1;
        }
    }
    let span = started.elapsed().as_secs_f64();
    // Until a scrape shows every request, or it stops growing.
    let mut after = before;
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = parsed_heads(stack).await?.unwrap_or(after);
        if now - before >= QPS_REQUESTS as f64
            || (now == after && settle.elapsed() > Duration::from_secs(3))
        {
            after = now;
            break;
        }
        after = now;
    }
    let counted = after - before;
    let sent_qps = QPS_REQUESTS as f64 / span;
    let parsed_qps = counted / span;
    let error = (parsed_qps - sent_qps).abs() / sent_qps * 100.0;
    stack.record("parsed access log QPS error (%)", error);
    let evidence = format!(
        "sent {QPS_REQUESTS} HEAD requests in {span:.2} s ({answered} answered): {sent_qps:.1} qps; mtail's counter in Prometheus {before} → {after}: {parsed_qps:.1} qps; error {error:.1} % (allowed 10 %)"
    );
    crate::claim::ensure_measured(answered > 0, "no request was answered", &evidence)?;
    ensure(
        error <= 10.0,
        "the rate parsed from the access log is off by more than 10 %",
        &evidence,
    )?;
    Ok(evidence)
}

/// The process ids of the services that must not restart while another tier changes.
async fn tier_pids(stack: &Stack) -> Result<Vec<(String, Vec<u32>)>, Failure> {
    let mut out = Vec::new();
    for (host, service) in [
        ("lb-1", "haproxy"),
        ("lb-2", "haproxy"),
        (WEB, "nginx"),
        (APP, "php-fpm"),
        (DB, "mariadb-primary"),
    ] {
        // Nginx's workers are replaced by a graceful reload; its master is not.
        let cmd = match service {
            "nginx" => "cat /run/nginx.pid".to_string(),
            _ => format!(
                "pgrep -o -x '{}'",
                stack.service(service)?.processes.join("|")
            ),
        };
        let pids = stack
            .host(host)?
            .run(&cmd)
            .await?
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        out.push((format!("{host}/{service}"), pids));
    }
    Ok(out)
}

/// app-2 added at run time: both app servers serve, no other tier restarted.
async fn scale_independently(stack: &Stack) -> CheckResult {
    let before = tier_pids(stack).await?;
    let app2 = HostSpec {
        name: "app-2".into(),
        networks: vec!["private".into()],
        services: vec!["php-fpm".into()],
        memory_mib: None,
        vars: Default::default(),
    };
    let started = Instant::now();
    let added = stack
        .apply(Fault::AddHost(&app2, &Default::default()))
        .await?;
    let host = added.added_host().expect("an added host");
    let app2_addr = host.main_addr();
    let upstream = BTreeMap::from([(
        "php_upstream".to_string(),
        format!("server {{{{ app-1.private }}}}:9000; server {app2_addr}:9000;"),
    )]);
    let result = async {
        let reconfigured = stack
            .apply(Fault::Reconfigure(WEB, "nginx", &upstream))
            .await?;
        let added_in = started.elapsed();
        let fpm1 = measure::log_lines(stack.host(APP)?, FPM_ACCESS_LOG).await?;
        let fpm2 = measure::log_lines(&host, FPM_ACCESS_LOG).await?;
        let urls = std::iter::repeat_n(http("/index.php"), DOWN_REQUESTS);
        let ok = probe::successes(&stack.client.fresh, urls).await;
        let grew1 = measure::log_lines(stack.host(APP)?, FPM_ACCESS_LOG).await? - fpm1;
        let grew2 = measure::log_lines(&host, FPM_ACCESS_LOG).await? - fpm2;
        let after = tier_pids(stack).await?;
        reconfigured.restore().await?;
        Ok::<_, Failure>((added_in, ok, grew1, grew2, after))
    }
    .await;
    let removed = added.restore().await;
    let (added_in, ok, grew1, grew2, after) = result?;
    removed?;
    let restarted: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b.1 != a.1)
        .map(|(b, _)| b.0.as_str())
        .collect();
    let evidence = format!(
        "app-2 ({app2_addr}) added and Nginx reloaded in {} ms; {ok} of {DOWN_REQUESTS} dynamic pages answered; PHP-FPM served app-1 +{grew1}, app-2 +{grew2}; restarted elsewhere: {}",
        added_in.as_millis(),
        if restarted.is_empty() {
            "none".to_string()
        } else {
            restarted.join(", ")
        }
    );
    ensure_eq("dynamic pages answered", DOWN_REQUESTS, ok, &evidence)?;
    ensure(
        grew1 > 0 && grew2 > 0,
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

/// Health-checked DNS over the two LB addresses, seen through a caching
/// resolver: the record carries the design's TTL, and a dead LB's address
/// stops being returned within the design's own TTL + check interval +
/// check timeout (the budget comes from `dns-health.toml`, not a constant).
async fn dns_failover(stack: &Stack) -> CheckResult {
    let (file, text) = stack.fixtures.read("dns-health.toml")?;
    let text = render(&text, &stack.vars, &file)?;
    let check: HealthCheck =
        toml::from_str(&text).map_err(|e| Failure::new(format!("{}: {e}", file.display()), ""))?;
    let budget = Duration::from_secs(u64::from(check.ttl))
        + Duration::from_millis(check.interval_ms + check.timeout_ms)
        + DNS_POLL_SLACK;
    let summary = format!(
        "design: TTL {} s, checks every {} ms (timeout {} ms) on port {}",
        check.ttl, check.interval_ms, check.timeout_ms, check.port
    );
    let ttl = check.ttl;
    // A long TTL makes an honest budget longer than a claim may wait: that
    // is not measured, rather than a verdict either way.
    crate::claim::ensure_measured(
        budget <= DNS_MAX_WAIT,
        format!(
            "the design's TTL and check interval give a failover budget of {} ms, longer than this claim waits ({} ms)",
            budget.as_millis(),
            DNS_MAX_WAIT.as_millis()
        ),
        &summary,
    )?;
    let lb1 = stack.host(MASTER)?.addr("public").expect("lb-1 is public");
    let lb2 = stack.host(BACKUP)?.addr("public").expect("lb-2 is public");
    let direct = client::resolver(stack.dns.addr, DnsTransport::Udp)?;
    let cached = client::caching_resolver(stack.dns.addr)?;
    let answer = |r: &'_ hickory_resolver::TokioResolver| {
        let r = r.clone();
        async move {
            let records = client::query(&r, WWW, RecordType::A)
                .await
                .unwrap_or_default();
            (
                records
                    .iter()
                    .filter_map(|r| r.data.ip_addr())
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>(),
                records.first().map(|r| r.ttl),
            )
        }
    };
    // The zone's own records come back when the claim ends, whatever happens.
    let records = stack
        .apply(Fault::DnsRecords("www", &[lb1, lb2], check.ttl))
        .await?;
    let guard = stack.dns.health_check(check)?;
    let both = wait_for(Duration::from_secs(5), || async {
        let (a, _) = answer(&direct).await;
        a.contains(&lb1.to_string()) && a.contains(&lb2.to_string())
    })
    .await;
    let (before, served_ttl) = answer(&direct).await;
    // Warm the cache: from now on the caching resolver answers from memory until the TTL runs out.
    let _ = answer(&cached).await;
    let stopped = stack.apply(Fault::StopHost(MASTER)).await?;
    let gone = wait_for((budget * 2).min(DNS_MAX_WAIT), || async {
        !answer(&cached).await.0.contains(&lb1.to_string())
    })
    .await;
    let (after, _) = answer(&cached).await;
    drop(guard);
    records.restore().await?;
    if let Some(d) = gone {
        stack.record(
            "DNS failover: dead address dropped (ms)",
            d.as_millis() as f64,
        );
    }
    restore_lb_pair(stack, vec![stopped]).await?;
    let evidence = format!(
        "{summary}; www → [{}] with both up{}, served with TTL {}; lb-1 stopped: through a caching resolver its address {}; then www → [{}]; budget TTL + interval + timeout + {} ms slack = {} ms",
        before.join(", "),
        if both.is_some() { "" } else { " (never both)" },
        served_ttl
            .map(|t| format!("{t} s"))
            .unwrap_or_else(|| "-".into()),
        match gone {
            Some(d) => format!("stopped being returned after {} ms", d.as_millis()),
            None => "was STILL returned".into(),
        },
        after.join(", "),
        DNS_POLL_SLACK.as_millis(),
        budget.as_millis()
    );
    ensure(
        both.is_some(),
        "health-checked DNS never returned both load balancers",
        &evidence,
    )?;
    ensure_eq("TTL of the served record", Some(ttl), served_ttl, &evidence)?;
    ensure(
        gone.is_some_and(|d| d <= budget),
        "a dead load balancer kept being returned past TTL + check interval",
        &evidence,
    )?;
    ensure_eq(
        "www with lb-1 down",
        vec![lb2.to_string()],
        after,
        &evidence,
    )?;
    Ok(evidence)
}

/// db-2 added as a replica: reads move to it, writes stay on db-1.
async fn replication(stack: &Stack) -> CheckResult {
    let db2 = HostSpec {
        name: "db-2".into(),
        networks: vec!["private".into()],
        services: vec!["mariadb-replica".into()],
        memory_mib: None,
        vars: Default::default(),
    };
    let added = stack
        .apply(Fault::AddHost(&db2, &Default::default()))
        .await?;
    let host = added.added_host().expect("an added host");
    let db2_addr = host.main_addr();
    let result = async {
        // Caught up: the app's table exists and holds the primary's rows.
        let caught_up = wait_for(Duration::from_secs(10), || async {
            host.exec("mariadb -N -e 'SELECT COUNT(*) FROM foobar.greetings'")
                .await
                .is_ok_and(|o| o.code == 0)
        })
        .await;
        let reads = BTreeMap::from([("db_read_host".to_string(), db2_addr.to_string())]);
        let reconfigured = stack
            .apply(Fault::Reconfigure(APP, "php-fpm", &reads))
            .await?;
        let db1 = stack.host(DB)?;
        let count = |h| async move {
            Ok::<_, Failure>((
                measure::user_stat(h, APP_USER, "SELECT_COMMANDS").await?,
                measure::user_stat(h, APP_USER, "ROWS_INSERTED").await?,
            ))
        };
        let (b1, b2) = (count(db1).await?, count(&host).await?);
        let urls: Vec<String> = ["/index.php", "/write.php"]
            .iter()
            .flat_map(|p| vec![http(p); DB_REQUESTS as usize])
            .collect();
        let ok = probe::successes(&stack.client.fresh, urls).await;
        let (a1, a2) = (count(db1).await?, count(&host).await?);
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
        "db-2 ({db2_addr}) added, replicating from db-1 ({}); app reads pointed at it; {DB_REQUESTS} reads + {DB_REQUESTS} writes, {ok} answered 200; the `{APP_USER}` user's (SELECTs, rows inserted): db-1 +{on1:?}, db-2 +{on2:?}",
        caught_up
            .map(|d| format!("caught up in {} ms", d.as_millis()))
            .unwrap_or_else(|| "never caught up".into())
    );
    ensure_eq(
        "(SELECTs, inserts) on db-1",
        (0, DB_REQUESTS),
        on1,
        &evidence,
    )?;
    ensure_eq(
        "(SELECTs, inserts) on db-2",
        (DB_REQUESTS, 0),
        on2,
        &evidence,
    )?;
    Ok(evidence)
}

/// A memory hog on app-1 is stopped inside app-1's limit, and web-1 keeps serving.
async fn resource_isolation(stack: &Stack) -> CheckResult {
    let app = stack.host(APP)?;
    // cgroup v1 or v2, whichever the engine gives the container.
    let limit = app
        .run("cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
        .await?
        .trim()
        .to_string();
    let ooms = "grep -h '^oom_kill ' /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null | awk '{print $2}' | head -1";
    let oom_before: u64 = app.run(ooms).await?.trim().parse().unwrap_or(0);
    let hog = format!("head -c {HOG_MIB}M /dev/zero | tail > /dev/null; echo $?");
    let (report, hog_out) = probe::probe_through(
        &stack.client.fresh,
        &http(STATIC),
        Duration::from_millis(20),
        Duration::from_millis(200),
        2000,
        app.exec_within(&hog, Duration::from_secs(60)),
    )
    .await;
    let hog_out = hog_out?;
    crate::claim::ensure_measured(
        report.sent() > 0,
        "the probe sent no request",
        &report.summary(),
    )?;
    let oom_after: u64 = app.run(ooms).await?.trim().parse().unwrap_or(0);
    let fpm_alive = !stack.pids(APP, "php-fpm").await?.is_empty();
    let limit_mib = limit
        .parse::<u64>()
        .map(|b| format!("{} MiB", b / 1048576))
        .unwrap_or(limit.clone());
    let evidence = format!(
        "app-1's memory limit {limit_mib}; a {HOG_MIB} MiB hog there ended with status {}, kernel OOM kills {oom_before} → {oom_after}; PHP-FPM {}; web-1 meanwhile: {}",
        hog_out.stdout.trim(),
        if fpm_alive { "still running" } else { "GONE" },
        report.summary()
    );
    ensure(
        hog_out.stdout.trim() == "137" && oom_after > oom_before,
        "the hog was not stopped by app-1's memory limit",
        &evidence,
    )?;
    ensure_eq(
        "web-1's failed requests during the hog",
        0,
        report.failed(),
        &evidence,
    )?;
    Ok(evidence)
}

/// VRRP adverts between the pair dropped while HTTP still flows: both take
/// the VIP. Measured: how soon, whether it lasts, what clients see, and how
/// soon one master remains once the adverts flow again.
async fn split_brain(stack: &Stack) -> CheckResult {
    let before = holders(stack).await?;
    ensure_eq(
        "VIP holder before the adverts are cut",
        vec![MASTER.to_string()],
        before,
        "",
    )?;
    let (report, split) = probe::probe_through(
        &stack.client.probe,
        &http(STATIC),
        FAILOVER_PROBE,
        Duration::from_millis(300),
        3000,
        async {
            let cut = stack
                .apply(Fault::Partition(MASTER, BACKUP, Some(VRRP_PROTOCOL)))
                .await?;
            let both = wait_holders(stack, SPLIT_WAIT, |h| h.len() == LBS.len()).await?;
            tokio::time::sleep(SPLIT_HOLD).await;
            let still = holders(stack).await?;
            cut.restore().await?;
            let healed = wait_holder(stack, MASTER, Duration::from_secs(10)).await?;
            Ok::<_, Failure>((both, still, healed))
        },
    )
    .await;
    let (both, still, healed) = split?;
    crate::claim::ensure_measured(report.sent() > 0, "the probe sent no request", "")?;
    if let Some(d) = both {
        stack.record(
            "split brain: both hold the VIP after (ms)",
            d.as_millis() as f64,
        );
    }
    if let Some(d) = healed {
        stack.record(
            "split brain: one master again after (ms)",
            d.as_millis() as f64,
        );
    }
    stack.record("split brain: failed requests", report.failed() as f64);
    let ms = |d: Option<Duration>| {
        d.map(|d| format!("{} ms", d.as_millis()))
            .unwrap_or_else(|| "never".into())
    };
    let evidence = format!(
        "VRRP (IP protocol {VRRP_PROTOCOL}) dropped between {MASTER} and {BACKUP}, HTTP still flowing: both held the VIP after {}; {} ms later held by [{}]; clients meanwhile (probe every {} ms): {}{}; adverts restored: {MASTER} alone again after {}",
        ms(both),
        SPLIT_HOLD.as_millis(),
        still.join(", "),
        FAILOVER_PROBE.as_millis(),
        report.summary(),
        report
            .first_error()
            .map(|e| format!(" (first error: {e})"))
            .unwrap_or_default(),
        ms(healed)
    );
    ensure(
        both.is_some(),
        "the load balancers never both held the VIP: no split brain (the pair has a guard against it)",
        &evidence,
    )?;
    ensure(
        healed.is_some(),
        "the pair did not settle on one master once the adverts flowed again",
        &evidence,
    )?;
    Ok(evidence)
}

/// The `host` labels present in a query's result.
async fn hosts_with(stack: &Stack, query: &str) -> Result<Vec<String>, Failure> {
    let mut hosts: Vec<String> = prometheus(stack, query)
        .await?
        .iter()
        .filter_map(|r| r["metric"]["host"].as_str().map(str::to_string))
        .collect();
    hosts.sort();
    hosts.dedup();
    Ok(hosts)
}

/// The monitoring server holds CPU, memory and disk series for every host.
async fn resources(stack: &Stack) -> CheckResult {
    let mut all: Vec<String> = stack.hosts.keys().cloned().collect();
    all.sort();
    let series = [
        ("CPU", "count by (host) (node_cpu_seconds_total)"),
        ("memory", "node_memory_MemAvailable_bytes"),
        (
            "disk I/O",
            "count by (host) (node_disk_io_time_seconds_total)",
        ),
    ];
    // A fresh server needs a scrape or two.
    let _ = wait_for(Duration::from_secs(10), || async {
        hosts_with(stack, series[0].1)
            .await
            .map(|h| h.len() == all.len())
            .unwrap_or(false)
    })
    .await;
    let mut seen = Vec::new();
    for (what, query) in series {
        seen.push((what, hosts_with(stack, query).await?));
    }
    let evidence = seen
        .iter()
        .map(|(w, h)| format!("{w}: {} hosts [{}]", h.len(), h.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    for (what, hosts) in &seen {
        ensure_eq(&format!("hosts with {what} series"), &all, hosts, &evidence)?;
    }
    Ok(evidence)
}

/// Stopping a host fires the HostDown alert within the rule's window.
async fn alert_on_down(stack: &Stack) -> CheckResult {
    let firing = |host: &'static str| async move {
        prometheus(
            stack,
            &format!("ALERTS{{alertname=\"HostDown\",alertstate=\"firing\",host=\"{host}\"}}"),
        )
        .await
        .map(|r| !r.is_empty())
        .unwrap_or(false)
    };
    let quiet_before = !firing(WEB).await;
    let fault = stack.apply(Fault::StopHost(WEB)).await?;
    let fired = wait_for(ALERT_WINDOW * 3, || firing(WEB)).await;
    if let Some(d) = fired {
        stack.record("HostDown alert fired (ms)", d.as_millis() as f64);
    }
    fault.restore().await?;
    let evidence = format!(
        "HostDown for web-1 {} before; web-1 stopped: alert {} (window: scrape 1 s + for 2 s + evaluation 1 s + slack = {} ms)",
        if quiet_before {
            "not firing"
        } else {
            "ALREADY firing"
        },
        fired
            .map(|d| format!("firing after {} ms", d.as_millis()))
            .unwrap_or_else(|| "never fired".into()),
        ALERT_WINDOW.as_millis()
    );
    ensure(
        quiet_before,
        "the alert fired before anything was down",
        &evidence,
    )?;
    ensure(
        fired.is_some_and(|d| d <= ALERT_WINDOW),
        "the alert did not fire within the rule's window",
        &evidence,
    )?;
    Ok(evidence)
}
