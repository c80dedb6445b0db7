//! distributed: lb-1 (HAProxy, round-robin) over server-1 and server-2, each
//! Nginx + the PHP app + MariaDB (primary on server-1, replica on server-2).
//! Design file: `fixtures/designs/distributed/design.toml`.

use std::time::{Duration, Instant};

use futures::FutureExt;

use super::www_addresses;
use super::{header, req_failed};
use crate::claim::{CheckResult, Claim, Failure, ensure, ensure_eq};
use crate::measure::{self, FPM_ACCESS_LOG, NGINX_ACCESS_LOG, http};
use crate::probe;
use crate::stack::{Fault, Stack, WWW};

const LB: &str = "lb-1";
const SERVERS: [&str; 2] = ["server-1", "server-2"];
const PRIMARY: &str = "server-1";
const REPLICA: &str = "server-2";
/// Requests for the round-robin count: even, so a fair split is exact.
const RR_REQUESTS: usize = 10;
/// Requests for the read/write routing counts.
const ROUTING_REQUESTS: u64 = 6;
/// The app's database user, whose statements USER_STATISTICS counts.
const APP_USER: &str = "app";
/// Slack on top of HAProxy's configured detection times: checks are
/// `inter` apart, so a change can wait up to one extra interval to be seen,
/// plus our own polling.
const HEALTH_SLACK: Duration = Duration::from_millis(700);
/// How long a write may take to reach the replica (CLAIMS.md: 1 s).
const REPLICATION_BUDGET: Duration = Duration::from_secs(1);

/// The claims of distributed, in CLAIMS.md order.
pub fn claims() -> Vec<Claim> {
    vec![
        super::builtin(
            "distributed.dns.www_to_lb",
            "users reach the site through the load balancer",
            "www's A record is lb-1's address, not a server's",
            check!(www_to_lb),
        ),
        super::builtin(
            "distributed.lb.round_robin",
            "round-robin: requests sent in turn to each server",
            "N requests on fresh connections: every request is in exactly one backend's access log, each backend gets N/2 ± 1, alternating",
            check!(round_robin),
        ),
        super::builtin(
            "distributed.lb.active_active",
            "avoid that a single server is overloaded",
            "both backends serve at the same time",
            check!(active_active),
        ),
        super::builtin(
            "distributed.lb.health_check",
            "traffic goes to servers that can take it",
            "stop Nginx on server-1: within HAProxy's inter × fall every request succeeds via server-2; start it: it rejoins within rise × inter",
            check!(health_check),
        ),
        super::builtin(
            "distributed.web.static_by_nginx",
            "Nginx serves static content",
            "static files are served with no app log growth",
            check!(static_by_nginx),
        ),
        super::builtin(
            "distributed.app.dynamic_by_app",
            "complex requests are sent to the application server",
            "dynamic pages grow the app's log on the backend that served them",
            check!(dynamic_by_app),
        ),
        super::builtin(
            "distributed.db.replication",
            "replicas receive the primary's data",
            "a write on the primary is readable on the replica within 1 s; IO and SQL threads running",
            check!(replication),
        ),
        super::builtin(
            "distributed.db.replica_read_only",
            "the primary writes, replicas read",
            "a write on the replica is refused (error 1290)",
            check!(replica_read_only),
        ),
        super::builtin(
            "distributed.db.writes_to_primary",
            "a main database to write data",
            "the app's database user issues its writes on the primary only, counted by each server's own per-user statistics (e.g. MariaDB's USER_STATISTICS), which tell the app's writes apart from replication's",
            check!(writes_to_primary),
        ),
        super::builtin(
            "distributed.db.reads_from_replica",
            "responses (replicas) to read",
            "the app's database user issues its reads on the replica, not the primary, counted the same way",
            check!(reads_from_replica),
        ),
        super::builtin(
            "distributed.issue.spof_lb",
            "the load balancer is a SPOF",
            "with HAProxy killed, 0 of N requests succeed although both servers are up",
            check!(spof_lb),
        ),
        super::builtin(
            "distributed.issue.spof_primary",
            "a single writable database",
            "primary stopped: writes fail, reads keep working",
            check!(spof_primary),
        ),
        super::builtin(
            "distributed.issue.no_https",
            "no HTTPS",
            "no TLS handshake completes on lb-1:443 with any certificate (nothing listening is told apart from a non-TLS listener); the request crosses the wire in clear text",
            check!(no_https),
        ),
        super::builtin(
            "distributed.issue.no_firewall",
            "no firewall",
            "from the client, port 3306 of both servers accepts connections",
            check!(no_firewall),
        ),
    ]
}

