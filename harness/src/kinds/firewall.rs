//! Firewall kinds: which ports answer whom, probed for real.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Facts, Kind, Param, Params, Ty};
use crate::failure::{CheckResult, ensure_eq, ensure_measured};
use crate::reach::{self, Listener, Reach};
use crate::recorder::Recorder;
use crate::stack::Stack;

/// `firewall.open_to_client`: nothing stops the client reaching a port (a weakness).
pub const OPEN_TO_CLIENT: Kind = Kind {
    name: "firewall.open_to_client",
    doc: "A TCP connection from the client to `port` on each of `hosts` is accepted: no firewall stands between the world and that service (a weakness a design admits to).",
    params: &[
        Param::required("hosts", Ty::Hosts, "the hosts probed"),
        Param::required("port", Ty::Int, "the port (3306 for the database)"),
    ],
    example: r#"
[[claim]]
id = "my_site.issue.no_firewall"
says = "no firewall: the database port is open to anyone"
kind = "firewall.open_to_client"
hosts = ["db-1"]
port = 3306"#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(open_to_client),
};

async fn open_to_client(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    let port = p.int("port") as u16;
    let mut open = Vec::new();
    for &h in &p.list("hosts") {
        let addr = std::net::SocketAddr::from((stack.host(h)?.main_addr(), port));
        let ok = stack
            .client
            .net
            .connect(addr, Duration::from_secs(1))
            .await
            .is_ok();
        open.push((h.to_string(), ok));
    }
    let evidence = format!(
        "TCP connect from the client to port {port}: {}",
        open.iter()
            .map(|(s, ok)| format!("{s} {}", if *ok { "accepted" } else { "refused" }))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let want: Vec<(String, bool)> = open.iter().map(|(h, _)| (h.clone(), true)).collect();
    ensure_eq(
        &format!("{port} reachable from the client"),
        want,
        open,
        &evidence,
    )?;
    Ok(evidence)
}

/// One allowed path through a firewall: from these hosts (any when
/// absent) to these hosts (any probed host when absent), on these ports
/// and on every port `process` listens on at the target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    /// Who may connect; `None`: anyone.
    pub from: Option<Vec<String>>,
    /// To which hosts; `None`: every probed host.
    pub to: Option<Vec<String>>,
    /// The ports.
    pub ports: Vec<u16>,
    /// A process whose listening ports are allowed too (`nginx`, `mariadbd`).
    pub process: Option<String>,
}

impl Rule {
    /// Reads a rules list; with `hosts` non-empty, every host named must be one of them.
    pub fn parse_all(v: &toml::Value, hosts: &[&str]) -> Result<Vec<Rule>, String> {
        let list = v
            .as_array()
            .ok_or_else(|| format!("expected a list of rules, got {v}"))?;
        list.iter().map(|r| Rule::parse(r, hosts)).collect()
    }

    fn parse(v: &toml::Value, hosts: &[&str]) -> Result<Rule, String> {
        let t = v.as_table().ok_or_else(|| {
            format!("a rule is a table like {{ from = [\"lb-1\"], ports = [80] }}, got {v}")
        })?;
        let names = |key: &str| -> Result<Option<Vec<String>>, String> {
            let Some(x) = t.get(key) else { return Ok(None) };
            let list: Vec<String> = x
                .as_array()
                .and_then(|a| a.iter().map(|h| h.as_str().map(String::from)).collect())
                .ok_or_else(|| format!("`{key}` in a rule is a list of hosts, got {x}"))?;
            for h in &list {
                if !hosts.is_empty() && !hosts.contains(&h.as_str()) {
                    return Err(format!(
                        "rule names host `{h}`, which the design does not have; it has: {}",
                        hosts.join(", ")
                    ));
                }
            }
            Ok(Some(list))
        };
        for key in t.keys() {
            if !["from", "to", "ports", "process"].contains(&key.as_str()) {
                return Err(format!(
                    "a rule has no key `{key}`; rules take from, to, ports, process"
                ));
            }
        }
        let ports = match t.get("ports") {
            None => Vec::new(),
            Some(x) => x
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|p| p.as_integer().and_then(|i| u16::try_from(i).ok()))
                        .collect()
                })
                .ok_or_else(|| format!("`ports` in a rule is a list of ports, got {x}"))?,
        };
        let process = match t.get("process") {
            None => None,
            Some(x) => Some(
                x.as_str()
                    .ok_or_else(|| format!("`process` in a rule is a name, got {x}"))?
                    .to_string(),
            ),
        };
        if ports.is_empty() && process.is_none() {
            return Err("a rule needs `ports`, `process` or both".into());
        }
        Ok(Rule {
            from: names("from")?,
            to: names("to")?,
            ports,
            process,
        })
    }

    /// Whether this rule lets `r` through, given what each host listens on.
    fn allows(&self, r: &Reach, listening: &BTreeMap<String, Vec<Listener>>) -> bool {
        let has = |set: &Option<Vec<String>>, h: &str| {
            set.as_ref().is_none_or(|s| s.iter().any(|x| x == h))
        };
        has(&self.from, &r.from)
            && has(&self.to, &r.to)
            && (self.ports.contains(&r.port)
                || self.process.as_ref().is_some_and(|p| {
                    listening
                        .get(&r.to)
                        .is_some_and(|ls| ls.iter().any(|l| &l.process == p && l.port == r.port))
                }))
    }
}

