//! VRRP kinds: a load-balancer pair sharing a virtual address (keepalived),
//! read from the hosts' own interfaces: who holds the VIP, and when.

use std::time::{Duration, Instant};

use super::common::{FAULT, FAULT_ARG, FAULT_SERVICE, FaultSpec, restore_all};
use super::{Facts, Kind, Param, Params, ServerView, Ty};
use crate::failure::{CheckResult, Failure, ensure, ensure_eq, ensure_measured};
use crate::measure::http;
use crate::probe;
use crate::recorder::Recorder;
use crate::stack::{Fault, Stack};

/// The VIP's address: a run address name such as `public.vip`.
fn vip_addr(stack: &Stack, vip: &str) -> Result<String, Failure> {
    super::dns::address_of(stack, vip)
}

/// Which of `lbs` hold the VIP now (all asked at once: one moment, not two).
pub(crate) async fn holders(
    stack: &Stack,
    lbs: &[&str],
    vip: &str,
) -> Result<Vec<String>, Failure> {
    let addr = vip_addr(stack, vip)?;
    let asks = lbs.iter().map(|lb| {
        let addr = addr.clone();
        async move {
            let h = stack.host(lb)?;
            // A stopped host holds nothing.
            let o = h
                .exec_within("ip -4 -o addr show", Duration::from_secs(5))
                .await;
            Ok::<_, Failure>(
                matches!(o, Ok(ref o) if o.stdout.contains(&format!("inet {addr}/")))
                    .then(|| lb.to_string()),
            )
        }
    });
    Ok(futures::future::try_join_all(asks)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// Polls the holders every 20 ms until `want` accepts them, at most `deadline`.
pub(crate) async fn wait_holders(
    stack: &Stack,
    lbs: &[&str],
    vip: &str,
    deadline: Duration,
    want: impl Fn(&[String]) -> bool,
) -> Result<Option<Duration>, Failure> {
    let started = Instant::now();
    while started.elapsed() < deadline {
        if want(&holders(stack, lbs, vip).await?) {
            return Ok(Some(started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(None)
}

/// Waits until `master` alone holds the VIP again after a fault (it has
/// the higher priority and takes it back), so the next claim finds the pair as designed.
async fn master_back(stack: &Stack, lbs: &[&str], vip: &str, master: &str) -> Result<(), Failure> {
    wait_holders(stack, lbs, vip, Duration::from_secs(10), |h| {
        h == [master.to_string()]
    })
    .await?
    .map(drop)
    .ok_or_else(|| {
        Failure::new(
            format!("{master} did not take the VIP back after the fault"),
            "",
        )
    })
}

/// Whether `master`'s keepalived file says `nopreempt`: a peer that, back
/// after a fault, leaves the VIP where it is, so which of the pair holds
/// it is whichever won last, not the one with the higher priority.
async fn does_not_preempt(stack: &Stack, master: &str, config: &str) -> Result<bool, Failure> {
    let text = stack
        .host(master)?
        .run(&format!("cat {config} 2>/dev/null || true"))
        .await?;
    Ok(text.lines().any(|line| {
        let code = line.split(['#', '!']).next().unwrap_or("");
        code.split_whitespace().next() == Some("nopreempt")
    }))
}

/// The pair's roles for a claim that faults the holder: `master` and
/// `backup` as named, swapped (with a note) when the master does not
/// preempt and its peer won the VIP (at the start, or after an earlier
/// fault). A pair that preempts gets up to 10 s for `master` to hold it.
async fn roles<'a>(
    stack: &Stack,
    master: &'a str,
    backup: &'a str,
    vip: &str,
    no_preempt: bool,
) -> Result<(&'a str, &'a str, Option<String>), Failure> {
    let lbs = [master, backup];
    if !no_preempt {
        // An earlier fault may have left the backup holding the VIP until
        // the master, back, takes it again.
        let _ = master_back(stack, &lbs, vip, master).await;
        return Ok((master, backup, None));
    }
    wait_holders(stack, &lbs, vip, Duration::from_secs(10), |h| h.len() == 1).await?;
    if holders(stack, &lbs, vip).await? == [backup.to_string()] {
        let note = format!(
            "{backup} held the VIP from the start (it won it while {master}, which does not preempt, was not master), so here {backup} is the master and {master} the backup"
        );
        return Ok((backup, master, Some(note)));
    }
    Ok((master, backup, None))
}

/// After a fault is undone: the pair as designed again. A pair that
/// preempts gets `master` holding the VIP back (at most 10 s); one whose
/// master says `nopreempt` leaves it where it is, so one holder is enough,
/// and if that is not `master` the stack is marked changed (the claims
/// after this one get a fresh one) and the note says so.
async fn pair_settled(
    stack: &Stack,
    lbs: &[&str],
    vip: &str,
    master: &str,
    no_preempt: bool,
) -> Result<Option<String>, Failure> {
    if !no_preempt {
        return master_back(stack, lbs, vip, master).await.map(|()| None);
    }
    let one = wait_holders(stack, lbs, vip, Duration::from_secs(10), |h| h.len() == 1).await?;
    let now = holders(stack, lbs, vip).await?;
    if one.is_none() || now.len() != 1 {
        return Err(Failure::new(
            format!(
                "after the fault the pair did not settle on one VIP holder: held by [{}]",
                now.join(", ")
            ),
            "",
        ));
    }
    if now[0] == master {
        return Ok(None);
    }
    stack.taint();
    Ok(Some(format!(
        "{} kept the VIP after {master} came back (`nopreempt`): the claims after this one get a fresh stack",
        now[0]
    )))
}

/// The keepalived file a claim reads `nopreempt` from.
const KEEPALIVED_CONFIG: Param = Param::optional(
    "keepalived_config",
    Ty::Text,
    "where keepalived's configuration is on `master` (read for `nopreempt`)",
    "\"/etc/keepalived/keepalived.conf\"",
);

const VIP_DOC: &str = "the VIP's run address name";

/// `vrrp.single_holder`: exactly one load balancer holds the VIP.
pub const SINGLE_HOLDER: Kind = Kind {
    name: "vrrp.single_holder",
    doc: "At each of `samples` samples `every_ms` apart, exactly one of `lbs` has the VIP on an interface.",
    params: &[
        Param::required("lbs", Ty::Hosts, "the load-balancer pair"),
        Param::optional("vip", Ty::Text, VIP_DOC, "\"public.vip\""),
        Param::optional("samples", Ty::Int, "how many samples", "20"),
        Param::optional("every_ms", Ty::Ms, "their spacing", "100"),
    ],
    example: r#"
[[claim]]
id = "my_site.lb.single_master"
says = "a primary LB with a backup"
kind = "vrrp.single_holder"
lbs = ["lb-1", "lb-2"]"#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(single_holder),
};

async fn single_holder(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    let (lbs, vip) = (p.list("lbs"), p.text("vip"));
    let (n, every) = (p.int("samples").max(1) as usize, p.ms("every_ms"));
    let mut samples = Vec::new();
    // Samples start `every` apart (the time a sample takes is inside it).
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for _ in 0..n {
        tick.tick().await;
        samples.push(holders(stack, &lbs, vip).await?);
    }
    let bad: Vec<&Vec<String>> = samples.iter().filter(|s| s.len() != 1).collect();
    let evidence = format!(
        "{n} samples {} ms apart: {} with exactly one holder ({}){}",
        every.as_millis(),
        n - bad.len(),
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

/// `vrrp.failover`: the backup takes the VIP when the master fails.
pub const FAILOVER: Kind = Kind {
    name: "vrrp.failover",
    doc: "While a probe requests the site every `probe_ms` (100 ms connect timeout): `master` holds the VIP; `fault` is applied to it; the VIP moves to `backup` within `move_budget_ms`, every request after the outage succeeds, and the measured outage (`failover outage (ms)`) stays within `outage_budget_ms`: on each run, or, when the claims file says `percentile = P` and the claim is repeated (`check --repeat N`), on the P-th percentile of its runs. Afterwards the master takes the VIP back before the next claim. A master whose keepalived says `nopreempt` keeps no claim on the VIP: the fault goes to whichever of the pair holds it, and a pair left the other way round gets the next claim a fresh stack.",
    params: &[
        Param::required("master", Ty::Host, "the load balancer that holds the VIP"),
        Param::required("backup", Ty::Host, "the one that must take over"),
        FAULT,
        FAULT_SERVICE,
        FAULT_ARG,
        Param::optional("vip", Ty::Text, VIP_DOC, "\"public.vip\""),
        Param::optional(
            "move_budget_ms",
            Ty::Ms,
            "how soon the VIP must move",
            "1000",
        ),
        Param::optional(
            "outage_budget_ms",
            Ty::Ms,
            "the longest outage clients may see",
            "1000",
        ),
        Param::optional("probe_ms", Ty::Ms, "the probe's interval", "20"),
        Param::optional(
            "settle_ms",
            Ty::Ms,
            "how long the probe goes on after the move",
            "1500",
        ),
        Param::optional("path", Ty::Text, "the page probed", "\"/static/hello.txt\""),
        KEEPALIVED_CONFIG,
    ],
    example: r#"
[[claim]]
id = "my_site.lb.failover"
says = "if the primary fails, the backup takes over"
kind = "vrrp.failover"
master = "lb-1"
backup = "lb-2"
fault = "stop_host""#,
    facts: Facts::PLAIN.timed().reads(&[
        ServerView::new("master", "keepalived", "keepalived"),
        ServerView::new("backup", "keepalived", "keepalived"),
    ]),
    check: crate::kind_check!(failover),
};

async fn failover(stack: &Stack, p: &Params, rec: &Recorder) -> CheckResult {
    let (named_master, vip) = (p.host("master"), p.text("vip"));
    let no_preempt = does_not_preempt(stack, named_master, p.text("keepalived_config")).await?;
    let (master, backup, swapped) =
        roles(stack, named_master, p.host("backup"), vip, no_preempt).await?;
    let fault = FaultSpec::of(p);
    let lbs = [master, backup];
    let (move_budget, outage_budget) = (p.ms("move_budget_ms"), p.ms("outage_budget_ms"));
    let interval = p.ms("probe_ms").max(Duration::from_millis(1));
    let before = holders(stack, &lbs, vip).await?;
    ensure_eq(
        "VIP holder before the fault",
        vec![master.to_string()],
        before.clone(),
        "",
    )?;
    let (report, applied) = probe::probe_through(
        &stack.client.probe,
        &http(p.text("path")),
        interval,
        p.ms("settle_ms"),
        5000,
        async {
            let guards = fault.apply(stack, &[master]).await?;
            rec.waiting_for(&format!("the VIP to move from {master} to {backup}"));
            let moved = wait_holders(
                stack,
                &lbs,
                vip,
                // At least 5 s: a user's pair with `advert_int 1` moves in
                // about 2.7 s, and the checklist says so against 1 s.
                super::common::late_wait(move_budget).max(Duration::from_secs(5)),
                |h| h == [backup.to_string()],
            )
            .await?;
            Ok::<_, Failure>((guards, moved))
        },
    )
    .await;
    let (guards, moved) = applied?;
    let after = holders(stack, &lbs, vip).await;
    restore_all(guards).await?;
    let kept = pair_settled(stack, &lbs, vip, named_master, no_preempt)
        .await
        .map_err(|mut f| {
            if f.evidence.is_empty() {
                f.evidence = format!(
                    "VIP on [{}] before the fault; {}",
                    before.join(", "),
                    report.summary()
                );
            }
            f
        })?;
    let after = after?;
    ensure_measured(
        report.sent() > 0,
        "the probe sent no request",
        &report.summary(),
    )?;
    ensure(
        report.up_before_fault(),
        "the site did not answer before the fault",
        &report.summary(),
    )?;
    let ok = |s: &probe::Sample| matches!(s.result, Ok(200..=299));
    let after_outage_ok = match report.samples.iter().rposition(|s| !ok(s)) {
        Some(i) => i + 1 < report.samples.len() && report.samples[i + 1..].iter().all(ok),
        None => true,
    };
    let moved_mark: Vec<(Duration, &str)> = moved.map(|d| (d, "VIP moved")).into_iter().collect();
    rec.record_timeline_marked(
        &fault.words(&[master]),
        &report,
        Some(outage_budget),
        &moved_mark,
    );
    rec.record("failover outage (ms)", report.outage_ms() as f64);
    rec.record("failover failed requests", report.failed() as f64);
    if let Some(d) = moved {
        rec.record("failover VIP moved (ms)", d.as_millis() as f64);
    }
    let evidence = format!(
        "probe every {} ms; VIP on [{}] before, [{}] after {} (moved in {}, budget {} ms); {}; outage budget {} ms{}",
        interval.as_millis(),
        before.join(", "),
        after.join(", "),
        fault.words(&[master]),
        moved
            .map(|d| format!("{} ms", d.as_millis()))
            .unwrap_or_else(|| "never".into()),
        move_budget.as_millis(),
        report.summary(),
        outage_budget.as_millis(),
        report
            .first_error()
            .map(|e| format!("; first error: {e}"))
            .unwrap_or_default()
    ) + &[swapped, kept]
        .into_iter()
        .flatten()
        .map(|note| format!("; {note}"))
        .collect::<String>();
    ensure_eq(
        "VIP holder after",
        vec![backup.to_string()],
        after,
        &evidence,
    )?;
    ensure(
        moved.is_some_and(|d| d <= move_budget),
        "the VIP did not move to the backup within its budget",
        &evidence,
    )?;
    ensure(
        after_outage_ok,
        "requests kept failing after the failover",
        &evidence,
    )?;
    // Judged by the runner: on this run, or on a percentile of a repeated
    // claim's runs (`percentile` in the claims file).
    rec.budget("failover outage (ms)", outage_budget.as_millis() as f64);
    Ok(evidence)
}

/// `vrrp.split_brain`: with the adverts cut, both take the VIP.
pub const SPLIT_BRAIN: Kind = Kind {
    name: "vrrp.split_brain",
    doc: "With every packet between `master` and `backup` dropped on the VIP's network (both ways: the adverts whatever carries them, VRRP's protocol 112 or AH's 51 with `auth_type AH`, multicast or unicast) while clients still reach both, both hold the VIP within `wait_ms`; the cut is checked to have taken effect by its own drop counters (nothing dropped: ERROR, the claim proved nothing). Reports what a probe saw meanwhile and, once the adverts flow again, how soon `master` alone holds it (which must happen; with `nopreempt` in the master's keepalived file, one holder, either).",
    params: &[
        Param::required("master", Ty::Host, "the load balancer that holds the VIP"),
        Param::required("backup", Ty::Host, "its peer"),
        Param::optional("vip", Ty::Text, VIP_DOC, "\"public.vip\""),
        Param::optional(
            "protocol",
            Ty::Text,
            "what the partition drops between the pair: `all` (the adverts, whatever protocol carries them), or one IP protocol (`112` for VRRP alone)",
            "\"all\"",
        ),
        Param::optional(
            "wait_ms",
            Ty::Ms,
            "how long the backup may take to claim the VIP",
            "5000",
        ),
        Param::optional("hold_ms", Ty::Ms, "how long the split is held", "1000"),
        Param::optional("probe_ms", Ty::Ms, "the probe's interval", "20"),
        KEEPALIVED_CONFIG,
    ],
    example: r#"
[[claim]]
id = "my_site.issue.split_brain"
says = "an LB pair that cannot hear itself splits"
kind = "vrrp.split_brain"
master = "lb-1"
backup = "lb-2""#,
    facts: Facts::PLAIN.timed().reads(&[
        ServerView::new("master", "keepalived", "keepalived"),
        ServerView::new("backup", "keepalived", "keepalived"),
    ]),
    check: crate::kind_check!(split_brain),
};

async fn split_brain(stack: &Stack, p: &Params, rec: &Recorder) -> CheckResult {
    let (named_master, vip, proto) = (p.host("master"), p.text("vip"), p.text("protocol"));
    // `public.vip`: the VIP's network is where keepalived's interface is,
    // so where the adverts travel; the pair's other networks stay whole.
    let vip_net = vip.split('.').next().unwrap_or(vip);
    let no_preempt = does_not_preempt(stack, named_master, p.text("keepalived_config")).await?;
    let (master, backup, swapped) =
        roles(stack, named_master, p.host("backup"), vip, no_preempt).await?;
    let lbs = [master, backup];
    let (wait, hold, interval) = (
        p.ms("wait_ms"),
        p.ms("hold_ms"),
        p.ms("probe_ms").max(Duration::from_millis(1)),
    );
    let before = holders(stack, &lbs, vip).await?;
    ensure_eq(
        "VIP holder before the adverts are cut",
        vec![master.to_string()],
        before,
        "",
    )?;
    let (report, split) = probe::probe_through(
        &stack.client.probe,
        &http("/static/hello.txt"),
        interval,
        Duration::from_millis(300),
        3000,
        async {
            let cut = if proto == "all" {
                stack.apply(Fault::CutOn(master, backup, vip_net)).await?
            } else {
                stack
                    .apply(Fault::Partition(master, backup, Some(proto)))
                    .await?
            };
            rec.waiting_for(&format!("both {master} and {backup} to take the VIP"));
            let both = wait_holders(stack, &lbs, vip, wait, |h| h.len() == lbs.len()).await?;
            tokio::time::sleep(hold).await;
            let still = holders(stack, &lbs, vip).await?;
            // Read before the rules go: the proof the cut dropped anything.
            let dropped = stack.packets_dropped_by_faults(&lbs).await?;
            cut.restore().await?;
            // Once the adverts meet, the higher priority wins, `nopreempt`
            // or not; which one that is is the design's, so one holder is
            // enough there, and the named master for a pair that preempts.
            let healed = wait_holders(stack, &lbs, vip, Duration::from_secs(10), |h| {
                h.len() == 1 && (no_preempt || h[0] == named_master)
            })
            .await?;
            let holder = holders(stack, &lbs, vip).await?;
            if healed.is_some() && holder != [named_master.to_string()] {
                stack.taint();
            }
            Ok::<_, Failure>((both, still, healed, holder, dropped))
        },
    )
    .await;
    let (both, still, healed, holder, dropped) = split?;
    ensure_measured(report.sent() > 0, "the probe sent no request", "")?;
    if let Some(d) = both {
        rec.record(
            "split brain: both hold the VIP after (ms)",
            d.as_millis() as f64,
        );
    }
    if let Some(d) = healed {
        rec.record(
            "split brain: one master again after (ms)",
            d.as_millis() as f64,
        );
    }
    rec.record_timeline(
        &format!("VRRP dropped between {master} and {backup}"),
        &report,
        None,
    );
    rec.record("split brain: failed requests", report.failed() as f64);
    let ms = |d: Option<Duration>| {
        d.map(|d| format!("{} ms", d.as_millis()))
            .unwrap_or_else(|| "never".into())
    };
    let cut = if proto == "all" {
        format!(
            "every packet between {master} and {backup} on `{vip_net}` (the VIP's network, where the adverts go)"
        )
    } else {
        format!("IP protocol {proto} between {master} and {backup}")
    };
    let evidence = format!(
        "{cut} dropped ({dropped} packets dropped by the cut), HTTP still flowing: both held the VIP after {}; {} ms later held by [{}]; clients meanwhile (probe every {} ms): {}{}; adverts restored: one master again after {} (held by [{}]){}",
        ms(both),
        hold.as_millis(),
        still.join(", "),
        interval.as_millis(),
        report.summary(),
        report
            .first_error()
            .map(|e| format!(" (first error: {e})"))
            .unwrap_or_default(),
        ms(healed),
        holder.join(", "),
        swapped.map(|note| format!("; {note}")).unwrap_or_default()
    );
    // A cut that dropped nothing did not take effect: no advert was kept
    // from anyone, so the pair's staying whole proves nothing.
    ensure_measured(
        both.is_some() || dropped > 0,
        format!("the cut between {master} and {backup} dropped no packet: it did not take effect"),
        &evidence,
    )?;
    ensure(
        both.is_some(),
        "the load balancers never both held the VIP although no advert crossed between them: no split brain (the pair has a guard against it)",
        &evidence,
    )?;
    ensure(
        healed.is_some(),
        "the pair did not settle on one master once the adverts flowed again",
        &evidence,
    )?;
    Ok(evidence)
}