/// www's A record is lb-1's address, not a server's.
async fn www_to_lb(stack: &Stack) -> CheckResult {
    let seen = www_addresses(stack).await?;
    let lb = stack.host(LB)?.main_addr().to_string();
    let servers: Vec<String> = SERVERS
        .iter()
        .filter_map(|s| stack.host(s).ok())
        .map(|h| h.main_addr().to_string())
        .collect();
    let evidence = format!(
        "{WWW} → {}; lb-1 is {lb}; servers are {}",
        seen.join(", "),
        servers.join(", ")
    );
    ensure_eq("www's A records", vec![lb], seen, &evidence)?;
    Ok(evidence)
}

/// Which server's Nginx logged each marked request, in the order sent.
pub(super) async fn served_by(
    stack: &Stack,
    marker: &str,
    n: usize,
) -> Result<Vec<String>, Failure> {
    let mut by_index = vec![String::new(); n];
    for s in SERVERS {
        // A log the design does not write is a FAIL naming it, not "0 requests".
        measure::log_lines(stack.host(s)?, NGINX_ACCESS_LOG).await?;
        let lines = stack
            .host(s)?
            .run(&format!(
                "grep -o '{marker}-[0-9]*' {NGINX_ACCESS_LOG} || true"
            ))
            .await?;
        for l in lines.lines() {
            if let Some(i) = l
                .rsplit('-')
                .next()
                .and_then(|i| i.parse::<usize>().ok())
                .filter(|i| *i < n)
            {
                by_index[i] = if by_index[i].is_empty() {
                    s.to_string()
                } else {
                    format!("{}+{s}", by_index[i])
                };
            }
        }
    }
    Ok(by_index)
}

/// N requests on fresh connections: each backend gets N/2 ± 1, in turn, by the backends' own logs.
async fn round_robin(stack: &Stack) -> CheckResult {
    round_robin_over(stack, "http").await
}

/// The round-robin check over `scheme` (secured_monitored runs it over HTTPS).
pub(super) async fn round_robin_over(stack: &Stack, scheme: &str) -> CheckResult {
    let marker = format!("rr{:08x}", rand::random::<u32>());
    for i in 0..RR_REQUESTS {
        let path = format!("/static/hello.txt?{marker}-{i}");
        stack
            .client
            .fresh
            .get(format!("{scheme}://{WWW}{path}"))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| req_failed(&path, &e))?;
    }
    let order = served_by(stack, &marker, RR_REQUESTS).await?;
    let counts: Vec<usize> = SERVERS
        .iter()
        .map(|s| order.iter().filter(|o| o == s).count())
        .collect();
    let alternating = order.windows(2).all(|w| w[0] != w[1]);
    let uncounted: Vec<usize> = (0..RR_REQUESTS)
        .filter(|i| !SERVERS.contains(&order[*i].as_str()))
        .collect();
    let evidence = format!(
        "{RR_REQUESTS} {scheme} requests on fresh connections; Nginx logs: server-1 {}, server-2 {}; order {}",
        counts[0],
        counts[1],
        order
            .iter()
            .map(|s| s.trim_start_matches("server-"))
            .collect::<Vec<_>>()
            .join(",")
    );
    // Every request must be in exactly one backend's log: the counts add up to what was sent.
    ensure(
        uncounted.is_empty(),
        format!(
            "requests {uncounted:?} of {RR_REQUESTS} are in no backend's log, or in more than one"
        ),
        &evidence,
    )?;
    for (s, c) in SERVERS.iter().zip(&counts) {
        ensure(
            c.abs_diff(RR_REQUESTS / 2) <= 1,
            format!("{s} served {c} of {RR_REQUESTS}, not N/2 ± 1"),
            &evidence,
        )?;
    }
    ensure(
        alternating,
        "the servers did not take requests in turn",
        &evidence,
    )?;
    Ok(evidence)
}

