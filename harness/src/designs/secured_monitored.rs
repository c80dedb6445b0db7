//! secured_monitored: the distributed design with HTTPS at lb-1 (the run's
//! certificate), iptables firewalls on lb-1, server-1 and server-2, node
//! exporters on the three and Prometheus on mon-1; `client` is a host on
//! `public` for vantage points and openssl handshakes.
//! Design file: `fixtures/designs/secured_monitored/design.toml`.

use std::time::{Duration, Instant};

use futures::FutureExt;

use super::{header, prometheus, req_failed, wait_for};
use crate::capture::Capture;
use crate::claim;
use crate::claim::{CheckResult, Claim, Failure, ensure, ensure_eq};
use crate::probe;
use crate::reach::{self, Reach};
use crate::stack::{Fault, Stack, WWW};

/// The claims that must still hold with re-encryption: all but the
/// weaknesses (one of which the remedy removes) and the remedy itself.
const STILL_HOLD: &[&str] = &[
    "secured_monitored.https.valid_cert",
    "secured_monitored.https.redirect",
    "secured_monitored.lb.round_robin",
    "secured_monitored.firewall.lb_exposes_only_web",
    "secured_monitored.firewall.web_only_from_lb",
    "secured_monitored.firewall.db_only_from_app",
    "secured_monitored.firewall.default_deny",
    "secured_monitored.monitoring.clients_up",
    "secured_monitored.monitoring.qps",
    "secured_monitored.monitoring.detects_down",
    "secured_monitored.monitoring.logs_centralised",
    "secured_monitored.monitoring.response_times",
];

const LB: &str = "lb-1";
const SERVERS: [&str; 2] = ["server-1", "server-2"];
const MONITOR: &str = "mon-1";
const CLIENT: &str = "client";
/// A port nothing is configured for, to prove default deny (we listen on it).
const UNLISTED_PORT: u16 = 7777;
/// The QPS claim: N requests at a fixed rate.
const QPS_REQUESTS: u64 = 40;
const QPS_INTERVAL: Duration = Duration::from_millis(50);
/// Scrapes happen every second: two intervals, plus slack for the query.
const DOWN_WINDOW: Duration = Duration::from_millis(2500);
const REQUESTS: usize = 6;
/// The static file every design serves.
const STATIC: &str = "/static/hello.txt";
/// How soon a log line must reach the central log host.
const LOG_BUDGET: Duration = Duration::from_secs(5);
/// The slowed backend's link rate: a dynamic page (about 1 KiB) then takes
/// hundreds of ms instead of one.
const SLOW_KBIT: u32 = 32;
/// Concurrent requests while one backend is slowed.
const SLOW_REQUESTS: usize = 20;
/// How much the slowed backend's average must rise: HAProxy averages over
/// its last 1024 requests, and ten slow ones of about a second each raise
/// it by at least this much even after a full window of fast ones.
const RESPONSE_RISE_MS: f64 = 5.0;
/// HSTS must last at least six months (180 days) to protect returning users.
const HSTS_MIN_AGE: u64 = 180 * 24 * 3600;

fn https(path: &str) -> String {
    format!("https://{WWW}{path}")
}

