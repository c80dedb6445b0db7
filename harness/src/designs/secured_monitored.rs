//! secured_monitored: the distributed design with HTTPS at lb-1 (the run's
//! certificate), iptables firewalls on lb-1, server-1 and server-2, node
//! exporters on the three and Prometheus on mon-1; `client` is a host on
//! `public` for vantage points and openssl handshakes.
//! Design file: `fixtures/designs/secured_monitored.toml`.

use std::time::{Duration, Instant};

use futures::FutureExt;

use super::distributed::{round_robin_over, spof_primary_over};
use super::{header, prometheus, req_failed, wait_for};
use crate::capture::Capture;
use crate::claim;
use crate::claim::{Check, CheckResult, Claim, Failure, ensure, ensure_eq};
use crate::probe;
use crate::stack::{Stack, WWW};

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
];

const LB: &str = "lb-1";
const SERVERS: [&str; 2] = ["server-1", "server-2"];
const MONITOR: &str = "mon-1";
const CLIENT: &str = "client";
/// How long a firewalled port may stay silent before we call it closed.
const PORT_WAIT_S: u32 = 1;
/// A port nothing is configured for, to prove default deny (we listen on it).
const UNLISTED_PORT: u16 = 7777;
/// The QPS claim: N requests at a fixed rate.
const QPS_REQUESTS: u64 = 40;
const QPS_INTERVAL: Duration = Duration::from_millis(50);
/// Scrapes happen every second: two intervals, plus slack for the query.
const DOWN_WINDOW: Duration = Duration::from_millis(2500);
const REQUESTS: usize = 6;

fn https(path: &str) -> String {
    format!("https://{WWW}{path}")
}