/// Both backends serve during the same burst of concurrent requests.
async fn active_active(stack: &Stack) -> CheckResult {
    let before: Vec<u64> = futures::future::try_join_all(
        SERVERS.map(|s| async move { measure::log_lines(stack.host(s)?, NGINX_ACCESS_LOG).await }),
    )
    .await?;
    let (ok, err) = probe::burst(&stack.client.fresh, &http("/static/hello.txt"), 20).await;
    let after: Vec<u64> = futures::future::try_join_all(
        SERVERS.map(|s| async move { measure::log_lines(stack.host(s)?, NGINX_ACCESS_LOG).await }),
    )
    .await?;
    // Health checks land in the logs too (about 2 per second per server): the
    // claim only needs each server to have served some of the burst.
    let grew: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let evidence = format!(
        "20 concurrent requests, {ok} answered{}; Nginx log lines grew server-1 +{}, server-2 +{}",
        err.map(|e| format!(" (first error: {e})"))
            .unwrap_or_default(),
        grew[0],
        grew[1]
    );
    ensure_eq("answered", 20, ok, &evidence)?;
    let marker_check = served_by_burst(stack).await?;
    ensure_eq(
        "marked burst requests found in the backends' logs",
        20,
        marker_check.iter().sum::<usize>(),
        &format!("{evidence}; marked burst split {marker_check:?}"),
    )?;
    ensure(
        marker_check.iter().all(|c| *c > 0),
        format!("not both servers served the burst: {marker_check:?}"),
        &evidence,
    )?;
    Ok(format!("{evidence}; marked burst split {marker_check:?}"))
}

/// A marked concurrent burst, counted per server from Nginx's logs.
async fn served_by_burst(stack: &Stack) -> Result<Vec<usize>, Failure> {
    let marker = format!("aa{:08x}", rand::random::<u32>());
    let sends = (0..20).map(|i| {
        stack
            .client
            .fresh
            .get(http(&format!("/static/hello.txt?{marker}-{i}")))
            .send()
    });
    futures::future::join_all(sends).await;
    let order = served_by(stack, &marker, 20).await?;
    Ok(SERVERS
        .iter()
        .map(|s| order.iter().filter(|o| o == s).count())
        .collect())
}

/// Static files come back from Nginx with no PHP-FPM log growth on either server.
async fn static_by_nginx(stack: &Stack) -> CheckResult {
    let fpm =
        |s: &'static str| async move { measure::log_lines(stack.host(s)?, FPM_ACCESS_LOG).await };
    let before = futures::future::try_join_all(SERVERS.map(fpm)).await?;
    let marker = format!("st{:08x}", rand::random::<u32>());
    let mut servers = Vec::new();
    for i in 0..4 {
        let path = format!("/static/hello.txt?{marker}-{i}");
        let r = stack
            .client
            .fresh
            .get(http(&path))
            .send()
            .await
            .map_err(|e| req_failed(&path, &e))?;
        servers.push(header(&r, "server"));
        ensure_eq("status", 200, r.status().as_u16(), "")?;
    }
    let after = futures::future::try_join_all(SERVERS.map(fpm)).await?;
    let counted = served_by(stack, &marker, 4)
        .await?
        .iter()
        .filter(|s| SERVERS.contains(&s.as_str()))
        .count();
    ensure_eq(
        "static requests found in the backends' Nginx logs",
        4,
        counted,
        &format!("Server: {}", servers.join(", ")),
    )?;
    let evidence = format!(
        "4 static requests, Server: {}; PHP-FPM access logs server-1 {} → {}, server-2 {} → {}",
        servers.join(", "),
        before[0],
        after[0],
        before[1],
        after[1]
    );
    ensure(
        servers.iter().all(|s| s.starts_with("nginx")),
        "not every answer came from Nginx",
        &evidence,
    )?;
    ensure_eq(
        "PHP-FPM requests during static requests",
        before,
        after,
        &evidence,
    )?;
    Ok(evidence)
}

