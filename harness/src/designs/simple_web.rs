//! simple_web: one server, LAMP. Client → DNS → server-1 (Apache, PHP-FPM,
//! MariaDB on one host). Design file: `fixtures/designs/simple_web/design.toml`.

use std::time::Duration;

use futures::FutureExt;
use hickory_proto::rr::{RData, RecordType};

use super::{header, req_failed};
use crate::claim::{CheckResult, Claim, Failure, ensure, ensure_eq};
use crate::client::{self, DnsTransport};
use crate::measure::{self, APACHE_ACCESS_LOG, FPM_ACCESS_LOG, http};
use crate::probe;
use crate::stack::{Fault, Stack, WWW};

/// The server the design names.
const SERVER: &str = "server-1";
/// The static file every design serves (fixtures/app/static/hello.txt).
const STATIC_PATH: &str = "/static/hello.txt";
/// The dynamic page (fixtures/app/index.php).
const DYNAMIC_PATH: &str = "/index.php";
/// Requests sent while the server is stopped: enough that a lucky success
/// would show, few enough to send at once (each waits out the connect timeout).
const SPOF_REQUESTS: usize = 10;
/// The restart claim's probe interval, as CLAIMS.md fixes it.
const RESTART_PROBE: Duration = Duration::from_millis(10);
/// How long the probe keeps going after the fault, to see the service back.
const RESTART_SETTLE: Duration = Duration::from_millis(300);

/// The claims of simple_web, in CLAIMS.md order.
pub fn claims() -> Vec<Claim> {
    vec![
        super::builtin(
            "simple_web.dns.www_a_record",
            "DNS resolves www.foobar.com to the server's IP",
            "over UDP and TCP, `www.foobar.com` has exactly one A record (no CNAME), equal to server-1's public address",
            check!(www_a_record),
        ),
        super::builtin(
            "simple_web.web.static_by_apache",
            "Apache serves static files",
            "a static file comes back byte-identical, `Server: Apache`, and PHP-FPM's access log does not grow",
            check!(static_by_apache),
        ),
        super::builtin(
            "simple_web.app.dynamic_by_php",
            "the web server forwards dynamic requests to PHP",
            "a PHP page comes back as generated HTML and PHP-FPM's access log grows by exactly one",
            check!(dynamic_by_php),
        ),
        super::builtin(
            "simple_web.db.query_flow",
            "the application queries MySQL",
            "a row changed directly in the database changes the page, and the database's own Com_select grows",
            check!(query_flow),
        ),
        super::builtin(
            "simple_web.host.single_server",
            "one server hosts all components",
            "Apache, PHP-FPM and mysqld run on the same host, whose address DNS returns and the client's TCP peer is",
            check!(single_server),
        ),
        super::builtin(
            "simple_web.issue.spof",
            "single point of failure",
            "with server-1 stopped, DNS still answers and 0 of N requests succeed",
            check!(spof),
        ),
        super::builtin(
            "simple_web.issue.restart_downtime",
            "maintenance means downtime",
            "stopping and starting the web server (what a deploy that restarts it does) during a 10 ms probe loop fails at least one request; a graceful reload fails none: report both",
            check!(restart_downtime),
        ),
    ]
}

/// Over UDP and over TCP: exactly one A record, no CNAME, equal to server-1's address.
async fn www_a_record(stack: &Stack) -> CheckResult {
    let expected = stack
        .host(SERVER)?
        .addr("public")
        .expect("server-1 is on public")
        .to_string();
    let mut evidence = Vec::new();
    for transport in [DnsTransport::Udp, DnsTransport::Tcp] {
        let resolver = client::resolver(stack.dns.addr, transport)?;
        let answers = client::query(&resolver, WWW, RecordType::A)
            .await
            .map_err(|e| {
                Failure::new(
                    format!("{transport:?} query for {WWW} failed: {e}"),
                    evidence.join("; "),
                )
            })?;
        let seen: Vec<String> = answers
            .iter()
            .map(|r| match &r.data {
                RData::A(a) => format!("A {a}"),
                RData::CNAME(c) => format!("CNAME {}", c.0),
                other => format!("{:?} {other}", r.record_type()),
            })
            .collect();
        evidence.push(format!(
            "{transport:?} {} → {}",
            stack.dns.addr,
            seen.join(", ")
        ));
        ensure_eq(
            &format!("{WWW} over {transport:?}"),
            vec![format!("A {expected}")],
            seen,
            &evidence.join("; "),
        )?;
    }
    Ok(format!("{}; server-1 is {expected}", evidence.join("; ")))
}

