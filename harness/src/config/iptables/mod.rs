//! A user's firewall, as they set it up on one server: an `iptables-save`
//! file (`/etc/iptables/rules.v4`), a script of `iptables` commands, or a
//! script of `ufw` commands (the common student form). Each becomes
//! iptables-restore rules for one host of the design (each host its own
//! copy). Addresses in rules keep their meaning: a host another file (or
//! `--address`) named becomes that host, loopback and "anywhere" stay, a
//! private range becomes the run's network; any other address stops the
//! run with the line and how to name it. Interfaces become the host's own.

use std::path::Path;

use super::{Mapped, Target, file_label, is_ipv4};
use crate::error::{Error, Result};

/// The input form, told from its lines.
#[derive(Debug, PartialEq, Eq)]
enum Form {
    Restore,
    Commands,
}

/// One table being built: its chains' policies and its rules, in order.
struct Table {
    name: String,
    chains: Vec<(String, String)>,
    rules: Vec<String>,
}

/// The rules being built, table by table.
#[derive(Default)]
struct Rules {
    tables: Vec<Table>,
}

impl Rules {
    fn table(&mut self, name: &str) -> &mut Table {
        if !self.tables.iter().any(|t| t.name == name) {
            let builtin: &[&str] = match name {
                "filter" => &["INPUT", "FORWARD", "OUTPUT"],
                "nat" => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
                _ => &[],
            };
            self.tables.push(Table {
                name: name.to_string(),
                chains: builtin
                    .iter()
                    .map(|c| (c.to_string(), "ACCEPT".to_string()))
                    .collect(),
                rules: Vec::new(),
            });
        }
        self.tables
            .iter_mut()
            .find(|t| t.name == name)
            .expect("just added")
    }

    fn policy(&mut self, table: &str, chain: &str, policy: &str) {
        let t = self.table(table);
        match t.chains.iter_mut().find(|(c, _)| c == chain) {
            Some(p) => p.1 = policy.to_string(),
            None => t.chains.push((chain.to_string(), policy.to_string())),
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for t in &self.tables {
            out.push_str(&format!("*{}\n", t.name));
            for (c, p) in &t.chains {
                out.push_str(&format!(":{c} {p} [0:0]\n"));
            }
            for r in &t.rules {
                out.push_str(r);
                out.push('\n');
            }
            out.push_str("COMMIT\n");
        }
        out
    }
}

/// Where a `ufw` rule command puts its rule.
#[derive(Clone, Copy)]
enum UfwMode {
    Append,
    /// `ufw insert N`: before the rule now at N (0-based here).
    Insert(usize),
    Delete,
}

/// ufw's application profiles as Debian's packages define them, and their ports.
const UFW_PROFILES: &[(&str, &str)] = &[
    ("OpenSSH", "22/tcp"),
    ("Nginx Full", "80,443/tcp"),
    ("Nginx HTTP", "80/tcp"),
    ("Nginx HTTPS", "443/tcp"),
    ("Apache Full", "80,443/tcp"),
    ("Apache", "80/tcp"),
    ("Apache Secure", "443/tcp"),
    ("WWW Full", "80,443/tcp"),
    ("WWW", "80/tcp"),
    ("WWW Secure", "443/tcp"),
];

/// Whether `addr` (an address or a CIDR) is in a private range.
fn private_range(addr: &str) -> bool {
    let ip = addr.split('/').next().unwrap_or("");
    ip.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|a| a.is_private())
}