/// The claims of secured_monitored, in CLAIMS.md order.
pub fn claims() -> Vec<Claim> {
    vec![
        super::builtin(
            "secured_monitored.https.valid_cert",
            "the load balancer serves HTTPS",
            "the chain verifies against the run's CA for www.foobar.com; TLS 1.2 and 1.3 accepted, 1.0 and 1.1 refused, each tried by a real handshake (rustls speaks neither 1.0 nor 1.1: use a client that can, e.g. `openssl s_client` at security level 0 in a client container)",
            check!(valid_cert),
        ),
        super::builtin(
            "secured_monitored.https.redirect",
            "HTTPS protects user data",
            "http:// answers 301 with Location the same URL over https:// (a static and a dynamic path), and every HTTPS answer carries HSTS with max-age of at least six months",
            check!(redirect),
        ),
        super::builtin(
            "secured_monitored.lb.round_robin",
            "round-robin",
            "as distributed.lb.round_robin, over HTTPS",
            check!(round_robin),
        ),
        super::builtin(
            "secured_monitored.firewall.lb_exposes_only_web",
            "a firewall controls incoming requests",
            "every port lb-1 listens on (read with `ss` on lb-1, plus 80 and 443) is probed from every host on `public`: 80 and 443 open, nothing else",
            check!(lb_exposes_only_web),
        ),
        super::builtin(
            "secured_monitored.firewall.web_only_from_lb",
            "web servers have their own firewall",
            "every port the servers' web server listens on is reachable from lb-1 and from no other host, on any network",
            check!(web_only_from_lb),
        ),
        super::builtin(
            "secured_monitored.firewall.db_only_from_app",
            "firewall secures data between servers",
            "every port MariaDB listens on is reachable from the app hosts and the replica only, probed from every host",
            check!(db_only_from_app),
        ),
        super::builtin(
            "secured_monitored.firewall.default_deny",
            "filter incoming traffic",
            "on every firewalled host, every listening port and a test listener on an unlisted port, probed from every other host: only what the policy allows is open",
            check!(default_deny),
        ),
        super::builtin(
            "secured_monitored.monitoring.clients_up",
            "monitoring clients on all servers",
            "the monitoring server reports all three hosts' collectors up",
            check!(clients_up),
        ),
        super::builtin(
            "secured_monitored.monitoring.qps",
            "collects QPS",
            "N requests over T s: the monitored rate is N/T ± 10 %",
            check!(qps),
        ),
        super::builtin(
            "secured_monitored.monitoring.detects_down",
            "detect and resolve issues proactively",
            "stopping Nginx on server-1 shows as down in monitoring within 2 scrape intervals",
            check!(detects_down),
        ),
        super::builtin(
            "secured_monitored.monitoring.logs_centralised",
            "monitoring clients send logs and metrics to a central monitoring service",
            "requests made now, a page and a missing page on each web server, are found in the central log host's files (rsyslog) within a few seconds: the access log line and the error log line, each from the server that wrote it",
            check!(logs_centralised),
        ),
        super::builtin(
            "secured_monitored.monitoring.response_times",
            "collects data on response times",
            "the monitoring server holds a response-time series for every web server (HAProxy's per-server average total time, scraped by Prometheus), and the slowed backend's series rises when its link is cut to 32 kbit/s (tc TBF) while the other's does not",
            check!(response_times),
        ),
        super::builtin(
            "secured_monitored.issue.ssl_termination_plaintext",
            "SSL terminated at the LB leaves LB→server traffic unencrypted",
            "a capture of all traffic between lb-1 and the servers shows the secret of an HTTPS request (in its URL) in clear text",
            check!(ssl_termination_plaintext),
        ),
        super::builtin(
            "secured_monitored.remedy.reencrypt",
            "(the fix) TLS re-encryption to the backends",
            "with TLS re-encryption to the backends, the same capture shows no clear text and every claim above still holds",
            check!(reencrypt),
        ),
        super::builtin(
            "secured_monitored.issue.single_writer",
            "the primary is a write bottleneck / SPOF",
            "primary stopped: writes fail, reads continue",
            check!(single_writer),
        ),
        super::builtin(
            "secured_monitored.issue.same_components",
            "same components on all servers",
            "stopping server-1 loses a web backend and the primary at once: reads succeed, writes fail",
            check!(same_components),
        ),
    ]
}

/// The chain verifies against the run's CA for www.foobar.com; TLS 1.2 and
/// 1.3 accepted, 1.0 and 1.1 refused, each by a real openssl handshake.
async fn valid_cert(stack: &Stack) -> CheckResult {
    // reqwest trusts the run's CA only: success means the chain and the name verify.
    let verified = stack
        .client
        .fresh
        .get(https("/static/hello.txt"))
        .send()
        .await;
    let lb = stack.host(LB)?.addr("public").expect("lb-1 is public");
    let client = stack.host(CLIENT)?;
    let san = client
        .run(&format!(
            "openssl s_client -connect {lb}:443 -servername {WWW} </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName | tail -n +2"
        ))
        .await?;
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for (flag, name) in [
        ("-tls1", "1.0"),
        ("-tls1_1", "1.1"),
        ("-tls1_2", "1.2"),
        ("-tls1_3", "1.3"),
    ] {
        // Security level 0 lets this client offer the old versions at all.
        let cmd = format!(
            "openssl s_client -connect {lb}:443 -servername {WWW} {flag} -cipher 'DEFAULT:@SECLEVEL=0' -CAfile /etc/stackproof/ca.pem -verify_return_error </dev/null >/dev/null 2>&1"
        );
        if client.exec(&cmd).await?.code == 0 {
            accepted.push(name)
        } else {
            refused.push(name)
        }
    }
    let evidence = format!(
        "HTTPS GET with only the run's CA trusted: {}; SAN: {}; TLS accepted [{}], refused [{}] (openssl s_client from {CLIENT})",
        match &verified {
            Ok(r) => format!("{} (chain verified for {WWW})", r.status()),
            Err(e) => format!("FAILED ({})", probe::error_chain(e)),
        },
        san.trim(),
        accepted.join(", "),
        refused.join(", ")
    );
    ensure(
        verified.is_ok(),
        "the certificate does not verify against the run's CA",
        &evidence,
    )?;
    ensure(
        san.contains(&format!("DNS:{WWW}")),
        "the certificate does not name www.foobar.com",
        &evidence,
    )?;
    ensure_eq(
        "TLS versions accepted",
        vec!["1.2", "1.3"],
        accepted,
        &evidence,
    )?;
    Ok(evidence)
}