/// A static file comes back byte-identical from Apache, and PHP-FPM's log does not grow.
async fn static_by_apache(stack: &Stack) -> CheckResult {
    let php = stack.host(SERVER)?;
    let (file, _) = stack.fixtures.read("app/static/hello.txt")?;
    let want = std::fs::read(&file)
        .map_err(|e| Failure::new(format!("read {}: {e}", file.display()), ""))?;
    let fpm_before = measure::log_lines(php, FPM_ACCESS_LOG).await?;
    let marker = format!("st{:08x}", rand::random::<u32>());
    let resp = stack
        .client
        .fresh
        .get(http(&format!("{STATIC_PATH}?{marker}")))
        .send()
        .await
        .map_err(|e| req_failed(STATIC_PATH, &e))?;
    let status = resp.status().as_u16();
    let server = header(&resp, "server");
    let body = resp
        .bytes()
        .await
        .map_err(|e| req_failed(STATIC_PATH, &e))?;
    let fpm_after = measure::log_lines(php, FPM_ACCESS_LOG).await?;
    // Apache itself must have counted the request: a "0 PHP requests" means
    // nothing unless the web server's own log shows the request was served.
    measure::log_lines(php, APACHE_ACCESS_LOG).await?;
    let apache_counted = php
        .run(&format!("grep -c '{marker}' {APACHE_ACCESS_LOG} || true"))
        .await?
        .trim()
        .parse::<u64>()
        .unwrap_or(0);
    let evidence = format!(
        "GET {STATIC_PATH} → {status}, {} bytes ({}), Server: {server}; Apache's access log has it {apache_counted} time(s); PHP-FPM access log {fpm_before} → {fpm_after} lines",
        body.len(),
        if body.as_ref() == want.as_slice() {
            "identical to the fixture"
        } else {
            "DIFFERENT from the fixture"
        },
    );
    ensure_eq("status", 200, status, &evidence)?;
    ensure_eq(
        "body",
        String::from_utf8_lossy(&want).into_owned(),
        String::from_utf8_lossy(&body).into_owned(),
        &evidence,
    )?;
    ensure(
        server.starts_with("Apache"),
        format!("`Server: {server}` is not Apache"),
        &evidence,
    )?;
    ensure_eq(
        "the static request in Apache's own access log",
        1,
        apache_counted,
        &evidence,
    )?;
    ensure_eq(
        "PHP-FPM requests during a static request",
        0,
        fpm_after - fpm_before,
        &evidence,
    )?;
    Ok(evidence)
}

/// A PHP page comes back generated, and PHP-FPM's access log grows by exactly one.
async fn dynamic_by_php(stack: &Stack) -> CheckResult {
    let php = stack
        .hosts_running("php-fpm")
        .first()
        .copied()
        .ok_or_else(|| Failure::new("no host runs php-fpm", ""))?;
    let before = measure::log_lines(php, FPM_ACCESS_LOG).await?;
    let resp = stack
        .client
        .fresh
        .get(http(DYNAMIC_PATH))
        .send()
        .await
        .map_err(|e| req_failed(DYNAMIC_PATH, &e))?;
    let status = resp.status().as_u16();
    let body = resp
        .text()
        .await
        .map_err(|e| req_failed(DYNAMIC_PATH, &e))?;
    let after = measure::log_lines(php, FPM_ACCESS_LOG).await?;
    let evidence = format!(
        "GET {DYNAMIC_PATH} → {status}, {} bytes, {}; PHP-FPM access log on {} {before} → {after} lines",
        body.len(),
        if body.contains("<?php") {
            "PHP SOURCE returned"
        } else {
            "generated HTML"
        },
        php.name
    );
    ensure_eq("status", 200, status, &evidence)?;
    ensure(
        !body.contains("<?php"),
        "the page came back as PHP source, not generated HTML",
        &evidence,
    )?;
    ensure(body.contains("<html"), "the page is not HTML", &evidence)?;
    ensure_eq(
        "PHP-FPM requests for one dynamic page",
        1,
        after - before,
        &evidence,
    )?;
    Ok(evidence)
}

/// A row changed directly in the database changes the page, and Com_select grows.
async fn query_flow(stack: &Stack) -> CheckResult {
    let db = stack
        .hosts_running("mariadb")
        .first()
        .copied()
        .ok_or_else(|| Failure::new("no host runs mariadb", ""))?;
    let nonce = format!("greeting-{:08x}", rand::random::<u32>());
    measure::mariadb_sql(
        db,
        &format!("UPDATE foobar.greetings SET text = '{nonce}' WHERE id = 1"),
    )
    .await?;
    let before = measure::mariadb_status(db, "Com_select").await?;
    let body = stack
        .client
        .fresh
        .get(http(DYNAMIC_PATH))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| req_failed(DYNAMIC_PATH, &e))?
        .text()
        .await
        .map_err(|e| req_failed(DYNAMIC_PATH, &e))?;
    let after = measure::mariadb_status(db, "Com_select").await?;
    let evidence = format!(
        "set greeting to `{nonce}` in MariaDB on {}; page {} it; Com_select {before} → {after}",
        db.name,
        if body.contains(&nonce) {
            "shows"
        } else {
            "does NOT show"
        }
    );
    ensure(
        body.contains(&nonce),
        "the page does not show the row changed in the database",
        &evidence,
    )?;
    ensure(
        after > before,
        "the database counted no SELECT for the page",
        &evidence,
    )?;
    Ok(evidence)
}

