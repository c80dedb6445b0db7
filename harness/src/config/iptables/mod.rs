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

/// Whether `addr` (an address or a CIDR) is in a private range.
fn private_range(addr: &str) -> bool {
    let ip = addr.split('/').next().unwrap_or("");
    ip.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|a| a.is_private())
}

/// Maps `text` (from `file`) for `target.host`.
pub fn map(file: &Path, text: &str, target: &Target) -> Result<Mapped> {
    let mut mapping = Mapping::new(file, target);
    if text.lines().any(|l| l.trim().starts_with('*')) {
        mapping.restore_file(text)?;
    } else {
        mapping.script(text)?;
    }
    mapping.finish()
}

/// The lines of `text` that hold something: their numbers and their code,
/// comments cut.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, raw)| (i + 1, raw.split('#').next().unwrap_or("").trim()))
        .filter(|(_, code)| !code.is_empty())
}

/// One file being mapped for one host: where it comes from, what it says
/// about the run's network, and the rules built so far.
struct Mapping<'a> {
    file: &'a Path,
    name: String,
    target: &'a Target<'a>,
    host: &'a str,
    /// The network the host's peers reach it on (private ranges become it).
    net: String,
    /// The host's first network (interfaces become its interface there).
    first_net: String,
    out: Mapped,
    rules: Rules,
    ufw: ufw::State,
}

impl<'a> Mapping<'a> {
    fn new(file: &'a Path, target: &'a Target<'a>) -> Self {
        let host = target.host.expect("firewall files are mapped per host");
        let net = target.inner_network(host);
        let first_net = target
            .design
            .spec
            .host(host)
            .and_then(|h| h.networks.first().cloned())
            .unwrap_or_else(|| net.clone());
        Mapping {
            file,
            name: file_label(file),
            target,
            host,
            net,
            first_net,
            out: Mapped::default(),
            rules: Rules::default(),
            ufw: ufw::State::default(),
        }
    }

    /// `file:line`, as the mapping lines name a place.
    fn at(&self, n: usize) -> String {
        format!("{}:{n}", self.name)
    }

    /// An `iptables-save` file: tables, chain policies, rules.
    fn restore_file(&mut self, text: &str) -> Result<()> {
        let mut table = "filter".to_string();
        for (n, code) in code_lines(text) {
            if let Some(t) = code.strip_prefix('*') {
                table = t.to_string();
                self.rules.table(&table);
            } else if let Some(chain) = code.strip_prefix(':') {
                let mut w = chain.split_whitespace();
                let (c, p) = (w.next().unwrap_or(""), w.next().unwrap_or("-"));
                self.rules.policy(&table, c, p);
            } else if code != "COMMIT" {
                let words: Vec<&str> = code.split_whitespace().collect();
                let mapped = self.map_words(&words, n)?;
                self.rules.table(&table).rules.push(mapped.join(" "));
            }
        }
        Ok(())
    }

    /// A script: one command a line, `sudo` and full paths allowed.
    fn script(&mut self, text: &str) -> Result<()> {
        for (n, code) in code_lines(text) {
            let code = without_piped_answer(code);
            let words: Vec<&str> = code
                .split_whitespace()
                .skip_while(|w| *w == "sudo")
                .collect();
            match program(&words) {
                "iptables" => self.iptables_command(&words[1..], n, code)?,
                "ufw" => self.ufw_command(&words, n, code)?,
                "ip6tables" => {
                    let line = format!(
                        "{}: `{code}` -> left out (IPv6; the run's networks are IPv4)",
                        self.at(n)
                    );
                    self.out.lines.push(line);
                }
                // A rule this reading cannot see (`$IPT -A INPUT ...`, a function)
                // would be lost without a word: that stops the run.
                _ if [" -A ", " -I ", " -P ", " --append ", " --policy "]
                    .iter()
                    .any(|f| format!(" {code} ").contains(f)) =>
                {
                    return Err(Error::InvalidFixture {
                        path: self.file.to_path_buf(),
                        detail: format!(
                            "line {n}: `{code}` looks like a rule but is not an `iptables` or `ufw` command stackproof can read; write the command itself, or give the rules as `iptables-save` prints them"
                        ),
                    });
                }
                _ => self.skipped(n, code),
            }
        }
        Ok(())
    }