/// http:// answers 301 with a Location that is the same URL over https://,
/// for a static and a dynamic path, and every HTTPS answer carries HSTS
/// with a max-age of at least six months.
async fn redirect(stack: &Stack) -> CheckResult {
    let mut seen = Vec::new();
    let mut wrong = Vec::new();
    for path in ["/index.php?from=plain", STATIC] {
        let plain = stack
            .client
            .fresh
            .get(format!("http://{WWW}{path}"))
            .send()
            .await
            .map_err(|e| req_failed(path, &e))?;
        let location = header(&plain, "location");
        let status = plain.status().as_u16();
        let secure = stack
            .client
            .fresh
            .get(https(path))
            .send()
            .await
            .map_err(|e| req_failed(path, &e))?;
        let hsts = header(&secure, "strict-transport-security");
        let max_age = hsts_max_age(&hsts);
        seen.push(format!(
            "http://{WWW}{path} → {status} Location: {}; https:// → {} with Strict-Transport-Security: {}",
            if location.is_empty() { "(none)" } else { &location },
            secure.status().as_u16(),
            if hsts.is_empty() { "(none)" } else { &hsts }
        ));
        if status != 301 {
            wrong.push(format!(
                "{path}: plain HTTP answered {status}, not 301 (a permanent redirect)"
            ));
        }
        if location != https(path) {
            wrong.push(format!(
                "{path}: redirected to `{location}`, not the same URL over HTTPS `{}`",
                https(path)
            ));
        }
        if !max_age.is_some_and(|a| a >= HSTS_MIN_AGE) {
            wrong.push(format!(
                "{path}: HSTS max-age {} is not at least {HSTS_MIN_AGE} s (six months)",
                max_age
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "missing".into())
            ));
        }
    }
    let evidence = seen.join("; ");
    ensure_eq(
        "redirect and HSTS problems",
        Vec::<String>::new(),
        wrong,
        &evidence,
    )?;
    Ok(evidence)
}

/// The max-age of a Strict-Transport-Security header, in seconds.
fn hsts_max_age(header: &str) -> Option<u64> {
    header.split(';').find_map(|d| {
        let (k, v) = d.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| v.trim().trim_matches('"').parse().ok())?
    })
}

/// As distributed.lb.round_robin, over HTTPS.
async fn round_robin(stack: &Stack) -> CheckResult {
    crate::kinds::lb::round_robin_over(stack, &SERVERS, "nginx", "https", STATIC, 10).await
}

/// The design's firewall policy: may `r.from` reach `r.to`'s port `r.port`?
/// lb-1: the web from anywhere, its exporters (node 9100, HAProxy 8405)
/// from mon-1. Servers: their web server from lb-1, MySQL from the app
/// hosts (both run the app; server-2's database replicates from
/// server-1's), exporters (node 9100, Nginx 9113) from mon-1. Anything
/// else is dropped.
fn policy(r: &Reach, web_ports: &[u16], db_ports: &[u16]) -> bool {
    match r.to.as_str() {
        LB => [80, 443].contains(&r.port) || (r.from == MONITOR && [9100, 8405].contains(&r.port)),
        _ => {
            (r.from == LB && web_ports.contains(&r.port))
                || (SERVERS.contains(&r.from.as_str()) && db_ports.contains(&r.port))
                || (r.from == MONITOR && [9100, 9113].contains(&r.port))
        }
    }
}

/// The ports `process` listens on beyond loopback on `host`, or `default` when it listens on none.
async fn ports_of(
    stack: &Stack,
    host: &str,
    process: &str,
    default: u16,
) -> Result<Vec<u16>, Failure> {
    let ports: Vec<u16> = reach::listeners(stack.host(host)?)
        .await?
        .into_iter()
        .filter(|l| l.process == process)
        .map(|l| l.port)
        .collect();
    Ok(if ports.is_empty() {
        vec![default]
    } else {
        ports
    })
}

