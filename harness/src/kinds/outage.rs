//! Outage kinds: what clients see while part of the design is down.

use std::time::Duration;

use super::common::{FAULT, FAULT_ARG, FAULT_SERVICE, FaultSpec, restore_all};
use super::{Facts, Kind, Param, Params, ServerView, Ty};
use crate::failure::{CheckResult, Failure, ensure, ensure_eq, ensure_measured};
use crate::measure::http;
use crate::probe;
use crate::recorder::Recorder;
use crate::stack::{Stack, WWW};

/// `outage.spof`: with these hosts (or services) down, the site is down.
pub const SPOF: Kind = Kind {
    name: "outage.spof",
    doc: "A single point of failure: the site answers before the fault; with `fault` applied to `hosts`, DNS still answers for www, every host in `still_up` still serves `path` when asked directly (so the outage is the fault's), and 0 of `requests` requests to www succeed.",
    params: &[
        FAULT,
        Param::required("hosts", Ty::Hosts, "the hosts it happens to"),
        FAULT_SERVICE,
        FAULT_ARG,
        Param::optional(
            "still_up",
            Ty::Hosts,
            "hosts that must still answer directly during the fault",
            "[]",
        ),
        Param::optional(
            "path",
            Ty::Text,
            "the page asked for",
            "\"/static/hello.txt\"",
        ),
        Param::optional("requests", Ty::Int, "requests sent during the fault", "10"),
    ],
    example: r#"
[[claim]]
id = "my_site.issue.spof_lb"
says = "the load balancer is a single point of failure"
kind = "outage.spof"
fault = "kill_service"
hosts = ["lb-1"]
service = "haproxy"
still_up = ["web-1", "web-2"]"#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(spof),
};