/// Apache, PHP-FPM and mysqld run on one host, whose address DNS returns and the client reaches.
async fn single_server(stack: &Stack) -> CheckResult {
    let mut placement = Vec::new();
    for service in ["apache", "php-fpm", "mariadb"] {
        let mut on = Vec::new();
        for host in stack.hosts.values() {
            let pids = stack.pids(&host.name, service).await?;
            if !pids.is_empty() {
                on.push(host.name.clone());
            }
        }
        placement.push((service, on));
    }
    let resolver = client::resolver(stack.dns.addr, DnsTransport::Udp)?;
    let dns: Vec<String> = client::query(&resolver, WWW, RecordType::A)
        .await
        .map_err(|e| Failure::new(format!("DNS: {e}"), ""))?
        .iter()
        .filter_map(|r| r.data.ip_addr().map(|ip| ip.to_string()))
        .collect();
    let resp = stack
        .client
        .fresh
        .get(http(STATIC_PATH))
        .send()
        .await
        .map_err(|e| req_failed(STATIC_PATH, &e))?;
    let peer = resp
        .remote_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let server = stack.host(SERVER)?;
    let server_addr = server.main_addr().to_string();
    let evidence = format!(
        "{}; DNS → {}; client's TCP peer {peer}; {SERVER} is {server_addr}",
        placement
            .iter()
            .map(|(s, on)| format!("{s} on [{}]", on.join(", ")))
            .collect::<Vec<_>>()
            .join(", "),
        dns.join(", "),
    );
    let expected: Vec<(&str, Vec<String>)> = ["apache", "php-fpm", "mariadb"]
        .iter()
        .map(|s| (*s, vec![SERVER.to_string()]))
        .collect();
    ensure_eq("where each component runs", expected, placement, &evidence)?;
    ensure_eq("DNS answer", vec![server_addr.clone()], dns, &evidence)?;
    ensure_eq("client's TCP peer", server_addr, peer, &evidence)?;
    Ok(evidence)
}

/// With server-1 stopped, DNS still answers and no request succeeds.
async fn spof(stack: &Stack) -> CheckResult {
    let (ok_before, _) = probe::burst(&stack.client.fresh, &http(STATIC_PATH), 3).await;
    let fault = stack.apply(Fault::StopHost(SERVER)).await?;
    let result = async {
        let resolver = client::resolver(stack.dns.addr, DnsTransport::Udp)?;
        let dns = client::query(&resolver, WWW, RecordType::A).await;
        let (ok, first_err) =
            probe::burst(&stack.client.fresh, &http(STATIC_PATH), SPOF_REQUESTS).await;
        Ok::<_, Failure>((dns, ok, first_err))
    }
    .await;
    // Put the server back whatever happened, so later claims see the design whole.
    let restored = fault.restore().await;
    let (dns, ok, first_err) = result?;
    restored?;
    let dns_text = match &dns {
        Ok(records) => format!(
            "DNS still answers {}",
            records
                .iter()
                .filter_map(|r| r.data.ip_addr())
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => format!("DNS failed: {e}"),
    };
    let evidence = format!(
        "{ok_before}/3 requests before; {SERVER} stopped: {dns_text}; {ok} of {SPOF_REQUESTS} requests succeeded{}",
        first_err
            .map(|e| format!(" (first error: {e})"))
            .unwrap_or_default()
    );
    ensure(
        ok_before == 3,
        "the site did not answer before the fault",
        &evidence,
    )?;
    ensure(
        matches!(&dns, Ok(r) if !r.is_empty()),
        "DNS did not answer while the server was down",
        &evidence,
    )?;
    ensure_eq(
        "requests that succeeded with the only server stopped",
        0,
        ok,
        &evidence,
    )?;
    Ok(evidence)
}

/// Stop/start of the web server fails requests; a graceful reload fails none.
async fn restart_downtime(stack: &Stack) -> CheckResult {
    let client = &stack.client.fresh;
    let url = http(STATIC_PATH);
    let (restart, restarted) =
        probe::probe_through(client, &url, RESTART_PROBE, RESTART_SETTLE, 3000, async {
            stack
                .apply(Fault::StopService(SERVER, "apache"))
                .await?
                .restore()
                .await
        })
        .await;
    restarted?;
    crate::claim::ensure_measured(
        restart.sent() > 5 && restart.samples[0].result.is_ok(),
        "the probe did not see the site up before the restart",
        &restart.summary(),
    )?;
    let (reload, reloaded) = probe::probe_through(
        client,
        &url,
        RESTART_PROBE,
        RESTART_SETTLE,
        3000,
        stack.reload_service(SERVER, "apache"),
    )
    .await;
    reloaded?;
    stack.record("stop+start outage (ms)", restart.outage_ms() as f64);
    stack.record("graceful reload failed requests", reload.failed() as f64);
    let evidence = format!(
        "probe every {} ms: stop+start of apache: {}; graceful reload: {}",
        RESTART_PROBE.as_millis(),
        restart.summary(),
        reload.summary()
    );
    ensure(
        restart.failed() >= 1,
        "no request failed while the web server was stopped and started",
        &evidence,
    )?;
    ensure_eq(
        &format!(
            "failed requests during a graceful reload (first error: {})",
            reload.first_error().unwrap_or_default()
        ),
        0,
        reload.failed(),
        &evidence,
    )?;
    Ok(evidence)
}