/// Each dynamic page grows PHP-FPM's log on the backend whose Nginx served it.
async fn dynamic_by_app(stack: &Stack) -> CheckResult {
    let marker = format!("dy{:08x}", rand::random::<u32>());
    let fpm =
        |s: &'static str| async move { measure::log_lines(stack.host(s)?, FPM_ACCESS_LOG).await };
    let before = futures::future::try_join_all(SERVERS.map(fpm)).await?;
    for i in 0..4 {
        let path = format!("/index.php?{marker}-{i}");
        let body = stack
            .client
            .fresh
            .get(http(&path))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| req_failed(&path, &e))?
            .text()
            .await
            .map_err(|e| req_failed(&path, &e))?;
        ensure(
            body.contains("<html") && !body.contains("<?php"),
            "a dynamic page was not generated HTML",
            &body,
        )?;
    }
    let after = futures::future::try_join_all(SERVERS.map(fpm)).await?;
    let order = served_by(stack, &marker, 4).await?;
    let nginx_counts: Vec<u64> = SERVERS
        .iter()
        .map(|s| order.iter().filter(|o| o == s).count() as u64)
        .collect();
    let fpm_growth: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let evidence = format!(
        "4 dynamic pages; served by Nginx on server-1 {}, server-2 {}; PHP-FPM log grew server-1 +{}, server-2 +{}",
        nginx_counts[0], nginx_counts[1], fpm_growth[0], fpm_growth[1]
    );
    ensure_eq(
        "dynamic pages found in the backends' Nginx logs",
        4,
        nginx_counts.iter().sum::<u64>(),
        &evidence,
    )?;
    ensure_eq(
        "PHP-FPM requests per server (should match the Nginx that served)",
        nginx_counts,
        fpm_growth,
        &evidence,
    )?;
    Ok(evidence)
}

/// A write on the primary is readable on the replica within 1 s; IO and SQL threads run.
async fn replication(stack: &Stack) -> CheckResult {
    let (primary, replica) = (stack.host(PRIMARY)?, stack.host(REPLICA)?);
    let nonce = format!("repl-{:08x}", rand::random::<u32>());
    measure::mariadb_sql(
        primary,
        &format!("INSERT INTO foobar.greetings VALUES (1000 + FLOOR(RAND()*1000000), '{nonce}')"),
    )
    .await?;
    let started = Instant::now();
    let mut seen = false;
    while started.elapsed() < REPLICATION_BUDGET * 3 {
        // A replica that never replicated has no such table yet: that is "not there", not an error.
        let sql = format!("SELECT COUNT(*) FROM foobar.greetings WHERE text = '{nonce}'");
        let out = replica.exec(&format!("mariadb -N -B -e \"{sql}\"")).await?;
        if out.code == 0 && out.stdout.trim() == "1" {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delay = started.elapsed();
    if seen {
        stack.record("replication delay (ms)", delay.as_millis() as f64);
    }
    let status = replica.run("mariadb -e 'SHOW SLAVE STATUS\\G'").await?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(&format!("{name}: "))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "-".into())
    };
    let (io, sql) = (field("Slave_IO_Running"), field("Slave_SQL_Running"));
    let evidence = format!(
        "row written on the primary ({PRIMARY}) {} on the replica ({REPLICA}) after {} ms (budget {} ms); Slave_IO_Running {io}, Slave_SQL_Running {sql}",
        if seen { "readable" } else { "NOT readable" },
        delay.as_millis(),
        REPLICATION_BUDGET.as_millis()
    );
    ensure(
        seen && delay <= REPLICATION_BUDGET,
        "the write did not reach the replica within the budget",
        &evidence,
    )?;
    ensure_eq(
        "replication threads (IO, SQL)",
        ("Yes".to_string(), "Yes".to_string()),
        (io, sql),
        &evidence,
    )?;
    Ok(evidence)
}