async fn spof(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    let (fault, path) = (FaultSpec::of(p), p.text("path"));
    let hosts = p.list("hosts");
    let n = p.int("requests").max(1) as usize;
    let (ok_before, _) = probe::burst(&stack.client.fresh, &http(path), 3).await;
    // The design's site not working before any fault is the design's
    // doing: a FAIL, not a measurement we could not make.
    ensure(
        ok_before == 3,
        format!(
            "before the fault only {ok_before} of 3 requests to {path} succeeded: the site does not work with every host up, so there is nothing for the fault to take away"
        ),
        "",
    )?;
    let guards = fault.apply(stack, &hosts).await?;
    let during = async {
        let dns = super::common::www_addresses(stack).await;
        let (ok, first_err) = probe::burst(&stack.client.fresh, &http(path), n).await;
        let mut direct = Vec::new();
        for &h in &p.list("still_up") {
            let url = format!("http://{}{path}", stack.host(h)?.main_addr());
            let up = stack
                .client
                .fresh
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            direct.push((h, up));
        }
        Ok::<_, Failure>((dns, ok, first_err, direct))
    }
    .await;
    // Undo whatever happened, so later claims see the design whole.
    let restored = restore_all(guards).await;
    let (dns, ok, first_err, direct) = during?;
    restored?;
    let evidence = format!(
        "3/3 before; {}: DNS {}; {ok} of {n} requests to {WWW}{path} succeeded{}{}",
        fault.words(&hosts),
        match &dns {
            Ok(a) => format!("still answers {}", a.join(", ")),
            Err(f) => format!("failed ({})", f.summary),
        },
        first_err
            .map(|e| format!(" (first error: {e})"))
            .unwrap_or_default(),
        if direct.is_empty() {
            String::new()
        } else {
            format!(
                "; answering directly: {}",
                direct
                    .iter()
                    .map(|(h, up)| format!("{h} {}", if *up { "yes" } else { "no" }))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    ensure(
        matches!(&dns, Ok(a) if !a.is_empty()),
        "DNS did not answer during the fault, so the outage is not the fault's",
        &evidence,
    )?;
    ensure(
        direct.iter().all(|(_, up)| *up),
        "a host that should still be up did not answer during the fault, so the outage is not the fault's alone",
        &evidence,
    )?;
    ensure_eq("requests that succeeded during the fault", 0, ok, &evidence)?;
    Ok(evidence)
}

/// `outage.restart_downtime`: a restart drops requests; a graceful reload does not.
pub const RESTART_DOWNTIME: Kind = Kind {
    name: "outage.restart_downtime",
    doc: "While a probe requests `path` every `probe_ms`: stopping and starting `service` on `host` (what a deploy that restarts it does) fails at least one request, and a graceful reload (the service's own reload command), done `reloads` times, fails none. Both are reported.",
    params: &[
        Param::required("host", Ty::Host, "where the service runs"),
        Param::required("service", Ty::Service, "the server restarted"),
        Param::optional("path", Ty::Text, "the page probed", "\"/static/hello.txt\""),
        Param::optional("probe_ms", Ty::Ms, "the probe's interval", "10"),
        Param::optional(
            "settle_ms",
            Ty::Ms,
            "how long the probe goes on after each action",
            "300",
        ),
        Param::optional(
            "reloads",
            Ty::Int,
            "graceful reloads probed, one after another (a server that restarts in 10 ms can slip between one reload's requests)",
            "1",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.issue.restart_downtime"
says = "maintenance means downtime"
kind = "outage.restart_downtime"
host = "server-1"
service = "nginx""#,
    facts: Facts::PLAIN.timed(),
    check: crate::kind_check!(restart_downtime),
};

async fn restart_downtime(stack: &Stack, p: &Params, rec: &Recorder) -> CheckResult {
    let (host, service) = (p.host("host"), p.text("service"));
    let (interval, settle) = (p.ms("probe_ms"), p.ms("settle_ms"));
    let interval = interval.max(Duration::from_millis(1));
    let client = &stack.client.fresh;
    let url = http(p.text("path"));
    let (restart, restarted) = probe::probe_through(client, &url, interval, settle, 3000, async {
        stack
            .apply(crate::stack::Fault::StopService(host, service))
            .await?
            .restore()
            .await
    })
    .await;
    restarted?;
    ensure_measured(
        restart.sent() > 5,
        "the probe sent too few requests to see the restart",
        &restart.summary(),
    )?;
    ensure(
        restart.up_before_fault(),
        "the site was not up before the restart, so there was no service for it to interrupt",
        &restart.summary(),
    )?;
    let mut reloads = Vec::new();
    for _ in 0..p.int("reloads").max(1) {
        let (reload, reloaded) = probe::probe_through(
            client,
            &url,
            interval,
            settle,
            3000,
            stack.reload_service(host, service),
        )
        .await;
        reloaded?;
        reloads.push(reload);
    }
    rec.record_timeline(
        &format!("stop and start {service} on {host}"),
        &restart,
        None,
    );
    for reload in &reloads {
        rec.record_timeline(
            &format!("graceful reload of {service} on {host}"),
            reload,
            None,
        );
    }
    let failed: usize = reloads.iter().map(|r| r.failed()).sum();
    rec.record("stop+start outage (ms)", restart.outage_ms() as f64);
    rec.record("graceful reload failed requests", failed as f64);
    let evidence = format!(
        "probe every {} ms: stop+start of {service} on {host}: {}; graceful reload{}: {}",
        interval.as_millis(),
        restart.summary(),
        if reloads.len() > 1 {
            format!(" ×{}", reloads.len())
        } else {
            String::new()
        },
        reloads
            .iter()
            .map(|r| r.summary())
            .collect::<Vec<_>>()
            .join("; ")
    );
    ensure(
        restart.failed() >= 1,
        format!("no request failed while {service} was stopped and started"),
        &evidence,
    )?;
    ensure_eq(
        &format!(
            "failed requests during a graceful reload (first error: {})",
            reloads
                .iter()
                .find_map(|r| r.first_error())
                .unwrap_or_default()
        ),
        0,
        failed,
        &evidence,
    )?;
    Ok(evidence)
}

/// `outage.reads_only`: losing one host leaves a site that reads but cannot write.
pub const READS_ONLY: Kind = Kind {
    name: "outage.reads_only",
    doc: "With `fault` applied to `hosts` (and, when `lb` is set, once HAProxy there marks the first of them DOWN), all `requests` reads (`read_path`) succeed and 0 of `requests` writes (`write_path`) do: the lost host carried the only writable database.",
    params: &[
        FAULT,
        Param::required("hosts", Ty::Hosts, "to which hosts"),
        FAULT_SERVICE,
        FAULT_ARG,
        Param::optional(
            "lb",
            Ty::Text,
            "the HAProxy host to wait on for the ejection (\"\": none)",
            "\"\"",
        ),
        crate::kinds::common::SCHEME,
        Param::optional("read_path", Ty::Text, "a page that reads", "\"/index.php\""),
        Param::optional(
            "write_path",
            Ty::Text,
            "a page that writes",
            "\"/write.php\"",
        ),
        Param::optional("requests", Ty::Int, "reads and writes sent", "6"),
    ],
    example: r#"
[[claim]]
id = "my_site.issue.same_components"
says = "same components on all servers"
kind = "outage.reads_only"
fault = "stop_host"
hosts = ["server-1"]
lb = "lb-1""#,
    facts: Facts::PLAIN.reads(&[ServerView::new("lb", "haproxy", "HAProxy")]),
    check: crate::kind_check!(reads_only),
};

async fn reads_only(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    let (fault, lb) = (FaultSpec::of(p), p.text("lb"));
    let hosts = p.list("hosts");
    let n = p.int("requests") as usize;
    let url = |path: &str| format!("{}://{WWW}{path}", p.text("scheme"));
    // How long HAProxy may take to notice is its own timers' business (a
    // precondition, not the promise): read from its running configuration.
    let eject_wait = if lb.is_empty() {
        None
    } else {
        let (inter, fall, _) =
            super::lb::check_timing(stack, lb, super::lb::HAPROXY_CONFIG, hosts[0]).await?;
        Some((ejection_wait(inter, fall), inter, fall))
    };
    let guards = fault.apply(stack, &hosts).await?;
    let during = async {
        let ejected = match eject_wait {
            None => None,
            Some((wait, _, _)) => super::lb::wait_status(stack, lb, hosts[0], "DOWN", wait).await?,
        };
        let (reads, _) = probe::burst(&stack.client.fresh, &url(p.text("read_path")), n).await;
        let (writes, write_err) =
            probe::burst(&stack.client.fresh, &url(p.text("write_path")), n).await;
        Ok::<_, Failure>((ejected, reads, writes, write_err))
    }
    .await;
    let restored = restore_all(guards).await;
    let (ejected, reads, writes, write_err) = during?;
    restored?;
    let evidence = format!(
        "{}{}: {reads} of {n} reads and {writes} of {n} writes succeeded{}",
        fault.words(&hosts),
        match eject_wait {
            None => String::new(),
            Some((wait, inter, fall)) => format!(
                "; HAProxy on {lb} took it out {} (waited up to {} ms: {fall} timed-out checks at its inter {} ms, from its running configuration)",
                ejected
                    .map(|d| format!("after {} ms", d.as_millis()))
                    .unwrap_or_else(|| "NEVER".into()),
                wait.as_millis(),
                inter.as_millis()
            ),
        },
        write_err
            .map(|e| format!(" (first write error: {e})"))
            .unwrap_or_default()
    );
    ensure_eq(
        "(reads, writes) that succeeded",
        (n, 0),
        (reads, writes),
        &evidence,
    )?;
    Ok(evidence)
}

/// How long to wait for HAProxy to mark a stopped server DOWN. A stopped
/// host does not refuse a check, it lets it time out: each of the `fall`
/// failed checks can take `inter` (HAProxy's check timeout at the
/// connection's layer) and `inter` more to the next one, after up to one
/// `inter` before the first; a second on top for our polling. Never more
/// than a minute, so a file with `inter 10m` cannot hang the claim.
fn ejection_wait(inter: Duration, fall: u32) -> Duration {
    (inter * (2 * fall + 1) + Duration::from_secs(1)).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ejection_wait_follows_haproxys_timers_within_a_minute() {
        // HAProxy's defaults (inter 2 s, fall 3): 15 s; a stopped host was
        // seen DOWN after 11-12 s, where a fixed 5 s failed.
        assert_eq!(
            ejection_wait(Duration::from_secs(2), 3),
            Duration::from_secs(15)
        );
        assert_eq!(
            ejection_wait(Duration::from_millis(500), 2),
            Duration::from_millis(3500)
        );
        assert_eq!(
            ejection_wait(Duration::from_secs(600), 3),
            Duration::from_secs(60)
        );
    }
}