/// Every port lb-1 listens on (plus 80 and 443), probed from every host on
/// `public`: 80 and 443 are open, nothing else.
async fn lb_exposes_only_web(stack: &Stack) -> CheckResult {
    let listening = reach::listeners(stack.host(LB)?).await?;
    let mut ports: Vec<u16> = listening.iter().map(|l| l.port).chain([80, 443]).collect();
    ports.sort();
    ports.dedup();
    let on_public: Vec<String> = stack
        .hosts
        .values()
        .filter(|h| h.name != LB && h.addr("public").is_some())
        .map(|h| h.name.clone())
        .collect();
    let rows: Vec<Reach> = reach::matrix(stack, &[(LB, ports)])
        .await?
        .into_iter()
        .filter(|r| on_public.contains(&r.from))
        .collect();
    let evidence = format!(
        "lb-1 listens on [{}]; from public: {}",
        listening
            .iter()
            .map(|l| format!("{} ({})", l.port, l.process))
            .collect::<Vec<_>>()
            .join(", "),
        reach::table(&rows)
    );
    claim::ensure_measured(
        !rows.is_empty(),
        "no host on public to probe lb-1 from",
        &evidence,
    )?;
    ensure_eq(
        "ports of lb-1 whose reachability from public is wrong (only 80 and 443 may be open)",
        Vec::<String>::new(),
        reach::unexpected(&rows, |r| [80, 443].contains(&r.port)),
        &evidence,
    )?;
    Ok(evidence)
}