/// `firewall.reachability`: every port probed from every host; open exactly where the rules allow.
pub const REACHABILITY: Kind = Kind {
    name: "firewall.reachability",
    doc: "On each of `hosts`, every port it listens on (read with `ss` on the host; only `ports_of`'s when set), plus `default_ports` and an optional test listener on `unlisted_port`, is probed with a TCP connect from every other host on every network they share (only from hosts on `from_network` when set): a port is open exactly when a rule of `allow` lets that host reach it. A listener nobody thought of is probed all the same.",
    params: &[
        Param::required(
            "hosts",
            Ty::Hosts,
            "the firewalled hosts whose ports are probed",
        ),
        Param::required(
            "allow",
            Ty::Rules,
            "what may be reached; anything else must be closed",
        ),
        Param::optional(
            "ports_of",
            Ty::Text,
            "probe only the ports this process listens on (`nginx`, `mariadbd`)",
            "\"\"",
        ),
        Param::optional(
            "default_ports",
            Ty::Ints,
            "ports probed even when nothing listens on them",
            "[]",
        ),
        Param::optional(
            "from_network",
            Ty::Text,
            "probe only over this network (to the targets' addresses on it, from the hosts on it)",
            "\"\"",
        ),
        Param::optional(
            "unlisted_port",
            Ty::Int,
            "a port no rule names, where a test listener is started (0: none)",
            "0",
        ),
        Param::optional(
            "allowed_must_be_open",
            Ty::Bool,
            "whether a port `allow` names must be found open (false for a claim whose sentence is only that the rest is closed, `filter incoming traffic`: an allowed port found closed is the breakage of the claims that use it, shown here as a note, never this claim's FAIL)",
            "true",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.firewall.db_only_from_app"
says = "only the app servers reach the database"
kind = "firewall.reachability"
hosts = ["db-1"]
ports_of = "mariadbd"
default_ports = [3306]
allow = [{ from = ["app-1", "app-2"], process = "mariadbd", ports = [3306] }]"#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(reachability),
};

async fn reachability(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    let hosts = p.list("hosts");
    let rules = p.rules("allow");
    let (ports_of, network) = (p.text("ports_of"), p.text("from_network"));
    let defaults: Vec<u16> = p
        .ints("default_ports")
        .into_iter()
        .map(|i| i as u16)
        .collect();
    let unlisted = p.int("unlisted_port") as u16;
    if unlisted > 0 {
        let listen = format!(
            "setsid -f sh -c 'exec timeout 30 nc -lk -p {unlisted} >/dev/null 2>&1' </dev/null"
        );
        for &h in &hosts {
            stack.host(h)?.run(&listen).await?;
        }
    }
    let probed = async {
        let mut listening = BTreeMap::new();
        let mut local = Vec::new();
        let mut targets = Vec::new();
        for &h in &hosts {
            if unlisted > 0 {
                local.push(
                    stack
                        .host(h)?
                        .exec(&format!("nc -z -w 1 127.0.0.1 {unlisted}"))
                        .await?
                        .code
                        == 0,
                );
            }
            let ls = reach::listeners(stack.host(h)?).await?;
            let mut ports: Vec<u16> = ls
                .iter()
                .filter(|l| ports_of.is_empty() || l.process == ports_of)
                .map(|l| l.port)
                .chain(defaults.iter().copied())
                .collect();
            ports.sort();
            ports.dedup();
            listening.insert(h.to_string(), ls);
            targets.push((h, ports));
        }
        // From `from_network`: probes that travel over it, to the target's
        // address there, not what the same hosts send over another network.
        let on = (!network.is_empty()).then_some(network);
        let rows: Vec<Reach> = reach::matrix(stack, &targets, on).await?;
        Ok::<_, crate::failure::Failure>((listening, local, rows))
    }
    .await;
    if unlisted > 0 {
        for &h in &hosts {
            let _ = stack.host(h)?.exec("pkill -x nc").await;
        }
    }
    let (listening, local, rows) = probed?;
    let evidence = format!(
        "listening: {}{}; probed{}: {}",
        listening
            .iter()
            .map(|(h, ls)| format!(
                "{h} [{}]",
                ls.iter()
                    .map(|l| format!("{} {}", l.port, l.process))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .collect::<Vec<_>>()
            .join(", "),
        if unlisted > 0 {
            format!("; test listener on unlisted port {unlisted} (answering locally: {local:?})")
        } else {
            String::new()
        },
        if network.is_empty() {
            String::new()
        } else {
            format!(" from `{network}`")
        },
        reach::table(&rows)
    );
    ensure_measured(
        !rows.is_empty(),
        "no host could probe the firewalled hosts",
        &evidence,
    )?;
    ensure_measured(
        local.iter().all(|l| *l),
        "the test listener did not start",
        &evidence,
    )?;
    let wrong = reach::unexpected(&rows, |r| {
        rules.iter().any(|rule| rule.allows(r, &listening))
    });
    if p.flag("allowed_must_be_open") {
        ensure_eq(
            "ports whose reachability differs from the allowed rules",
            Vec::<String>::new(),
            wrong,
            &evidence,
        )?;
        return Ok(evidence);
    }
    // This claim's sentence is only that what is not allowed is closed.
    let (open, closed): (Vec<String>, Vec<String>) = wrong
        .into_iter()
        .partition(|w| w.ends_with("(should be closed)"));
    ensure_eq(
        "ports open although no rule allows them",
        Vec::<String>::new(),
        open,
        &evidence,
    )?;
    if closed.is_empty() {
        return Ok(evidence);
    }
    Ok(format!(
        "{evidence}; note: allowed but closed (the breakage of the claims that use them, not of this one): {}",
        closed.join("; ")
    ))
}