/// The claims of secured_monitored, in CLAIMS.md order.
pub fn claims() -> Vec<Claim> {
    vec![
        Claim {
            id: "secured_monitored.https.valid_cert",
            says: "the load balancer serves HTTPS",
            check: check!(valid_cert),
        },
        Claim {
            id: "secured_monitored.https.redirect",
            says: "HTTPS protects user data",
            check: check!(redirect),
        },
        Claim {
            id: "secured_monitored.lb.round_robin",
            says: "round-robin",
            check: check!(round_robin),
        },
        Claim {
            id: "secured_monitored.firewall.lb_exposes_only_web",
            says: "a firewall controls incoming requests",
            check: check!(lb_exposes_only_web),
        },
        Claim {
            id: "secured_monitored.firewall.web_only_from_lb",
            says: "web servers have their own firewall",
            check: check!(web_only_from_lb),
        },
        Claim {
            id: "secured_monitored.firewall.db_only_from_app",
            says: "firewall secures data between servers",
            check: check!(db_only_from_app),
        },
        Claim {
            id: "secured_monitored.firewall.default_deny",
            says: "filter incoming traffic",
            check: check!(default_deny),
        },
        Claim {
            id: "secured_monitored.monitoring.clients_up",
            says: "monitoring clients on all servers",
            check: check!(clients_up),
        },
        Claim {
            id: "secured_monitored.monitoring.qps",
            says: "collects QPS",
            check: check!(qps),
        },
        Claim {
            id: "secured_monitored.monitoring.detects_down",
            says: "detect and resolve issues proactively",
            check: check!(detects_down),
        },
        Claim {
            id: "secured_monitored.issue.ssl_termination_plaintext",
            says: "SSL terminated at the LB leaves LB→server traffic unencrypted",
            check: check!(ssl_termination_plaintext),
        },
        Claim {
            id: "secured_monitored.remedy.reencrypt",
            says: "(the fix) TLS re-encryption to the backends",
            check: check!(reencrypt),
        },
        Claim {
            id: "secured_monitored.issue.single_writer",
            says: "the primary is a write bottleneck / SPOF",
            check: check!(single_writer),
        },
        Claim {
            id: "secured_monitored.issue.same_components",
            says: "same components on all servers",
            check: check!(same_components),
        },
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

/// http:// answers 301 to https://, and HTTPS answers carry HSTS.
async fn redirect(stack: &Stack) -> CheckResult {
    let plain = stack
        .client
        .fresh
        .get(format!("http://{WWW}/index.php"))
        .send()
        .await
        .map_err(|e| req_failed("/index.php", &e))?;
    let location = header(&plain, "location");
    let status = plain.status().as_u16();
    let secure = stack
        .client
        .fresh
        .get(https("/index.php"))
        .send()
        .await
        .map_err(|e| req_failed("/index.php", &e))?;
    let hsts = header(&secure, "strict-transport-security");
    let evidence = format!(
        "http:// → {status} Location: {location}; https:// → {} with Strict-Transport-Security: {}",
        secure.status().as_u16(),
        if hsts.is_empty() { "(none)" } else { &hsts }
    );
    ensure_eq("plain HTTP status", 301, status, &evidence)?;
    ensure(
        location.starts_with(&format!("https://{WWW}/")),
        "the redirect does not go to https://",
        &evidence,
    )?;
    ensure(
        hsts.contains("max-age="),
        "HTTPS answers carry no HSTS header",
        &evidence,
    )?;
    Ok(evidence)
}

/// As distributed.lb.round_robin, over HTTPS.
async fn round_robin(stack: &Stack) -> CheckResult {
    round_robin_over(stack, "https").await
}

/// Whether `addr:port` accepts a TCP connection from host `from` (waiting at most PORT_WAIT_S).
async fn open_from(
    stack: &Stack,
    from: &str,
    to: std::net::Ipv4Addr,
    port: u16,
) -> Result<bool, Failure> {
    let out = stack
        .host(from)?
        .exec(&format!("nc -z -w {PORT_WAIT_S} {to} {port}"))
        .await?;
    Ok(out.code == 0)
}

/// Checks every (from, to-host, network, port) at once; returns a printable matrix and the results.
async fn matrix(
    stack: &Stack,
    checks: &[(&str, &str, &str, u16)],
) -> Result<(String, Vec<((String, String, u16), bool)>), Failure> {
    let probes = checks.iter().map(|(from, to, net, port)| async move {
        let addr = stack
            .host(to)?
            .addr(net)
            .ok_or_else(|| Failure::new(format!("{to} is not on {net}"), ""))?;
        let open = open_from(stack, from, addr, *port).await?;
        Ok::<_, Failure>(((from.to_string(), format!("{to}.{net}"), *port), open))
    });
    let results = futures::future::try_join_all(probes).await?;
    let table = results
        .iter()
        .map(|((from, to, port), open)| {
            format!(
                "{from} → {to}:{port} {}",
                if *open { "open" } else { "closed" }
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Ok((table, results))
}

/// The probes whose result differs from `expect_open(from)`, printed.
fn unexpected(
    results: &[((String, String, u16), bool)],
    expect_open: impl Fn(&str) -> bool,
) -> Vec<String> {
    results
        .iter()
        .filter(|((from, _, _), open)| *open != expect_open(from))
        .map(|((from, to, port), open)| {
            format!(
                "{from} → {to}:{port} {}",
                if *open { "open" } else { "closed" }
            )
        })
        .collect()
}

/// From `public`, lb-1 accepts 80 and 443 and nothing else.
async fn lb_exposes_only_web(stack: &Stack) -> CheckResult {
    let ports = [80, 443, 22, 8405, 9100];
    let checks: Vec<_> = ports.iter().map(|p| (CLIENT, LB, "public", *p)).collect();
    let (table, results) = matrix(stack, &checks).await?;
    let open: Vec<u16> = results
        .iter()
        .filter(|(_, o)| *o)
        .map(|((_, _, p), _)| *p)
        .collect();
    ensure_eq(
        "ports of lb-1 open to public (HAProxy stats on 8405 and the node exporter on 9100 listen)",
        vec![80, 443],
        open,
        &table,
    )?;
    Ok(table)
}

/// The servers' port 80 answers lb-1 and nothing on `public`.
async fn web_only_from_lb(stack: &Stack) -> CheckResult {
    let mut checks = Vec::new();
    for s in SERVERS {
        checks.push((LB, s, "private", 80));
        checks.push((CLIENT, s, "public", 80));
    }
    let (table, results) = matrix(stack, &checks).await?;
    let bad = unexpected(&results, |from| from == LB);
    ensure_eq(
        "web ports reachable other than from lb-1, or closed to it",
        Vec::<String>::new(),
        bad,
        &table,
    )?;
    Ok(table)
}

/// 3306 answers the app hosts and the replica only.
async fn db_only_from_app(stack: &Stack) -> CheckResult {
    let checks = vec![
        ("server-2", "server-1", "private", 3306),
        ("server-1", "server-2", "private", 3306),
        (LB, "server-1", "private", 3306),
        (LB, "server-2", "private", 3306),
        (MONITOR, "server-1", "private", 3306),
        (CLIENT, "server-1", "public", 3306),
        (CLIENT, "server-2", "public", 3306),
    ];
    let (table, results) = matrix(stack, &checks).await?;
    let bad = unexpected(&results, |from| from.starts_with("server-"));
    ensure_eq(
        "MySQL reachable other than from the app hosts, or closed to them",
        Vec::<String>::new(),
        bad,
        &table,
    )?;
    Ok(table)
}

/// Each firewalled host drops an unlisted port even from a peer it otherwise accepts.
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
        for h in hosts {
            local.push(
                stack
                    .host(h)?
                    .exec(&format!("nc -z -w 1 127.0.0.1 {UNLISTED_PORT}"))
                    .await?
                    .code
                    == 0,
            );
        }
        // Peers each host accepts something from: mon-1 (exporters) for lb-1, lb-1 (HTTP) for the servers.
        let checks = vec![
            (MONITOR, LB, "private", UNLISTED_PORT),
            (LB, "server-1", "private", UNLISTED_PORT),
            (LB, "server-2", "private", UNLISTED_PORT),
        ];
        let (table, results) = matrix(stack, &checks).await?;
        Ok::<_, Failure>((local, table, results))
    }
    .await;
    for h in hosts {
        let _ = stack.host(h)?.exec("pkill -x nc").await;
    }
    let (local, table, results) = result?;
    let evidence = format!(
        "a listener on {UNLISTED_PORT} on lb-1, server-1, server-2 (answering locally: {local:?}); {table}"
    );
    ensure(
        local.iter().all(|l| *l),
        "the test listener did not start",
        &evidence,
    )?;
    let open = unexpected(&results, |_| false);
    ensure_eq(
        "unlisted ports reachable from allowed peers",
        Vec::<String>::new(),
        open,
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
    stack.stop_service("server-1", "nginx").await?;
    let seen = wait_for(DOWN_WINDOW * 3, || async {
        by_host(stack, query)
            .await
            .is_ok_and(|v| v.iter().any(|(_, x)| *x == 0.0))
    })
    .await;
    stack.start_service("server-1", "nginx").await?;
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

/// Captures `filter` on both servers while two HTTPS requests (one per
/// server, by round-robin) carry a secret header; returns how many were
/// answered 2xx and, per server, the bytes captured and whether the secret
/// was among them in clear text.
async fn secret_on_the_wire(
    stack: &Stack,
    filter: &str,
) -> Result<(usize, Vec<(String, usize, bool)>), Failure> {
    let secret = format!("secret-{:016x}", rand::random::<u64>());
    let captures = futures::future::try_join_all(
        SERVERS.map(|s| async move { Capture::start(stack.host(s)?, filter).await }),
    )
    .await?;
    let mut sent = 0;
    for _ in 0..2 {
        let request = stack
            .client
            .fresh
            .get(https("/static/hello.txt"))
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

/// A capture on the LB→server path shows a secret request header in clear text.
async fn ssl_termination_plaintext(stack: &Stack) -> CheckResult {
    let (sent, captured) = secret_on_the_wire(stack, "tcp port 80").await?;
    let seen: Vec<(String, bool)> = captured.into_iter().map(|(s, _, c)| (s, c)).collect();
    let evidence = format!(
        "{sent} HTTPS requests with a secret header; captures on the servers (tcp port 80, from lb-1): {}",
        seen.iter()
            .map(|(s, c)| format!(
                "{s} {}",
                if *c {
                    "saw it in clear text"
                } else {
                    "did not see it"
                }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    ensure(
        seen.iter().any(|(_, c)| *c),
        "the secret never crossed the LB→server path in clear text",
        &evidence,
    )?;
    Ok(evidence)
}

/// Primary stopped: writes fail, reads continue (over HTTPS).
async fn single_writer(stack: &Stack) -> CheckResult {
    spof_primary_over(stack, "https").await
}

/// Stopping server-1 loses a web backend and the primary at once: reads succeed, writes fail.
async fn same_components(stack: &Stack) -> CheckResult {
    stack.stop_host("server-1").await?;
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
    let restored = stack.start_host("server-1").await;
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

/// The design with re-encryption to the backends (`fixtures/variants/reencrypt/`):
/// the same capture finds no clear text, and every claim above still holds.
async fn reencrypt(stack: &Stack) -> CheckResult {
    let fixtures = stack.fixtures.clone().with_variant("reencrypt")?;
    let variant = Stack::start(&stack.design, fixtures).await?;
    let (sent, seen) = secret_on_the_wire(&variant, "tcp port 80 or tcp port 443").await?;
    let mut held = Vec::new();
    for c in claims().into_iter().filter(|c| STILL_HOLD.contains(&c.id)) {
        let o = claim::run(&variant, &c).await;
        held.push((
            c.id.trim_start_matches("secured_monitored.").to_string(),
            o.passed,
            o.failure.map(|f| f.summary),
        ));
    }
    drop(variant);
    let failing: Vec<String> = held
        .iter()
        .filter(|(_, ok, _)| !ok)
        .map(|(id, _, why)| format!("{id} ({})", why.clone().unwrap_or_default()))
        .collect();
    let evidence = format!(
        "re-encrypting variant: {sent} of 2 HTTPS requests with a secret header answered; captures on the servers (ports 80 and 443): {}; claims still holding: {} of {}{}",
        seen.iter()
            .map(|(s, n, c)| format!(
                "{s} {n} bytes, secret {}",
                if *c { "SEEN in clear text" } else { "not seen" }
            ))
            .collect::<Vec<_>>()
            .join(", "),
        held.len() - failing.len(),
        held.len(),
        if failing.is_empty() {
            String::new()
        } else {
            format!("; failing: {}", failing.join("; "))
        }
    );
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