/// The app's user cannot write on the replica (error 1290).
async fn replica_read_only(stack: &Stack) -> CheckResult {
    let replica = stack.host(REPLICA)?;
    let out = replica
        .exec("mariadb -h 127.0.0.1 -u app -papp-secret -e \"INSERT INTO foobar.greetings VALUES (999999, 'on the replica')\" foobar")
        .await?;
    let said = out
        .combined()
        .lines()
        .find(|l| l.starts_with("ERROR"))
        .unwrap_or("")
        .trim()
        .to_string();
    let evidence = format!(
        "INSERT as `app` on the replica ({REPLICA}): exit {}, {}",
        out.code,
        if said.is_empty() {
            "no error".into()
        } else {
            said.clone()
        }
    );
    ensure(
        out.code != 0 && said.contains("1290"),
        "the replica accepted a write from the application's user",
        &evidence,
    )?;
    Ok(evidence)
}

/// With HAProxy killed, no request succeeds although both servers answer directly.
async fn spof_lb(stack: &Stack) -> CheckResult {
    let (ok_before, _) = probe::burst(&stack.client.fresh, &http("/static/hello.txt"), 3).await;
    ensure(
        ok_before == 3,
        format!("before the fault only {ok_before} of 3 requests through the LB succeeded"),
        "",
    )?;
    let fault = stack.apply(Fault::KillService(LB, "haproxy")).await?;
    let result = async {
        let (ok, err) = probe::burst(&stack.client.fresh, &http("/static/hello.txt"), 10).await;
        let mut direct = Vec::new();
        for s in SERVERS {
            let url = format!("http://{}/static/hello.txt", stack.host(s)?.main_addr());
            let up = stack
                .client
                .fresh
                .get(&url)
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            direct.push((s, up));
        }
        Ok::<_, Failure>((ok, err, direct))
    }
    .await;
    let restored = fault.restore().await;
    let (ok, err, direct) = result?;
    restored?;
    let evidence = format!(
        "HAProxy killed on {LB}: {ok} of 10 requests to {WWW} succeeded{}; servers answering directly: {}",
        err.map(|e| format!(" (first error: {e})"))
            .unwrap_or_default(),
        direct
            .iter()
            .map(|(s, up)| format!("{s} {}", if *up { "yes" } else { "no" }))
            .collect::<Vec<_>>()
            .join(", ")
    );
    ensure(
        direct.iter().all(|(_, up)| *up),
        "a server was down, so this proves nothing about the LB",
        &evidence,
    )?;
    ensure_eq("requests that succeeded with the LB down", 0, ok, &evidence)?;
    Ok(evidence)
}

/// From the client, port 3306 of both servers accepts connections.
async fn no_firewall(stack: &Stack) -> CheckResult {
    let mut open = Vec::new();
    for s in SERVERS {
        let addr = (stack.host(s)?.main_addr(), 3306);
        let ok = matches!(
            tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr))
                .await,
            Ok(Ok(_))
        );
        open.push((s.to_string(), ok));
    }
    let evidence = format!(
        "TCP connect from the client to port 3306: {}",
        open.iter()
            .map(|(s, ok)| format!("{s} {}", if *ok { "accepted" } else { "refused" }))
            .collect::<Vec<_>>()
            .join(", ")
    );
    ensure_eq(
        "3306 reachable from the client",
        vec![("server-1".into(), true), ("server-2".into(), true)],
        open,
        &evidence,
    )?;
    Ok(evidence)
}

