//! `ufw` commands, as ufw itself turns them into iptables rules: its
//! defaults, its own rules (before.rules), application profiles, `insert`,
//! `delete`, `reset`, and nothing at all until `ufw enable`.

use super::{Mapping, Rules};
use crate::error::Result;

/// What a script's ufw commands have set so far.
#[derive(Default)]
pub(super) struct State {
    used: bool,
    enabled: bool,
    /// The chains whose policy a `ufw default` line set.
    defaults_set: Vec<&'static str>,
    /// The chains whose ufw default is `reject`: a chain's policy cannot be
    /// REJECT, so ufw sets DROP and ends the chain with a REJECT rule.
    reject_default: Vec<&'static str>,
    /// The rules ufw commands made (a script may mix them with iptables').
    made: Vec<String>,
}

/// Where a `ufw` rule command puts its rule.
#[derive(Clone, Copy)]
enum Place {
    Append,
    /// `ufw insert N`: before the rule now at N (0-based here).
    Insert(usize),
    Delete,
}

/// ufw's application profiles as Debian's packages define them, and their ports.
const PROFILES: &[(&str, &str)] = &[
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

/// A ufw rule's match, before it becomes one rule per protocol.
struct Match {
    parts: Vec<String>,
    proto: Option<String>,
    port: Option<String>,
}

impl Mapping<'_> {
    /// One `ufw` command (all its words, the program first).
    pub(super) fn ufw_command(&mut self, words: &[&str], n: usize, code: &str) -> Result<()> {
        self.ufw.used = true;
        // `ufw --force enable`; `ufw allow 'Nginx Full'` (an application profile).
        // `comment 'why'` (ufw 0.35+) labels a rule: not part of it.
        let words = match words.iter().position(|w| *w == "comment") {
            Some(i) => &words[..i],
            None => words,
        };
        let mut args: Vec<&str> = words[1..]
            .iter()
            .copied()
            .filter(|w| !w.starts_with("--"))
            .collect();
        let place = take_place(&mut args);
        let args = with_profile_ports(args);
        match args.as_slice() {
            ["enable", ..] => self.ufw.enabled = true,
            ["disable", ..] => self.ufw.enabled = false,
            ["reset", ..] => self.ufw_reset(n),
            ["default", policy, rest @ ..] => self.ufw_default(policy, rest, n),
            [verb @ ("allow" | "deny" | "reject" | "limit"), rest @ ..] => {
                self.ufw_rule(verb, rest, place, n, code)?
            }
            _ => self.skipped(n, code),
        }
        Ok(())
    }

    /// `ufw reset`: off, every rule and default back to the package's.
    fn ufw_reset(&mut self, n: usize) {
        self.rules = Rules::default();
        self.ufw = State {
            used: true,
            ..State::default()
        };
        let line = format!(
            "{}: ufw reset -> every rule removed, ufw off, its defaults back",
            self.at(n)
        );
        self.out.lines.push(line);
    }

    /// `ufw default POLICY [incoming|outgoing|routed]`: a word ufw does not
    /// know makes it refuse the line (and set no policy), as `incomming` does.
    fn ufw_default(&mut self, policy: &str, rest: &[&str], n: usize) {
        let direction = rest.first().copied().unwrap_or("incoming");
        let chain = match direction {
            "incoming" => Some("INPUT"),
            "outgoing" => Some("OUTPUT"),
            "routed" => Some("FORWARD"),
            _ => None,
        };
        let p = match policy {
            "allow" => Some("ACCEPT"),
            "deny" => Some("DROP"),
            "reject" => Some("REJECT"),
            _ => None,
        };
        let at = self.at(n);
        let (Some(chain), Some(p)) = (chain, p) else {
            let wrong = if chain.is_none() {
                format!("direction `{direction}` (ufw knows incoming, outgoing, routed)")
            } else {
                format!("policy `{policy}` (ufw knows allow, deny, reject)")
            };
            self.out.warnings.push(format!(
                "{at}: `ufw default {}`: ufw refuses this line, {wrong}, so it sets no policy; fix the spelling",
                std::iter::once(policy)
                    .chain(rest.iter().copied())
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
            self.out.lines.push(format!(
                "{at}: ufw default {policy} {direction} -> nothing (ufw refuses it)"
            ));
            return;
        };
        self.ufw.defaults_set.push(chain);
        self.ufw.reject_default.retain(|c| *c != chain);
        if p == "REJECT" {
            // As ufw does: the policy DROP, and a last rule that rejects
            // (added once ufw is on), so a closed port answers at once
            // instead of leaving the client to time out.
            self.ufw.reject_default.push(chain);
            self.rules.policy("filter", chain, "DROP");
            self.out.lines.push(format!(
                "{at}: ufw default {policy} {direction} -> policy {chain} DROP, and a last rule -A {chain} -j REJECT (as ufw's reject chain does)"
            ));
            return;
        }
        self.rules.policy("filter", chain, p);
        self.out.lines.push(format!(
            "{at}: ufw default {policy} {direction} -> policy {chain} {p}"
        ));
    }

    /// `ufw allow|deny|reject|limit [in|out] ...`: one rule per protocol,
    /// placed as `insert`/`delete` say.
    fn ufw_rule(
        &mut self,
        verb: &str,
        rest: &[&str],
        place: Place,
        n: usize,
        code: &str,
    ) -> Result<()> {
        let jump = match verb {
            "deny" => "DROP",
            "reject" => "REJECT",
            _ => "ACCEPT",
        };
        let Match { parts, proto, port } = self.ufw_match(rest, n)?;
        // ufw itself refuses a port it cannot read (an application profile
        // it does not have, `'HAProxy'`), and the script goes on without the rule.
        if let Some(bad) = port
            .as_deref()
            .filter(|list| !list.split([',', ':']).all(|p| p.parse::<u16>().is_ok()))
        {
            let at = self.at(n);
            self.out.warnings.push(format!(
                "{at}: `{code}`: ufw knows no port, service or application profile `{}` (`ufw app list` shows the profiles) and refuses the line; skipped, as on the server",
                bad.trim_matches(['\'', '"'])
            ));
            self.out
                .lines
                .push(format!("{at}: `{code}` -> skipped (ufw refuses it)"));
            return Ok(());
        }
        let protos: Vec<String> = match proto {
            Some(p) => vec![p],
            None if port.is_some() => vec!["tcp".into(), "udp".into()],
            None => vec![String::new()],
        };
        let made: Vec<String> = protos
            .iter()
            .map(|p| {
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
                rule.join(" ")
            })
            .collect();
        let what = self.ufw_place(made, place);
        let line = format!("{}: {} -> {}", self.at(n), code, what);
        self.out.lines.push(line);
        Ok(())
    }

    /// What a ufw rule matches: its chain, source, interface, port, protocol.
    fn ufw_match(&mut self, rest: &[&str], n: usize) -> Result<Match> {
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
        let mut m = Match {
            parts: vec![format!("-A {chain}")],
            proto: None,
            port: None,
        };
        let mut k = 0;
        while k < rest.len() {
            match (rest[k], rest.get(k + 1)) {
                ("from", Some(a)) if *a != "any" => {
                    let mapped = self.address(a, n)?;
                    m.parts.push(format!("-s {mapped}"));
                    k += 2;
                }
                ("to", Some(_)) => k += 2,
                ("on", Some(i)) => {
                    let to = self.interface(i, n);
                    m.parts.push(format!("-i {to}"));
                    k += 2;
                }
                ("port", Some(p)) => {
                    m.port = Some(p.to_string());
                    k += 2;
                }
                ("proto", Some(p)) => {
                    m.proto = Some(p.to_string());
                    k += 2;
                }
                (spec, _) => {
                    // `80`, `80/tcp`, `OpenSSH`, `Nginx Full`.
                    let (p, pr) = spec
                        .split_once('/')
                        .map_or((spec, None), |(a, b)| (a, Some(b)));
                    m.port = Some(service_port(p).to_string());
                    m.proto = pr.map(str::to_string).or(m.proto);
                    k += 1;
                }
            }
        }
        Ok(m)
    }

    /// Puts `made` where the command said; returns what that did, for the mapping line.
    fn ufw_place(&mut self, made: Vec<String>, place: Place) -> String {
        if !matches!(place, Place::Delete) {
            self.ufw.made.extend(made.iter().cloned());
        }
        let filter = &mut self.rules.table("filter").rules;
        match place {
            Place::Append => {
                filter.extend(made.iter().cloned());
                made.join("; ")
            }
            Place::Insert(i) => {
                let i = i.min(filter.len());
                filter.splice(i..i, made.iter().cloned());
                format!("{} (inserted at {})", made.join("; "), i + 1)
            }
            Place::Delete => {
                let before = filter.len();
                filter.retain(|r| !made.contains(r));
                if filter.len() < before {
                    format!("removed {}", made.join("; "))
                } else {
                    "nothing removed (no such rule, as ufw says)".to_string()
                }
            }
        }
    }

    /// After the script: ufw off leaves none of its rules; ufw on adds its
    /// defaults where the script set none, and its own rules.
    pub(super) fn ufw_finish(&mut self) {
        if !self.ufw.used {
            return;
        }
        if !self.ufw.enabled {
            // ufw that is never enabled filters nothing: the server has no
            // firewall, and neither does the run (its claims then say what
            // that leaves open).
            self.out.warnings.push(format!("{}: no `ufw enable` (or a `ufw disable` after it): ufw stays off on the server, so its rules filter nothing there and the run loads none of them. If ufw is already enabled on that server, add `ufw enable` to the file", self.name));
            self.out.lines.push(
                "ufw never enabled -> none of its rules or default policies loaded (ufw is off)"
                    .into(),
            );
            // What iptables commands of the script made stays: those are active.
            let made = &self.ufw.made;
            self.rules
                .table("filter")
                .rules
                .retain(|r| !made.contains(r));
            for chain in &self.ufw.defaults_set {
                self.rules.policy("filter", chain, "ACCEPT");
            }
            return;
        }
        // ufw's own defaults (Debian's /etc/default/ufw) where the file
        // sets none: incoming and forwarded traffic dropped, outgoing allowed.
        for (chain, policy) in [("INPUT", "DROP"), ("FORWARD", "DROP"), ("OUTPUT", "ACCEPT")] {
            if !self.ufw.defaults_set.contains(&chain) {
                self.rules.policy("filter", chain, policy);
                self.out.lines.push(format!(
                    "ufw's default for {chain} (/etc/default/ufw, not set in the file) -> policy {chain} {policy}"
                ));
            }
        }
        // What ufw itself always allows (its before.rules): loopback and replies.
        let filter = self.rules.table("filter");
        filter.rules.insert(
            0,
            "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT".into(),
        );
        filter.rules.insert(0, "-A INPUT -i lo -j ACCEPT".into());
        for chain in &self.ufw.reject_default {
            filter.rules.push(format!("-A {chain} -j REJECT"));
        }
        self.out.lines.push(
            "ufw's own rules (before.rules) -> loopback and replies accepted, as ufw does".into(),
        );
    }
}

/// `insert N <rule>` puts the rule at position N, `delete <rule>` takes it
/// out again; `prepend` is `insert 1`. Takes those words off `args`.
fn take_place(args: &mut Vec<&str>) -> Place {
    match args.as_slice() {
        ["insert", pos, ..] => {
            let at = pos.parse::<usize>().unwrap_or(1).max(1) - 1;
            args.drain(..2);
            Place::Insert(at)
        }
        ["prepend", ..] => {
            args.remove(0);
            Place::Insert(0)
        }
        ["delete", ..] => {
            args.remove(0);
            Place::Delete
        }
        _ => Place::Append,
    }
}

/// `allow 'Nginx Full'`: an application profile's name becomes its ports.
fn with_profile_ports(args: Vec<&str>) -> Vec<&str> {
    let joined = args.get(1..).unwrap_or(&[]).join(" ");
    let profile = joined.trim_matches(['\'', '"']);
    match PROFILES
        .iter()
        .find(|(name, _)| profile.eq_ignore_ascii_case(name))
    {
        Some((_, ports)) => vec![args[0], ports],
        None => args,
    }
}

/// The port of a service name ufw reads from /etc/services.
fn service_port(name: &str) -> &str {
    match name {
        "OpenSSH" | "ssh" => "22",
        "http" => "80",
        "https" => "443",
        "mysql" => "3306",
        "domain" => "53",
        "smtp" => "25",
        "postgresql" => "5432",
        other => other,
    }
}