/// Every port `process` listens on on the servers (`default` when none)
/// probed from every other host: open exactly from the hosts `allowed` names.
async fn servers_reachable_only_from(
    stack: &Stack,
    process: &str,
    default: u16,
    what: &str,
    allowed: impl Fn(&str) -> bool,
) -> CheckResult {
    let mut targets = Vec::new();
    for s in SERVERS {
        targets.push((s, ports_of(stack, s, process, default).await?));
    }
    let listed = targets
        .iter()
        .map(|(s, p)| format!("{s} {process} on {p:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = reach::matrix(stack, &targets).await?;
    let evidence = format!("{listed}; {}", reach::table(&rows));
    ensure_eq(
        what,
        Vec::<String>::new(),
        reach::unexpected(&rows, |r| allowed(&r.from)),
        &evidence,
    )?;
    Ok(evidence)
}

/// Every port the servers' web server listens on is reachable from lb-1 and
/// from no other host, on any network.
async fn web_only_from_lb(stack: &Stack) -> CheckResult {
    servers_reachable_only_from(
        stack,
        "nginx",
        80,
        "web ports reachable other than from lb-1, or closed to it",
        |from| from == LB,
    )
    .await
}

/// Every port MariaDB listens on is reachable from the app hosts (and the
/// replica) only.
async fn db_only_from_app(stack: &Stack) -> CheckResult {
    servers_reachable_only_from(
        stack,
        "mariadbd",
        3306,
        "MySQL reachable other than from the app hosts, or closed to them",
        |from| SERVERS.contains(&from),
    )
    .await
}

/// On each firewalled host, every port that listens (and a test listener on
/// an unlisted port) is probed from every other host: only what the policy
/// allows is open, even from peers the host accepts something from.
async fn default_deny(stack: &Stack) -> CheckResult {
    let listen = format!(
        "setsid -f sh -c 'exec timeout 30 nc -lk -p {UNLISTED_PORT} >/dev/null 2>&1' </dev/null"
    );
    let hosts = [LB, "server-1", "server-2"];
    for h in hosts {
        stack.host(h)?.run(&listen).await?;
    }
    let result = async {
        let mut local = Vec::new();
        let mut targets = Vec::new();
        let (mut web, mut db) = (vec![80], vec![3306]);
        for h in hosts {
            local.push(
                stack
                    .host(h)?
                    .exec(&format!("nc -z -w 1 127.0.0.1 {UNLISTED_PORT}"))
                    .await?
                    .code
                    == 0,
            );
            let ports: Vec<u16> = reach::listeners(stack.host(h)?)
                .await?
                .into_iter()
                .map(|l| {
                    match l.process.as_str() {
                        "nginx" if h != LB => web.push(l.port),
                        "mariadbd" => db.push(l.port),
                        _ => {}
                    }
                    l.port
                })
                .collect();
            targets.push((h, ports));
        }
        let rows = reach::matrix(stack, &targets).await?;
        Ok::<_, Failure>((local, rows, web, db))
    }
    .await;
    for h in hosts {
        let _ = stack.host(h)?.exec("pkill -x nc").await;
    }
    let (local, rows, web, db) = result?;
    let evidence = format!(
        "a listener on unlisted port {UNLISTED_PORT} on lb-1, server-1, server-2 (answering locally: {local:?}); every listening port probed: {}",
        reach::table(&rows)
    );
    claim::ensure_measured(
        local.iter().all(|l| *l),
        "the test listener did not start",
        &evidence,
    )?;
    ensure_eq(
        "ports whose reachability differs from the firewall policy",
        Vec::<String>::new(),
        reach::unexpected(&rows, |r| policy(r, &web, &db)),
        &evidence,
    )?;
    Ok(evidence)
}

/// (host label, value) pairs of a query.
async fn by_host(stack: &Stack, query: &str) -> Result<Vec<(String, f64)>, Failure> {
    let mut out: Vec<(String, f64)> = prometheus(stack, query)
        .await?
        .iter()
        .filter_map(|r| {
            let host = r["metric"]["host"].as_str()?.to_string();
            let value = r["value"][1].as_str()?.parse().ok()?;
            Some((host, value))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The monitoring server reports all three hosts' collectors up.
async fn clients_up(stack: &Stack) -> CheckResult {
    let want: Vec<(String, f64)> = [LB, "server-1", "server-2"]
        .iter()
        .map(|h| (h.to_string(), 1.0))
        .collect();
    let _ = wait_for(Duration::from_secs(10), || async {
        by_host(stack, "up{job=\"node\"}")
            .await
            .is_ok_and(|v| v == want)
    })
    .await;
    let seen = by_host(stack, "up{job=\"node\"}").await?;
    let evidence = format!(
        "Prometheus on mon-1, up{{job=\"node\"}}: {}",
        seen.iter()
            .map(|(h, v)| format!("{h}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    ensure_eq("node collectors up", want, seen, &evidence)?;
    Ok(evidence)
}

/// N requests over T s: the rate the monitoring counted is N/T ± 10 %.
async fn qps(stack: &Stack) -> CheckResult {
    let counter = "sum(haproxy_frontend_http_requests_total{proxy=\"www\"})";
    let read = || async {
        prometheus(stack, counter).await.ok().and_then(|r| {
            r.first()
                .and_then(|v| v["value"][1].as_str()?.parse::<f64>().ok())
        })
    };
    // Wait for a scrape after our previous traffic, then one more, so "before" is settled.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let before = read().await;
    let started = Instant::now();
    let mut tick = tokio::time::interval(QPS_INTERVAL);
    for _ in 0..QPS_REQUESTS {
        tick.tick().await;
        let _ = stack
            .client
            .pooled
            .get(https("/static/hello.txt"))
            .send()
            .await;
    }
    let span = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let after = read().await;
    let sent_qps = QPS_REQUESTS as f64 / span;
    let (counted, monitored_qps) = match (before, after) {
        (Some(b), Some(a)) => (a - b, (a - b) / span),
        _ => (0.0, 0.0),
    };
    let error = (monitored_qps - sent_qps).abs() / sent_qps * 100.0;
    stack.record("monitored QPS error (%)", error);
    let evidence = format!(
        "sent {QPS_REQUESTS} HTTPS requests over {span:.2} s = {sent_qps:.1} qps; HAProxy's counter in Prometheus grew by {counted} = {monitored_qps:.1} qps; error {error:.1} % (allowed 10 %)"
    );
    ensure(
        before.is_some() && after.is_some(),
        "Prometheus has no HAProxy request counter",
        &evidence,
    )?;
    ensure(
        error <= 10.0,
        "the monitored rate is off by more than 10 %",
        &evidence,
    )?;
    Ok(evidence)
}

/// Stopping Nginx on server-1 shows as down in monitoring within 2 scrape intervals.
async fn detects_down(stack: &Stack) -> CheckResult {
    let query = "nginx_up{host=\"server-1\"}";
    let up_before = by_host(stack, query).await?;
    let fault = stack.apply(Fault::StopService("server-1", "nginx")).await?;
    let seen = wait_for(DOWN_WINDOW * 3, || async {
        by_host(stack, query)
            .await
            .is_ok_and(|v| v.iter().any(|(_, x)| *x == 0.0))
    })
    .await;
    fault.restore().await?;
    if let Some(d) = seen {
        stack.record("down detected (ms)", d.as_millis() as f64);
    }
    let evidence = format!(
        "{query} before: {up_before:?}; Nginx stopped on server-1: monitoring showed it down {} (window: 2 scrapes of 1 s + slack = {} ms)",
        seen.map(|d| format!("after {} ms", d.as_millis()))
            .unwrap_or_else(|| "NEVER".into()),
        DOWN_WINDOW.as_millis()
    );
    ensure(
        up_before.iter().any(|(_, v)| *v == 1.0),
        "monitoring did not show Nginx up before the fault",
        &evidence,
    )?;
    ensure(
        seen.is_some_and(|d| d <= DOWN_WINDOW),
        "monitoring did not show Nginx down in time",
        &evidence,
    )?;
    Ok(evidence)
}

/// Sends two HTTPS requests carrying a secret (in the URL, which no proxy
/// can strip without breaking the request, and in a header) while every
/// packet between lb-1 and each server is captured on the server, on any
/// port. Returns (requests answered, per server: bytes captured, whether
/// the secret was seen in clear text).
async fn secret_on_the_wire(stack: &Stack) -> Result<(usize, Vec<(String, usize, bool)>), Failure> {
    let secret = format!("secret{:016x}", rand::random::<u64>());
    let lb = stack
        .host(LB)?
        .addr("private")
        .ok_or_else(|| Failure::not_measured("lb-1 is not on `private`", ""))?;
    let filter = format!("tcp and host {lb}");
    let captures = futures::future::try_join_all(SERVERS.map(|s| {
        let filter = filter.clone();
        async move { Capture::start(stack.host(s)?, &filter).await }
    }))
    .await?;
    let mut sent = 0;
    for _ in 0..2 {
        let request = stack
            .client
            .fresh
            .get(https(&format!("{STATIC}?{secret}")))
            .header("X-Stackproof-Secret", &secret);
        if request.send().await.is_ok_and(|r| r.status().is_success()) {
            sent += 1;
        }
    }
    let mut seen = Vec::new();
    for (s, c) in SERVERS.iter().zip(captures) {
        let text = c.finish().await?;
        seen.push((s.to_string(), text.len(), text.contains(&secret)));
    }
    Ok((sent, seen))
}

/// The captures as text: `server-1 812 bytes, secret SEEN in clear text`.
fn captured(seen: &[(String, usize, bool)]) -> String {
    seen.iter()
        .map(|(s, n, c)| {
            format!(
                "{s} {n} bytes, secret {}",
                if *c { "SEEN in clear text" } else { "not seen" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Marked requests (a page, and a page that does not exist, which Nginx
/// writes to its error log) reach both web servers; each server's access
/// and error log lines must show up on the central log host.
async fn logs_centralised(stack: &Stack) -> CheckResult {
    let marker = format!("central{:08x}", rand::random::<u32>());
    // Two of each, so round-robin sends one of each to every server.
    let mut answered = Vec::new();
    for path in [
        format!("{STATIC}?{marker}"),
        format!("{STATIC}?{marker}"),
        format!("/static/missing-{marker}.txt"),
        format!("/static/missing-{marker}.txt"),
    ] {
        let status = stack
            .client
            .fresh
            .get(https(&path))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| req_failed(&path, &e))?;
        answered.push(status);
    }
    let central = stack.host(MONITOR)?;
    // Which of (server, kind) the central host holds, and after how long.
    let wanted: Vec<(&str, &str)> = SERVERS
        .iter()
        .flat_map(|s| [(*s, "nginx-access"), (*s, "nginx-error")])
        .collect();
    let started = Instant::now();
    let mut found: Vec<Option<Duration>> = vec![None; wanted.len()];
    while started.elapsed() < LOG_BUDGET && found.iter().any(Option::is_none) {
        let lines = central
            .run(&format!(
                "grep -H '{marker}' /var/log/central/*.log 2>/dev/null || true"
            ))
            .await?;
        for (i, (server, tag)) in wanted.iter().enumerate() {
            let file = format!("/var/log/central/{server}.log:");
            if found[i].is_none()
                && lines
                    .lines()
                    .any(|l| l.starts_with(&file) && l.contains(&format!("{tag}:")))
            {
                found[i] = Some(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(slowest) = found.iter().flatten().max() {
        stack.record(
            "central log: last line arrived (ms)",
            slowest.as_millis() as f64,
        );
    }
    let evidence = format!(
        "requests answered {answered:?}; on {MONITOR}'s central log: {}",
        wanted
            .iter()
            .zip(&found)
            .map(|((s, t), f)| format!(
                "{s} {t} {}",
                f.map(|d| format!("after {} ms", d.as_millis()))
                    .unwrap_or_else(|| "MISSING".into())
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    claim::ensure_measured(
        answered.iter().filter(|s| **s == 200).count() == 2,
        "the marked pages were not served, so there was nothing to log",
        &evidence,
    )?;
    let missing: Vec<String> = wanted
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|((s, t), _)| format!("{s} {t}"))
        .collect();
    ensure(
        missing.is_empty(),
        format!(
            "log lines written now never reached the central log host within {} ms: {}",
            LOG_BUDGET.as_millis(),
            missing.join(", ")
        ),
        &evidence,
    )?;
    Ok(evidence)
}

/// The monitored response-time series of the web tier: per web server,
/// HAProxy's average total time (ms) over its last 1024 requests, as
/// Prometheus holds it.
async fn response_series(stack: &Stack) -> Result<Vec<(String, f64)>, Failure> {
    let rows = prometheus(
        stack,
        "haproxy_server_total_time_average_seconds{proxy=\"web\"}",
    )
    .await?;
    let mut out: Vec<(String, f64)> = rows
        .iter()
        .filter_map(|r| {
            let server = r["metric"]["server"].as_str()?.to_string();
            let value: f64 = r["value"][1].as_str()?.parse().ok()?;
            Some((server, value * 1000.0))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Every web server has a monitored response-time series, and slowing one
/// backend's link makes its series rise while the other's stays put.
async fn response_times(stack: &Stack) -> CheckResult {
    let slowed = SERVERS[0];
    // A fresh monitoring server needs a scrape or two.
    let _ = wait_for(Duration::from_secs(5), || async {
        response_series(stack)
            .await
            .is_ok_and(|r| r.len() >= SERVERS.len())
    })
    .await;
    let before = response_series(stack).await?;
    let has = |rows: &[(String, f64)], s: &str| rows.iter().find(|(n, _)| n == s).map(|(_, v)| *v);
    let shown = |rows: &[(String, f64)]| {
        rows.iter()
            .map(|(s, v)| format!("{s} {v:.0} ms"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let missing: Vec<&str> = SERVERS
        .iter()
        .copied()
        .filter(|s| has(&before, s).is_none())
        .collect();
    ensure(
        missing.is_empty(),
        format!("the monitoring server holds no response-time series for {missing:?}"),
        &format!("series before: [{}]", shown(&before)),
    )?;
    let fault = stack.apply(Fault::SlowLink(slowed, SLOW_KBIT)).await?;
    // Concurrent dynamic pages: half go to the slowed server and queue on its link.
    let (answered, _) =
        probe::burst(&stack.client.fresh, &https("/index.php"), SLOW_REQUESTS).await;
    fault.restore().await?;
    let rose = |rows: &[(String, f64)]| matches!((has(rows, slowed), has(&before, slowed)), (Some(a), Some(b)) if a >= b + RESPONSE_RISE_MS);
    let mut after = response_series(stack).await?;
    let started = Instant::now();
    // A scrape or two until Prometheus has HAProxy's new averages.
    while !rose(&after) && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        after = response_series(stack).await?;
    }
    let evidence = format!(
        "series before: [{}]; {slowed}'s link cut to {SLOW_KBIT} kbit/s, {SLOW_REQUESTS} concurrent dynamic pages ({answered} answered); series after: [{}]",
        shown(&before),
        shown(&after)
    );
    claim::ensure_measured(
        answered > 0,
        "no request was answered while the backend was slowed",
        &evidence,
    )?;
    ensure(
        rose(&after),
        format!(
            "the monitored response time of {slowed} did not rise by {RESPONSE_RISE_MS} ms while its link was slowed"
        ),
        &evidence,
    )?;
    let other = SERVERS[1];
    ensure(
        has(&after, slowed) > has(&after, other),
        format!("the slowed {slowed} does not look slower than {other} in the monitoring"),
        &evidence,
    )?;
    Ok(evidence)
}

/// A capture on the LB→server path (every port) shows the secret of an
/// HTTPS request in clear text.
async fn ssl_termination_plaintext(stack: &Stack) -> CheckResult {
    let (sent, seen) = secret_on_the_wire(stack).await?;
    let evidence = format!(
        "{sent} of 2 HTTPS requests with a secret answered; captures on the servers of all traffic with lb-1: {}",
        captured(&seen)
    );
    claim::ensure_measured(
        sent > 0,
        "no HTTPS request was answered, so nothing crossed the path",
        &evidence,
    )?;
    claim::ensure_measured(
        seen.iter().any(|(_, n, _)| *n > 0),
        "the captures caught no traffic from lb-1 at all",
        &evidence,
    )?;
    ensure(
        seen.iter().any(|(_, _, c)| *c),
        "the secret never crossed the LB→server path in clear text",
        &evidence,
    )?;
    Ok(evidence)
}

/// Primary stopped: writes fail, reads continue (over HTTPS).
async fn single_writer(stack: &Stack) -> CheckResult {
    crate::kinds::db::single_writer_over(
        stack,
        "server-1",
        "mariadb-primary",
        "https",
        ("/write.php", "/index.php"),
        6,
    )
    .await
}

/// Stopping server-1 loses a web backend and the primary at once: reads succeed, writes fail.
async fn same_components(stack: &Stack) -> CheckResult {
    let fault = stack.apply(Fault::StopHost("server-1")).await?;
    let result = async {
        // Let HAProxy take server-1 out (inter 500 ms × fall 2) before judging reads.
        let lb = stack.host(LB)?;
        let ejected = wait_for(Duration::from_secs(5), || async {
            crate::measure::haproxy_status(lb).await.is_ok_and(|st| {
                st.iter()
                    .any(|(_, s, v)| s == "server-1" && v.starts_with("DOWN") && !v.contains('/'))
            })
        })
        .await;
        let (reads, _) = probe::burst(&stack.client.fresh, &https("/index.php"), REQUESTS).await;
        let (writes, write_err) =
            probe::burst(&stack.client.fresh, &https("/write.php"), REQUESTS).await;
        Ok::<_, Failure>((ejected, reads, writes, write_err))
    }
    .await;
    let restored = fault.restore().await;
    let (ejected, reads, writes, write_err) = result?;
    restored?;
    let evidence = format!(
        "server-1 (web backend and primary) stopped: HAProxy took it out {}; {reads} of {REQUESTS} reads and {writes} of {REQUESTS} writes succeeded{}",
        ejected
            .map(|d| format!("after {} ms", d.as_millis()))
            .unwrap_or_else(|| "NEVER".into()),
        write_err
            .map(|e| format!(" (first write error: {e})"))
            .unwrap_or_default()
    );
    ensure_eq(
        "(reads, writes) that succeeded",
        (REQUESTS, 0),
        (reads, writes),
        &evidence,
    )?;
    Ok(evidence)
}

/// The design with re-encryption to the backends (`fixtures/designs/secured_monitored/variants/reencrypt/`):
/// the same capture finds no clear text, and every claim above still holds.
async fn reencrypt(stack: &Stack) -> CheckResult {
    let fixtures = stack.fixtures.clone().with_variant("reencrypt")?;
    let variant = Stack::start(&stack.design, fixtures).await?;
    let (sent, seen) = secret_on_the_wire(&variant).await?;
    let mut held = Vec::new();
    for c in claims()
        .into_iter()
        .filter(|c| STILL_HOLD.contains(&c.id.as_str()))
    {
        let o = claim::run(&variant, &c).await;
        held.push((
            c.id.trim_start_matches("secured_monitored.").to_string(),
            o.verdict.label(),
            o.verdict.failure().map(|f| f.summary.clone()),
        ));
    }
    drop(variant);
    let unmeasured: Vec<String> = held
        .iter()
        .filter(|(_, v, _)| *v == "ERROR")
        .map(|(id, _, why)| format!("{id} ({})", why.clone().unwrap_or_default()))
        .collect();
    let failing: Vec<String> = held
        .iter()
        .filter(|(_, v, _)| *v == "FAIL")
        .map(|(id, _, why)| format!("{id} ({})", why.clone().unwrap_or_default()))
        .collect();
    let evidence = format!(
        "re-encrypting variant: {sent} of 2 HTTPS requests with a secret answered; captures on the servers of all traffic with lb-1: {}; claims still holding: {} of {}{}",
        captured(&seen),
        held.iter().filter(|(_, v, _)| *v == "PASS").count(),
        held.len(),
        if failing.is_empty() {
            String::new()
        } else {
            format!("; failing: {}", failing.join("; "))
        }
    );
    claim::ensure_measured(
        unmeasured.is_empty(),
        format!(
            "with the variant, claims could not be measured: {}",
            unmeasured.join("; ")
        ),
        &evidence,
    )?;
    ensure_eq("requests answered", 2, sent, &evidence)?;
    ensure(
        seen.iter().all(|(_, n, c)| *n > 0 && !c),
        "the secret still crossed the LB→server path in clear text",
        &evidence,
    )?;
    ensure(
        failing.is_empty(),
        "claims that held without re-encryption fail with it",
        &evidence,
    )?;
    Ok(evidence)
}