/// HAProxy's check timing for `server` from its running configuration:
/// (inter, fall, rise), with HAProxy's defaults (2 s, 3, 2) where unset.
async fn check_timing(stack: &Stack, server: &str) -> Result<(Duration, u32, u32), Failure> {
    let cfg = stack.host(LB)?.run("cat /etc/haproxy/haproxy.cfg").await?;
    let (mut inter, mut fall, mut rise) = (Duration::from_secs(2), 3, 2);
    for line in cfg.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let applies = words.first() == Some(&"default-server")
            || (words.first() == Some(&"server") && words.get(1) == Some(&server));
        if !applies {
            continue;
        }
        for pair in words.windows(2) {
            match pair[0] {
                "inter" => inter = parse_haproxy_time(pair[1]).unwrap_or(inter),
                "fall" => fall = pair[1].parse().unwrap_or(fall),
                "rise" => rise = pair[1].parse().unwrap_or(rise),
                _ => {}
            }
        }
    }
    Ok((inter, fall, rise))
}

/// "500ms", "2s", "2000" (ms) → Duration.
fn parse_haproxy_time(t: &str) -> Option<Duration> {
    if let Some(ms) = t.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    if let Some(s) = t.strip_suffix('s') {
        return s.parse().ok().map(Duration::from_secs);
    }
    t.parse().ok().map(Duration::from_millis)
}