/// Maps `text` (from `file`) for `target.host`.
pub fn map(file: &Path, text: &str, target: &Target) -> Result<Mapped> {
    let name = file_label(file);
    let at = |n: usize| format!("{name}:{n}");
    let host = target.host.expect("firewall files are mapped per host");
    let net = target.inner_network(host);
    let first_net = target
        .design
        .spec
        .host(host)
        .and_then(|h| h.networks.first().cloned())
        .unwrap_or_else(|| net.clone());
    let form = if text.lines().any(|l| l.trim().starts_with('*')) {
        Form::Restore
    } else {
        Form::Commands
    };
    let mut out = Mapped::default();
    let mut rules = Rules::default();
    let mut table = "filter".to_string();
    let mut ufw_enabled = false;
    let mut ufw_used = false;
    // The chains whose policy a `ufw default` line set.
    let mut ufw_defaults_set: Vec<&str> = Vec::new();
    // The chains whose ufw default is `reject`: a chain's policy cannot be
    // REJECT, so ufw sets DROP and ends the chain with a REJECT rule.
    let mut ufw_reject_default: Vec<&str> = Vec::new();
    // The rules ufw commands made (a script may mix them with iptables').
    let mut ufw_made: Vec<String> = Vec::new();
    // Addresses and interfaces of one rule, in the run's terms.
    let map_words = |words: &[&str], n: usize, out: &mut Mapped| -> Result<Vec<String>> {
        let mut mapped = Vec::with_capacity(words.len());
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            mapped.push(w.to_string());
            let value = words.get(i + 1).copied();
            match (w, value) {
                ("-s" | "--source" | "-d" | "--destination" | "from" | "to", Some(v))
                    if v != "any" =>
                {
                    mapped.push(map_address(v, n, target, &net, &at, file, out)?);
                    i += 2;
                    continue;
                }
                ("-i" | "--in-interface" | "-o" | "--out-interface" | "on", Some(v))
                    if v != "lo" =>
                {
                    let to = format!("{{{{ self.{first_net}.iface }}}}");
                    out.lines.push(format!(
                        "{}: interface {v} -> {to} ({host}'s interface on `{first_net}`)",
                        at(n)
                    ));
                    mapped.push(to);
                    i += 2;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        Ok(mapped)
    };
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let code = raw.split('#').next().unwrap_or("").trim();
        if code.is_empty() {
            continue;
        }
        if form == Form::Restore {
            if let Some(t) = code.strip_prefix('*') {
                table = t.to_string();
                rules.table(&table);
            } else if let Some(chain) = code.strip_prefix(':') {
                let mut w = chain.split_whitespace();
                let (c, p) = (w.next().unwrap_or(""), w.next().unwrap_or("-"));
                rules.policy(&table, c, p);
            } else if code == "COMMIT" {
            } else {
                let words: Vec<&str> = code.split_whitespace().collect();
                let mapped = map_words(&words, n, &mut out)?;
                rules.table(&table).rules.push(mapped.join(" "));
            }
            continue;
        }
        // `echo "y" | sudo ufw enable`, `yes | ufw enable`: the answer to
        // ufw's prompt piped in, then the command itself.
        let code = match code.rsplit_once('|') {
            Some((feed, command))
                if ["echo ", "yes", "printf "]
                    .iter()
                    .any(|f| feed.trim_start().starts_with(f)) =>
            {
                command.trim()
            }
            _ => code,
        };
        // A script: one command a line, `sudo` and full paths allowed.
        let words: Vec<&str> = code
            .split_whitespace()
            .skip_while(|w| *w == "sudo")
            .collect();
        // `/sbin/iptables` is iptables; `IPT=/sbin/iptables` is not.
        let program = words
            .first()
            .map(|p| {
                if p.starts_with('/') {
                    p.rsplit('/').next().unwrap_or(p)
                } else {
                    p
                }
            })
            .unwrap_or("");
        match program {
            "iptables" => {
                let mut args: Vec<&str> = words[1..].to_vec();
                let mut t = "filter".to_string();
                if let Some(p) = args.iter().position(|a| *a == "-t" || *a == "--table") {
                    t = args.get(p + 1).copied().unwrap_or("filter").to_string();
                    args.drain(p..(p + 2).min(args.len()));
                }
                match args.first().copied() {
                    Some("-P" | "--policy") => {
                        rules.policy(
                            &t,
                            args.get(1).copied().unwrap_or(""),
                            args.get(2).copied().unwrap_or("ACCEPT"),
                        );
                    }
                    Some("-N" | "--new-chain") => {
                        rules.policy(&t, args.get(1).copied().unwrap_or(""), "-");
                    }
                    Some("-A" | "--append" | "-I" | "--insert") => {
                        let mapped = map_words(&args, n, &mut out)?;
                        rules.table(&t).rules.push(mapped.join(" "));
                    }
                    Some("-F" | "--flush" | "-X" | "--delete-chain" | "-Z" | "--zero") => {}
                    _ => {
                        return Err(Error::InvalidFixture {
                            path: file.to_path_buf(),
                            detail: format!(
                                "line {n}: `{code}` is not a rule stackproof can replay (it replays -P, -N, -A, -I, -F, -X)"
                            ),
                        });
                    }
                }
            }
            "ufw" => {
                ufw_used = true;
                // `ufw --force enable`; `ufw allow 'Nginx Full'` (an application profile).
                // `comment 'why'` (ufw 0.35+) labels a rule: not part of it.
                let words = match words.iter().position(|w| *w == "comment") {
                    Some(i) => &words[..i],
                    None => &words[..],
                };
                let mut args: Vec<&str> = words[1..]
                    .iter()
                    .copied()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                // `insert N <rule>` puts the rule at position N, `delete <rule>`
                // takes it out again; `prepend` is `insert 1`.
                let mode = match args.as_slice() {
                    ["insert", pos, ..] => {
                        let at_pos = pos.parse::<usize>().unwrap_or(1).max(1) - 1;
                        args.drain(..2);
                        UfwMode::Insert(at_pos)
                    }
                    ["prepend", ..] => {
                        args.remove(0);
                        UfwMode::Insert(0)
                    }
                    ["delete", ..] => {
                        args.remove(0);
                        UfwMode::Delete
                    }
                    _ => UfwMode::Append,
                };
                let joined = args.get(1..).unwrap_or(&[]).join(" ");
                let profile = joined.trim_matches(['\'', '"']);
                let profile_ports = UFW_PROFILES
                    .iter()
                    .find(|(name, _)| profile.eq_ignore_ascii_case(name))
                    .map(|(_, ports)| *ports);
                let args: Vec<&str> = match profile_ports {
                    Some(ports) => vec![args[0], ports],
                    None => args,
                };
                match args.as_slice() {
                    ["enable", ..] => ufw_enabled = true,
                    ["disable", ..] => ufw_enabled = false,
                    ["reset", ..] => {
                        // Off, every rule and default back to the package's.
                        rules = Rules::default();
                        ufw_defaults_set.clear();
                        ufw_reject_default.clear();
                        ufw_made.clear();
                        ufw_enabled = false;
                        out.lines.push(format!(
                            "{}: ufw reset -> every rule removed, ufw off, its defaults back",
                            at(n)
                        ));
                    }
                    ["default", policy, rest @ ..] => {
                        // `ufw default POLICY [incoming|outgoing|routed]`: a
                        // word ufw does not know makes it refuse the line
                        // (and set no policy), as `incomming` does.
                        let direction = rest.first().copied().unwrap_or("incoming");
                        let chain = match direction {
                            "incoming" => Some("INPUT"),
                            "outgoing" => Some("OUTPUT"),
                            "routed" => Some("FORWARD"),
                            _ => None,
                        };
                        let p = match *policy {
                            "allow" => Some("ACCEPT"),
                            "deny" => Some("DROP"),
                            "reject" => Some("REJECT"),
                            _ => None,
                        };
                        let (Some(chain), Some(p)) = (chain, p) else {
                            let wrong = if chain.is_none() {
                                format!(
                                    "direction `{direction}` (ufw knows incoming, outgoing, routed)"
                                )
                            } else {
                                format!("policy `{policy}` (ufw knows allow, deny, reject)")
                            };
                            out.warnings.push(format!(
                                "{}: `ufw default {}`: ufw refuses this line, {wrong}, so it sets no policy; fix the spelling",
                                at(n),
                                std::iter::once(*policy).chain(rest.iter().copied()).collect::<Vec<_>>().join(" ")
                            ));
                            out.lines.push(format!(
                                "{}: ufw default {policy} {direction} -> nothing (ufw refuses it)",
                                at(n)
                            ));
                            continue;
                        };
                        ufw_defaults_set.push(chain);
                        ufw_reject_default.retain(|c| *c != chain);
                        if p == "REJECT" {
                            // As ufw does: the policy DROP, and a last rule
                            // that rejects (added once ufw is on), so a
                            // closed port answers at once instead of
                            // leaving the client to time out.
                            ufw_reject_default.push(chain);
                            rules.policy("filter", chain, "DROP");
                            out.lines.push(format!(
                                "{}: ufw default {policy} {direction} -> policy {chain} DROP, and a last rule -A {chain} -j REJECT (as ufw's reject chain does)",
                                at(n)
                            ));
                            continue;
                        }
                        rules.policy("filter", chain, p);
                        out.lines.push(format!(
                            "{}: ufw default {policy} {direction} -> policy {chain} {p}",
                            at(n)
                        ));
                    }
                    [verb @ ("allow" | "deny" | "reject" | "limit"), rest @ ..] => {
                        let jump = match *verb {
                            "deny" => "DROP",
                            "reject" => "REJECT",
                            _ => "ACCEPT",
                        };
                        let mut rest: Vec<&str> = rest.to_vec();
                        let mut chain = "INPUT";
                        match rest.first() {
                            Some(&"in") => {
                                rest.remove(0);
                            }
                            Some(&"out") => {
                                rest.remove(0);
                                chain = "OUTPUT";
                            }
                            _ => {}
                        }
                        let mut parts = vec![format!("-A {chain}")];
                        let mut proto = None;
                        let mut port = None;
                        let mut k = 0;
                        while k < rest.len() {
                            match (rest[k], rest.get(k + 1)) {
                                ("from", Some(a)) if *a != "any" => {
                                    let m = map_address(a, n, target, &net, &at, file, &mut out)?;
                                    parts.push(format!("-s {m}"));
                                    k += 2;
                                }
                                ("to", Some(_)) => k += 2,
                                ("on", Some(i)) => {
                                    let to = format!("{{{{ self.{first_net}.iface }}}}");
                                    out.lines.push(format!("{}: interface {i} -> {to} ({host}'s interface on `{first_net}`)", at(n)));
                                    parts.push(format!("-i {to}"));
                                    k += 2;
                                }
                                ("port", Some(p)) => {
                                    port = Some(p.to_string());
                                    k += 2;
                                }
                                ("proto", Some(p)) => {
                                    proto = Some(p.to_string());
                                    k += 2;
                                }
                                (spec, _) => {
                                    // `80`, `80/tcp`, `OpenSSH`, `Nginx Full`.
                                    let (p, pr) = spec
                                        .split_once('/')
                                        .map_or((spec, None), |(a, b)| (a, Some(b)));
                                    let p = match p {
                                        "OpenSSH" | "ssh" => "22",
                                        "http" => "80",
                                        "https" => "443",
                                        "mysql" => "3306",
                                        "domain" => "53",
                                        "smtp" => "25",
                                        "postgresql" => "5432",
                                        other => other,
                                    };
                                    port = Some(p.to_string());
                                    proto = pr.map(str::to_string).or(proto);
                                    k += 1;
                                }
                            }
                        }
                        // ufw itself refuses a port it cannot read (an
                        // application profile it does not have, `'HAProxy'`),
                        // and the script goes on without the rule.
                        if let Some(bad) = port.as_deref().filter(|list| {
                            !list.split([',', ':']).all(|p| p.parse::<u16>().is_ok())
                        }) {
                            out.warnings.push(format!(
                                "{name}:{n}: `{code}`: ufw knows no port, service or application profile `{}` (`ufw app list` shows the profiles) and refuses the line; skipped, as on the server",
                                bad.trim_matches(['\'', '"'])
                            ));
                            out.lines
                                .push(format!("{}: `{code}` -> skipped (ufw refuses it)", at(n)));
                            continue;
                        }
                        let protos: Vec<String> = match proto {
                            Some(p) => vec![p],
                            None if port.is_some() => vec!["tcp".into(), "udp".into()],
                            None => vec![String::new()],
                        };
                        let mut made = Vec::with_capacity(protos.len());
                        for p in &protos {
                            let mut rule = parts.clone();
                            if !p.is_empty() {
                                rule.push(format!("-p {p}"));
                            }
                            match &port {
                                Some(list) if list.contains(',') => {
                                    rule.push(format!("-m multiport --dports {list}"))
                                }
                                Some(one) => rule.push(format!("--dport {one}")),
                                None => {}
                            }
                            rule.push(format!("-j {jump}"));
                            made.push(rule.join(" "));
                        }
                        if !matches!(mode, UfwMode::Delete) {
                            ufw_made.extend(made.iter().cloned());
                        }
                        let filter = &mut rules.table("filter").rules;
                        let what = match mode {
                            UfwMode::Append => {
                                filter.extend(made.iter().cloned());
                                made.join("; ")
                            }
                            UfwMode::Insert(i) => {
                                let i = i.min(filter.len());
                                filter.splice(i..i, made.iter().cloned());
                                format!("{} (inserted at {})", made.join("; "), i + 1)
                            }
                            UfwMode::Delete => {
                                let before = filter.len();
                                filter.retain(|r| !made.contains(r));
                                if filter.len() < before {
                                    format!("removed {}", made.join("; "))
                                } else {
                                    "nothing removed (no such rule, as ufw says)".to_string()
                                }
                            }
                        };
                        out.lines.push(format!("{}: {} -> {}", at(n), code, what));
                    }
                    _ => out
                        .lines
                        .push(format!("{}: `{code}` -> skipped (not a rule)", at(n))),
                }
            }
            "ip6tables" => {
                out.lines.push(format!(
                    "{}: `{code}` -> left out (IPv6; the run's networks are IPv4)",
                    at(n)
                ));
            }
            // A rule this reading cannot see (`$IPT -A INPUT ...`, a function)
            // would be lost without a word: that stops the run.
            _ if [" -A ", " -I ", " -P ", " --append ", " --policy "]
                .iter()
                .any(|f| format!(" {code} ").contains(f)) =>
            {
                return Err(Error::InvalidFixture {
                    path: file.to_path_buf(),
                    detail: format!(
                        "line {n}: `{code}` looks like a rule but is not an `iptables` or `ufw` command stackproof can read; write the command itself, or give the rules as `iptables-save` prints them"
                    ),
                });
            }
            _ => {
                out.lines
                    .push(format!("{}: `{code}` -> skipped (not a rule)", at(n)));
            }
        }
    }
    if ufw_used {
        if !ufw_enabled {
            // ufw that is never enabled filters nothing: the server has no
            // firewall, and neither does the run (its claims then say what
            // that leaves open).
            out.warnings.push(format!("{name}: no `ufw enable` (or a `ufw disable` after it): ufw stays off on the server, so its rules filter nothing there and the run loads none of them. If ufw is already enabled on that server, add `ufw enable` to the file"));
            out.lines.push(
                "ufw never enabled -> none of its rules or default policies loaded (ufw is off)"
                    .into(),
            );
            // What iptables commands of the script made stays: those are active.
            rules
                .table("filter")
                .rules
                .retain(|r| !ufw_made.contains(r));
            for chain in &ufw_defaults_set {
                rules.policy("filter", chain, "ACCEPT");
            }
            out.text = rules.render();
            return Ok(out);
        }
        // ufw's own defaults (Debian's /etc/default/ufw) where the file
        // sets none: incoming and forwarded traffic dropped, outgoing allowed.
        for (chain, policy) in [("INPUT", "DROP"), ("FORWARD", "DROP"), ("OUTPUT", "ACCEPT")] {
            if !ufw_defaults_set.contains(&chain) {
                rules.policy("filter", chain, policy);
                out.lines.push(format!(
                    "ufw's default for {chain} (/etc/default/ufw, not set in the file) -> policy {chain} {policy}"
                ));
            }
        }
        // What ufw itself always allows (its before.rules): loopback and replies.
        let filter = rules.table("filter");
        filter.rules.insert(
            0,
            "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT".into(),
        );
        filter.rules.insert(0, "-A INPUT -i lo -j ACCEPT".into());
        out.lines.push(
            "ufw's own rules (before.rules) -> loopback and replies accepted, as ufw does".into(),
        );
        for chain in &ufw_reject_default {
            filter.rules.push(format!("-A {chain} -j REJECT"));
        }
    }
    if rules.tables.is_empty() {
        return Err(Error::InvalidFixture {
            path: file.to_path_buf(),
            detail: "no rule in the file: nothing to check".into(),
        });
    }
    out.text = rules.render();
    Ok(out)
}

/// One address (or range) of a rule, in the run's terms.
fn map_address(
    value: &str,
    n: usize,
    target: &Target,
    net: &str,
    at: &dyn Fn(usize) -> String,
    file: &Path,
    out: &mut Mapped,
) -> Result<String> {
    let bare = value.strip_suffix("/32").unwrap_or(value);
    if matches!(bare, "0.0.0.0/0" | "127.0.0.1" | "127.0.0.0/8" | "anywhere") {
        return Ok(value.to_string());
    }
    if let Some(k) = target.lookup(bare) {
        out.lines.push(format!(
            "{}: {value} -> {} ({})",
            at(n),
            k.placeholder,
            k.what
        ));
        return Ok(k.placeholder);
    }
    if value.contains('/') && private_range(value) {
        let to = format!("{{{{ {net}.subnet }}}}");
        out.lines.push(format!(
            "{}: {value} -> {to} (your private range: the run's `{net}` network)",
            at(n)
        ));
        return Ok(to);
    }
    if !is_ipv4(bare) && !value.contains('/') {
        return Ok(value.to_string());
    }
    Err(Error::InvalidFixture {
        path: file.to_path_buf(),
        detail: format!(
            "line {n}: {value} is none of the run's hosts as far as your files say; name it with --address {bare}=HOST (hosts: {})",
            target
                .design
                .spec
                .hosts
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

#[cfg(test)]
mod tests;
