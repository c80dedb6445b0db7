//! scale_up: a load-balancer pair holding a VIP (HAProxy + keepalived,
//! VRRP) over split tiers: web-1 (Nginx) → app-1 (PHP-FPM) → db-1 (MariaDB).
//! Design file: `fixtures/designs/scale_up.toml`.

use std::time::{Duration, Instant};

use futures::FutureExt;
use hickory_proto::rr::RecordType;

use super::req_failed;
use crate::claim::{Check, CheckResult, Claim, Failure, ensure, ensure_eq};
use crate::client::{self, DnsTransport};
use crate::measure::{self, NGINX_ACCESS_LOG, http};
use crate::probe;
use crate::stack::{Stack, WWW};

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
/// Requests sent while something is down.
const DOWN_REQUESTS: usize = 10;
/// The QPS claim: N requests at a fixed rate.
const QPS_REQUESTS: usize = 40;
const QPS_INTERVAL: Duration = Duration::from_millis(50);
/// Reads and writes for the database claims.
const DB_REQUESTS: u64 = 6;

/// The claims of scale_up, in CLAIMS.md order.
pub fn claims() -> Vec<Claim> {
    vec![
        Claim {
            id: "scale_up.dns.www_to_vip",
            says: "users reach the cluster",
            check: check!(www_to_vip),
        },
        Claim {
            id: "scale_up.lb.single_master",
            says: "a primary LB with a backup",
            check: check!(single_master),
        },
        Claim {
            id: "scale_up.lb.failover",
            says: "if the primary fails, the backup takes over seamlessly",
            check: check!(failover),
        },
        Claim {
            id: "scale_up.lb.haproxy_crash_failover",
            says: "fault tolerance",
            check: check!(haproxy_crash_failover),
        },
        Claim {
            id: "scale_up.tiers.split",
            says: "split components, each on its own server",
            check: check!(split),
        },
        Claim {
            id: "scale_up.tiers.web_to_app",
            says: "the web server sends dynamic work to the app server",
            check: check!(web_to_app),
        },
        Claim {
            id: "scale_up.issue.both_lbs_down",
            says: "if both LBs fail the system is down",
            check: check!(both_lbs_down),
        },
        Claim {
            id: "scale_up.issue.db_bottleneck",
            says: "a single database takes all writes and reads",
            check: check!(db_bottleneck),
        },
        Claim {
            id: "scale_up.monitoring.qps_from_access_logs",
            says: "parse access logs for QPS",
            check: check!(qps_from_access_logs),
        },
    ]
}

/// www's A record is the VIP.
async fn www_to_vip(stack: &Stack) -> CheckResult {
    let resolver = client::resolver(stack.dns.addr, DnsTransport::Udp)?;
    let seen: Vec<String> = client::query(&resolver, WWW, RecordType::A)
        .await
        .map_err(|e| Failure::new(format!("DNS: {e}"), ""))?
        .iter()
        .filter_map(|r| r.data.ip_addr().map(|i| i.to_string()))
        .collect();
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
    let mut out = Vec::new();
    for lb in LBS {
        let h = stack.host(lb)?;
        // A stopped host holds nothing.
        let o = h
            .exec_within("ip -4 -o addr show", Duration::from_secs(5))
            .await;
        if matches!(o, Ok(ref o) if o.stdout.contains(&format!("inet {vip}/"))) {
            out.push(lb.to_string());
        }
    }
    Ok(out)
}

/// Waits until exactly `lb` holds the VIP; returns how long that took.
async fn wait_holder(
    stack: &Stack,
    lb: &str,
    deadline: Duration,
) -> Result<Option<Duration>, Failure> {
    let started = Instant::now();
    while started.elapsed() < deadline {
        if holders(stack).await? == vec![lb.to_string()] {
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

/// Brings `lb`'s host back and waits until the master holds the VIP again.
async fn restore_lb_pair(stack: &Stack, stopped: &[&str]) -> Result<(), Failure> {
    for lb in stopped {
        stack.start_host(lb).await?;
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
    let (report, moved) = probe::probe_through(
        &stack.client.probe,
        &http(STATIC),
        FAILOVER_PROBE,
        FAILOVER_SETTLE,
        5000,
        async {
            stack.stop_host(MASTER).await?;
            wait_holder(stack, BACKUP, Duration::from_secs(10)).await
        },
    )
    .await;
    let after = holders(stack).await;
    restore_lb_pair(stack, &[MASTER]).await?;
    let moved = moved?;
    let after = after?;
    let last_fail = report
        .samples
        .iter()
        .rposition(|s| !matches!(s.result, Ok(200..=299)));
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
    stack.kill_service(MASTER, "haproxy").await?;
    let moved = wait_holder(stack, BACKUP, CRASH_FAILOVER_BUDGET * 2).await;
    let (ok, err) = probe::burst(&stack.client.fresh, &http(STATIC), DOWN_REQUESTS).await;
    let restarted = stack.start_service(MASTER, "haproxy").await;
    let back = wait_holder(stack, MASTER, Duration::from_secs(10)).await;
    let moved = moved?;
    restarted?;
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
    let probes = [
        ("web", &["nginx", "apache2"][..]),
        ("php", &["php-fpm8.2"][..]),
        ("db", &["mariadbd"][..]),
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
    stack.stop_service(APP, "php-fpm").await?;
    let dynamic = status(stack, "/index.php").await;
    let static_ = status(stack, STATIC).await;
    let restored = stack.start_service(APP, "php-fpm").await;
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
    for lb in LBS {
        stack.stop_host(lb).await?;
    }
    let (ok, err) = probe::burst(&stack.client.probe, &http(STATIC), DOWN_REQUESTS).await;
    // The web tier itself was fine all along: reachable directly.
    let direct = stack
        .client
        .fresh
        .get(format!("http://{}{STATIC}", stack.host(WEB)?.main_addr()))
        .send()
        .await;
    restore_lb_pair(stack, &LBS).await?;
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
    let mut ok = 0;
    for path in ["/index.php", "/write.php"] {
        for _ in 0..DB_REQUESTS {
            if stack
                .client
                .fresh
                .get(http(path))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                ok += 1;
            }
        }
    }
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