/// Polls HAProxy until `server` is in a state starting with `want`, within `deadline`.
async fn wait_status(
    stack: &Stack,
    server: &str,
    want: &str,
    deadline: Duration,
) -> Result<Option<Duration>, Failure> {
    let lb = stack.host(LB)?;
    let started = Instant::now();
    while started.elapsed() < deadline {
        let states = measure::haproxy_status(lb).await?;
        if states
            .iter()
            .any(|(_, s, st)| s == server && st.starts_with(want) && !st.contains('/'))
        {
            return Ok(Some(started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(None)
}

/// Nginx stopped on server-1: HAProxy takes it out within inter × fall and
/// every request then succeeds via server-2; started again, it rejoins within rise × inter.
async fn health_check(stack: &Stack) -> CheckResult {
    let (inter, fall, rise) = check_timing(stack, "server-1").await?;
    let eject_budget = inter * fall + HEALTH_SLACK;
    let rejoin_budget = inter * rise + HEALTH_SLACK;
    let before = measure::haproxy_status(stack.host(LB)?).await?;
    ensure(
        before
            .iter()
            .any(|(_, s, st)| s == "server-1" && st == "UP"),
        "server-1 was not UP in HAProxy before the fault, so its ejection proves nothing",
        &format!("HAProxy before: {before:?}"),
    )?;
    let fault = stack.apply(Fault::StopService("server-1", "nginx")).await?;
    let result = async {
        let ejected = wait_status(stack, "server-1", "DOWN", eject_budget * 3).await?;
        let marker = format!("hc{:08x}", rand::random::<u32>());
        let urls = (0..RR_REQUESTS).map(|i| http(&format!("/static/hello.txt?{marker}-{i}")));
        let ok = probe::successes(&stack.client.fresh, urls).await;
        let order = served_by(stack, &marker, RR_REQUESTS).await?;
        Ok::<_, Failure>((ejected, ok, order))
    }
    .await;
    let restarted = fault.restore().await;
    let (ejected, ok, order) = result?;
    restarted?;
    let rejoined = wait_status(stack, "server-1", "UP", rejoin_budget * 3).await?;
    if let Some(e) = ejected {
        stack.record("health check: eject (ms)", e.as_millis() as f64);
    }
    if let Some(r) = rejoined {
        stack.record("health check: rejoin (ms)", r.as_millis() as f64);
    }
    let ms = |d: Option<Duration>| {
        d.map(|d| format!("{} ms", d.as_millis()))
            .unwrap_or_else(|| "never".into())
    };
    let via2 = order.iter().filter(|s| *s == "server-2").count();
    let evidence = format!(
        "inter {} ms, fall {fall}, rise {rise}; Nginx stopped on server-1: marked DOWN after {} (budget inter×fall+slack {} ms); \
         then {ok} of {RR_REQUESTS} requests succeeded, {via2} via server-2; Nginx started: UP after {} (budget rise×inter+slack {} ms)",
        inter.as_millis(),
        ms(ejected),
        eject_budget.as_millis(),
        ms(rejoined),
        rejoin_budget.as_millis()
    );
    ensure(
        ejected.is_some_and(|d| d <= eject_budget),
        "HAProxy did not take the stopped server out in time",
        &evidence,
    )?;
    ensure_eq(
        "requests that succeeded after the ejection",
        RR_REQUESTS,
        ok,
        &evidence,
    )?;
    ensure_eq("requests served by server-2", RR_REQUESTS, via2, &evidence)?;
    ensure(
        rejoined.is_some_and(|d| d <= rejoin_budget),
        "the server did not rejoin in time",
        &evidence,
    )?;
    Ok(evidence)
}

/// The app user's counters on primary and replica, around `n` requests to `path`.
async fn app_counts(stack: &Stack, path: &str, column: &str) -> Result<(u64, u64, usize), Failure> {
    let (primary, replica) = (stack.host(PRIMARY)?, stack.host(REPLICA)?);
    let before = (
        measure::user_stat(primary, APP_USER, column).await?,
        measure::user_stat(replica, APP_USER, column).await?,
    );
    let ok = probe::successes(
        &stack.client.fresh,
        vec![http(path); ROUTING_REQUESTS as usize],
    )
    .await;
    let after = (
        measure::user_stat(primary, APP_USER, column).await?,
        measure::user_stat(replica, APP_USER, column).await?,
    );
    Ok((after.0 - before.0, after.1 - before.1, ok))
}

/// The app's writes land on the primary only, by each server's USER_STATISTICS.
async fn writes_to_primary(stack: &Stack) -> CheckResult {
    let (primary, replica, ok) = app_counts(stack, "/write.php", "ROWS_INSERTED").await?;
    let evidence = format!(
        "{ROUTING_REQUESTS} requests to /write.php, {ok} answered 200; rows the `{APP_USER}` user inserted: primary ({PRIMARY}) +{primary}, replica ({REPLICA}) +{replica}"
    );
    ensure_eq(
        "writes answered 200",
        ROUTING_REQUESTS as usize,
        ok,
        &evidence,
    )?;
    ensure_eq(
        "app rows inserted on (primary, replica)",
        (ROUTING_REQUESTS, 0),
        (primary, replica),
        &evidence,
    )?;
    Ok(evidence)
}

/// The app's reads go to the replica, not the primary, counted the same way.
async fn reads_from_replica(stack: &Stack) -> CheckResult {
    let (primary, replica, ok) = app_counts(stack, "/index.php", "SELECT_COMMANDS").await?;
    let evidence = format!(
        "{ROUTING_REQUESTS} requests to /index.php, {ok} answered 200; SELECTs by the `{APP_USER}` user: primary ({PRIMARY}) +{primary}, replica ({REPLICA}) +{replica}"
    );
    ensure_eq(
        "reads answered 200",
        ROUTING_REQUESTS as usize,
        ok,
        &evidence,
    )?;
    ensure_eq(
        "app SELECTs on (primary, replica)",
        (0, ROUTING_REQUESTS),
        (primary, replica),
        &evidence,
    )?;
    Ok(evidence)
}

/// Primary stopped: writes fail, reads keep working.
async fn spof_primary(stack: &Stack) -> CheckResult {
    spof_primary_over(stack, "http").await
}

/// The primary-SPOF check over `scheme` (secured_monitored runs it over HTTPS).
pub(super) async fn spof_primary_over(stack: &Stack, scheme: &str) -> CheckResult {
    let primary_service = "mariadb-primary";
    let url = |path: &str| format!("{scheme}://{WWW}{path}");
    let (writes_before, _) = probe::burst(&stack.client.fresh, &url("/write.php"), 2).await;
    ensure(
        writes_before == 2,
        format!(
            "before the fault only {writes_before} of 2 writes succeeded, so their failing later proves nothing"
        ),
        "",
    )?;
    let fault = stack
        .apply(Fault::StopService(PRIMARY, primary_service))
        .await?;
    let result = async {
        let (writes, _) = probe::burst(
            &stack.client.fresh,
            &url("/write.php"),
            ROUTING_REQUESTS as usize,
        )
        .await;
        let (reads, read_err) = probe::burst(
            &stack.client.fresh,
            &url("/index.php"),
            ROUTING_REQUESTS as usize,
        )
        .await;
        (writes, reads, read_err)
    }
    .await;
    let restarted = fault.restore().await;
    let (writes, reads, read_err) = result;
    restarted?;
    let evidence = format!(
        "MariaDB stopped on the primary ({PRIMARY}): {writes} of {ROUTING_REQUESTS} writes succeeded, {reads} of {ROUTING_REQUESTS} reads succeeded{}",
        read_err
            .map(|e| format!(" (first read error: {e})"))
            .unwrap_or_default()
    );
    ensure_eq(
        "(writes, reads) that succeeded",
        (0, ROUTING_REQUESTS as usize),
        (writes, reads),
        &evidence,
    )?;
    Ok(evidence)
}

/// Nothing answers TLS on 443 (told apart: nothing listens, or something
/// listens but completes no TLS handshake with any certificate), and a
/// request crosses the wire in clear text.
async fn no_https(stack: &Stack) -> CheckResult {
    let lb = stack.host(LB)?;
    let lb_addr = lb.main_addr();
    let listens_443 = crate::reach::listeners(lb)
        .await?
        .into_iter()
        .find(|l| l.port == 443);
    // A real handshake from a server on the same network, trusting nothing:
    // any certificate at all counts as HTTPS being served.
    let from = stack.host(SERVERS[0])?;
    let handshake = from
        .exec(&format!(
            "timeout 5 openssl s_client -connect {lb_addr}:443 -servername {WWW} -brief </dev/null 2>&1"
        ))
        .await?;
    let tcp = from.exec(&format!("nc -z -w 1 {lb_addr} 443")).await?.code == 0;
    let tls_text = match (&listens_443, tcp, handshake.code) {
        (None, false, _) => "nothing listens on lb-1:443 (connection refused)".to_string(),
        (_, _, 0) => format!(
            "lb-1:443 completed a TLS handshake: {}",
            handshake
                .stdout
                .lines()
                .filter(|l| l.starts_with("Protocol") || l.starts_with("Ciphersuite"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (l, _, _) => format!(
            "lb-1:443 accepts TCP ({}) but completes no TLS handshake",
            l.as_ref()
                .map(|l| l.process.clone())
                .unwrap_or_else(|| "?".into())
        ),
    };
    let secret = format!("secret-{:016x}", rand::random::<u64>());
    let capture = crate::capture::Capture::start(lb, "tcp port 80").await?;
    let sent = stack
        .client
        .fresh
        .get(http("/static/hello.txt"))
        .header("X-Stackproof-Secret", &secret)
        .send()
        .await;
    let seen = capture.finish().await?;
    let evidence = format!(
        "{tls_text}; plain-HTTP request {}; capture on {LB} (tcp port 80, {} bytes): secret header {}",
        if sent.is_ok() { "answered" } else { "failed" },
        seen.len(),
        if seen.contains(&secret) {
            "seen in clear text"
        } else {
            "NOT seen"
        }
    );
    ensure(
        handshake.code != 0,
        "lb-1 serves HTTPS on 443 (a TLS handshake completed)",
        &evidence,
    )?;
    crate::claim::ensure_measured(
        sent.is_ok(),
        "the plain-HTTP request failed, so nothing crossed the wire",
        &evidence,
    )?;
    ensure(
        seen.contains(&secret),
        "the secret header was not seen in clear text on the wire",
        &evidence,
    )?;
    Ok(evidence)
}