    fn skipped(&mut self, n: usize, code: &str) {
        let line = format!("{}: `{code}` -> skipped (not a rule)", self.at(n));
        self.out.lines.push(line);
    }

    /// One `iptables` command (its words after the program name).
    fn iptables_command(&mut self, words: &[&str], n: usize, code: &str) -> Result<()> {
        let mut args: Vec<&str> = words.to_vec();
        let mut t = "filter".to_string();
        if let Some(p) = args.iter().position(|a| *a == "-t" || *a == "--table") {
            t = args.get(p + 1).copied().unwrap_or("filter").to_string();
            args.drain(p..(p + 2).min(args.len()));
        }
        match args.first().copied() {
            Some("-P" | "--policy") => {
                self.rules.policy(
                    &t,
                    args.get(1).copied().unwrap_or(""),
                    args.get(2).copied().unwrap_or("ACCEPT"),
                );
            }
            Some("-N" | "--new-chain") => {
                self.rules
                    .policy(&t, args.get(1).copied().unwrap_or(""), "-");
            }
            Some("-A" | "--append" | "-I" | "--insert") => {
                let mapped = self.map_words(&args, n)?;
                self.rules.table(&t).rules.push(mapped.join(" "));
            }
            Some("-F" | "--flush" | "-X" | "--delete-chain" | "-Z" | "--zero") => {}
            _ => {
                return Err(Error::InvalidFixture {
                    path: self.file.to_path_buf(),
                    detail: format!(
                        "line {n}: `{code}` is not a rule stackproof can replay (it replays -P, -N, -A, -I, -F, -X)"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The addresses and interfaces of one rule's words, in the run's terms.
    fn map_words(&mut self, words: &[&str], n: usize) -> Result<Vec<String>> {
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
                    mapped.push(self.address(v, n)?);
                    i += 2;
                    continue;
                }
                ("-i" | "--in-interface" | "-o" | "--out-interface" | "on", Some(v))
                    if v != "lo" =>
                {
                    mapped.push(self.interface(v, n));
                    i += 2;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        Ok(mapped)
    }

    /// One address (or range) in the run's terms, with its mapping line.
    fn address(&mut self, value: &str, n: usize) -> Result<String> {
        let name = self.name.clone();
        let at = move |n: usize| format!("{name}:{n}");
        map_address(
            value,
            n,
            self.target,
            &self.net,
            &at,
            self.file,
            &mut self.out,
        )
    }

    /// The host's own interface for a user's interface name, with its mapping line.
    fn interface(&mut self, iface: &str, n: usize) -> String {
        let first_net = &self.first_net;
        let to = format!("{{{{ self.{first_net}.iface }}}}");
        let line = format!(
            "{}: interface {iface} -> {to} ({}'s interface on `{first_net}`)",
            self.at(n),
            self.host
        );
        self.out.lines.push(line);
        to
    }

    /// The rules as iptables-restore reads them, after what ufw adds or takes away.
    fn finish(mut self) -> Result<Mapped> {
        self.ufw_finish();
        if self.rules.tables.is_empty() {
            return Err(Error::InvalidFixture {
                path: self.file.to_path_buf(),
                detail: "no rule in the file: nothing to check".into(),
            });
        }
        self.out.text = self.rules.render();
        Ok(self.out)
    }
}

/// `echo "y" | sudo ufw enable`, `yes | ufw enable`: the answer to ufw's
/// prompt piped in, then the command itself.
fn without_piped_answer(code: &str) -> &str {
    match code.rsplit_once('|') {
        Some((feed, command))
            if ["echo ", "yes", "printf "]
                .iter()
                .any(|f| feed.trim_start().starts_with(f)) =>
        {
            command.trim()
        }
        _ => code,
    }
}

/// The program a command runs: `/sbin/iptables` is iptables;
/// `IPT=/sbin/iptables` is not.
fn program<'w>(words: &[&'w str]) -> &'w str {
    words
        .first()
        .map(|p| {
            if p.starts_with('/') {
                p.rsplit('/').next().unwrap_or(p)
            } else {
                p
            }
        })
        .unwrap_or("")
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
mod ufw;
