//! A user's `keepalived.conf`, exactly as it is on one of their load
//! balancers, mapped onto one host of the design's keepalived pair (each
//! host gets its own copy: the file names the host itself). The interface
//! becomes the host's interface on the VIP's network, the VIP the run's,
//! `unicast_src_ip` the host's address and each `unicast_peer` the other
//! load balancer's. What keepalived would contact outside the run (an SMTP
//! server) is left out; scripts the run's host does not have are named
//! by the service's own lint once it runs, wherever their path is.

use std::path::Path;

use super::{Known, Mapped, Target, file_label, is_ipv4};
use crate::error::{Error, Result};

/// Maps `text` (from `file`) for `target.host`.
pub fn map(file: &Path, text: &str, target: &Target) -> Result<Mapped> {
    let mut pair = Pair::new(file, target);
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let code = raw.split(['#', '!']).next().unwrap_or("");
        let words: Vec<&str> = code.split_whitespace().collect();
        let line = pair.line(n, raw, code, &words);
        if let Some(added) = pair.follow_blocks(n, raw, code, &words) {
            lines.push(added);
        }
        lines.push(line);
    }
    pair.finish(lines)
}

/// One keepalived file being mapped for one host of the pair.
struct Pair<'a> {
    file: &'a Path,
    name: String,
    target: &'a Target<'a>,
    host: &'a str,
    /// The pair's first network, where the VIP lives (as in the design's own file).
    net: String,
    /// `{{ host.net }}`, `{{ self.net.iface }}`, `{{ net.vip }}`.
    own: String,
    iface: String,
    vip: String,
    /// The other hosts running keepalived, in the design's order.
    peers: Vec<&'a str>,
    peers_mapped: usize,
    vips_mapped: usize,
    saw_unicast: bool,
    /// The blocks open at this line (`vrrp_instance`, `unicast_peer`, ...).
    blocks: Vec<String>,
    /// The `vrrp_instance` being read: the depth it opened at, and whether
    /// it names a unicast peer (one that does not advertises to multicast).
    instance: Option<(usize, bool)>,
    /// While inside an LVS `virtual_server` block: the depth it opened at.
    lvs_depth: Option<usize>,
    out: Mapped,
}

impl<'a> Pair<'a> {
    fn new(file: &'a Path, target: &'a Target<'a>) -> Self {
        let host = target.host.expect("keepalived files are mapped per host");
        // The VIP lives on the pair's first network, as the design's own keepalived has it.
        let net = target
            .design
            .spec
            .host(host)
            .and_then(|h| h.networks.first().cloned())
            .unwrap_or_else(|| "public".into());
        Pair {
            file,
            name: file_label(file),
            target,
            host,
            own: format!("{{{{ {host}.{net} }}}}"),
            iface: format!("{{{{ self.{net}.iface }}}}"),
            vip: format!("{{{{ {net}.vip }}}}"),
            net,
            peers: target
                .running
                .iter()
                .copied()
                .filter(|h| *h != host)
                .collect(),
            peers_mapped: 0,
            vips_mapped: 0,
            saw_unicast: false,
            blocks: Vec::new(),
            instance: None,
            lvs_depth: None,
            out: Mapped::default(),
        }
    }

    fn at(&self, n: usize) -> String {
        format!("{}:{n}", self.name)
    }

    /// Line `n` as the run writes it.
    fn line(&mut self, n: usize, raw: &str, code: &str, words: &[&str]) -> String {
        let block = self.blocks.last().cloned().unwrap_or_default();
        if self.lvs_depth.is_none()
            && matches!(
                words.first().copied(),
                Some("virtual_server" | "virtual_server_group")
            )
        {
            self.lvs_depth = Some(self.blocks.len());
            let line = format!(
                "{}: {} -> left out, with its block (LVS balancing is not part of the design, and its health checks would contact your real servers)",
                self.at(n),
                code.trim().trim_end_matches('{').trim()
            );
            self.out.lines.push(line);
        }
        if self.lvs_depth.is_some() {
            return format!("# stackproof: left out: {raw}");
        }
        let is_address = |w: &str| is_ipv4(w.split('/').next().unwrap_or(""));
        match words.first().copied() {
            Some(word @ ("interface" | "mcast_src_ip" | "unicast_src_ip")) if words.len() >= 2 => {
                self.own_setting(n, raw, word, words[1])
            }
            // `192.168.0.92/24`: an address written with its prefix is still the peer's address.
            Some(written) if block == "unicast_peer" && is_address(written) => {
                self.unicast_peer(n, raw, written)
            }
            Some(first)
                if (block == "virtual_ipaddress" || block == "virtual_ipaddress_excluded")
                    && is_address(first) =>
            {
                self.virtual_address(n, raw, code, first)
            }
            Some("smtp_server") => {
                let line = format!(
                    "{}: smtp_server {} -> left out (a mail server outside the run is not contacted)",
                    self.at(n),
                    words.get(1).copied().unwrap_or("")
                );
                self.out.lines.push(line);
                format!("# stackproof: left out, never contacted: {raw}")
            }
            Some("script") if words.len() >= 2 => self.health_script(n, raw, code),
            // Whether the host has the programs a file calls (`notify`,
            // `script`) is asked on the host itself, wherever their path is:
            // the service's lint (services/keepalived/missing-scripts) names
            // each one missing.
            _ => raw.to_string(),
        }
    }

    /// `interface`, `mcast_src_ip`, `unicast_src_ip`: the host's own.
    fn own_setting(&mut self, n: usize, raw: &str, word: &str, value: &str) -> String {
        let (to, what) = if word == "interface" {
            (&self.iface, "interface")
        } else {
            (&self.own, "address")
        };
        let line = raw.replacen(value, to, 1);
        self.out.lines.push(format!(
            "{}:{n}: {word} {value} -> {to} ({}'s {what} on `{}`)",
            self.name, self.host, self.net
        ));
        let bare = value.split('/').next().unwrap_or(value);
        if word != "interface" && is_ipv4(bare) {
            let known = Known {
                placeholder: self.own.clone(),
                what: self.host.to_string(),
            };
            self.out.learned.push((bare.to_string(), known));
        }
        line
    }

    /// An address in `unicast_peer { }`: the peer another file named, or
    /// the next other host of the pair.
    fn unicast_peer(&mut self, n: usize, raw: &str, written: &str) -> String {
        let addr = written.split('/').next().unwrap_or("");
        self.saw_unicast = true;
        if let Some((_, named)) = self.instance.as_mut() {
            *named = true;
        }
        let net = &self.net;
        let to = match (self.target.lookup(addr), self.peers.get(self.peers_mapped)) {
            (Some(k), _) if k.what != self.host => Some((k.placeholder, k.what)),
            (_, Some(peer)) => Some((format!("{{{{ {peer}.{net} }}}}"), peer.to_string())),
            _ => None,
        };
        self.peers_mapped += 1;
        let at = self.at(n);
        let Some((placeholder, what)) = to else {
            self.out.lines.push(format!(
                "{at}: unicast_peer {addr} -> left out (the design has {} keepalived host(s))",
                self.target.running.len()
            ));
            return format!("# stackproof: left out, no other peer in the run: {raw}");
        };
        let prefix = if written != addr {
            "; the prefix is not part of a peer's address"
        } else {
            ""
        };
        self.out.lines.push(format!(
            "{at}: unicast_peer {written} -> {placeholder} ({what}{prefix})"
        ));
        let line = raw.replacen(written, &placeholder, 1);
        self.out
            .learned
            .push((addr.to_string(), Known { placeholder, what }));
        line
    }

    /// An address in `virtual_ipaddress { }`: the first is the run's VIP,
    /// the others are left out (the design's DNS names one).
    fn virtual_address(&mut self, n: usize, raw: &str, code: &str, first: &str) -> String {
        let addr = first.split('/').next().unwrap_or("");
        self.vips_mapped += 1;
        let at = self.at(n);
        if self.vips_mapped > 1 {
            self.out.lines.push(format!(
                "{at}: virtual address {addr} -> left out (the design's DNS names one VIP)"
            ));
            return format!("# stackproof: left out, the run has one VIP: {raw}");
        }
        let to = format!("{}/24 dev {}", self.vip, self.iface);
        self.out.lines.push(format!(
            "{at}: virtual address {} -> {to} (the run's VIP on `{}`)",
            code.trim(),
            self.net
        ));
        let known = Known {
            placeholder: self.vip.clone(),
            what: "the VIP".into(),
        };
        self.out.learned.push((addr.to_string(), known));
        let indent = &raw[..raw.len() - raw.trim_start().len()];
        format!("{indent}{to}")
    }

    /// A `vrrp_script`'s `script`: `systemctl is-active haproxy` asks
    /// systemd, which the run's hosts do not run (always "failed" there);
    /// the same question asked of the processes keeps the check's meaning.
    fn health_script(&mut self, n: usize, raw: &str, code: &str) -> String {
        let command = code.trim()["script".len()..].trim().trim_matches('"');
        let Some(unit) = systemd_status_unit(command) else {
            return raw.to_string();
        };
        let instead = format!("/usr/bin/pgrep -x {unit}");
        let line = format!(
            "{}: script `{command}` -> `{instead}` (the run's hosts have no systemd; the same check, asked of the processes)",
            self.at(n)
        );
        self.out.lines.push(line);
        raw.replacen(command, &instead, 1)
    }

    /// Follows the blocks a line opens and closes (`vrrp_instance VI_1 {`,
    /// `unicast_peer {`, `}`); returns a line to add before it when it
    /// ends an instance that names no unicast peer.
    fn follow_blocks(&mut self, n: usize, raw: &str, code: &str, words: &[&str]) -> Option<String> {
        let mut instance_ended_unnamed = false;
        for ch in code.chars() {
            match ch {
                '{' => {
                    let opens = words.first().copied().unwrap_or("");
                    if opens == "vrrp_instance" && self.lvs_depth.is_none() {
                        self.instance = Some((self.blocks.len(), false));
                    }
                    self.blocks.push(opens.to_string());
                }
                '}' => {
                    self.blocks.pop();
                    if self.lvs_depth == Some(self.blocks.len()) {
                        self.lvs_depth = None;
                    }
                    if let Some((depth, named)) = self.instance
                        && depth == self.blocks.len()
                    {
                        instance_ended_unnamed |= !named;
                        self.instance = None;
                    }
                }
                _ => {}
            }
        }
        if !instance_ended_unnamed || self.peers.is_empty() {
            return None;
        }
        // Multicast adverts never cross the run's networks (Docker's
        // `internal` bridges drop traffic to addresses outside their
        // subnet), while on the LAN a tutorial means they do: the pair is
        // given its peers by unicast, in one line before the end of the
        // block, so it is judged as on the network it was written for.
        let to: Vec<String> = self
            .peers
            .iter()
            .map(|p| format!("{{{{ {p}.{} }}}}", self.net))
            .collect();
        let indent = raw[..raw.len() - raw.trim_start().len()].to_string() + "    ";
        let line = format!(
            "{}: (no unicast_peer) -> unicast_peer {{ {} }} added before this line: multicast VRRP adverts (224.0.0.18) do not cross the run's networks, so the pair talks by unicast, as on a LAN that passes multicast; keepalived's own messages count this added line",
            self.at(n),
            to.join(" ")
        );
        self.out.lines.push(line);
        Some(format!("{indent}unicast_peer {{ {} }}", to.join(" ")))
    }

    /// The file, or why keepalived would not read it as the user means.
    fn finish(mut self, lines: Vec<String>) -> Result<Mapped> {
        if let Some(open) = self.blocks.last() {
            return Err(Error::InvalidFixture {
                path: self.file.to_path_buf(),
                detail: format!(
                    "a block is never closed (`{open}` has no `}}`): keepalived would not read this file as you mean it"
                ),
            });
        }
        let name = &self.name;
        if self.vips_mapped == 0 {
            self.out.warnings.push(format!(
                "{name}: no virtual_ipaddress: this host never takes the VIP the run's DNS names"
            ));
        }
        if !self.saw_unicast {
            self.out.warnings.push(format!(
                "{name}: no unicast_peer: VRRP adverts go to multicast 224.0.0.18, which cloud networks such as AWS's drop: there both peers would hold the VIP. The run judges the pair as on a LAN that passes multicast"
            ));
        }
        self.out.text = lines.join("\n") + "\n";
        Ok(self.out)
    }
}

/// The unit a health command asks systemd about (`systemctl is-active
/// --quiet haproxy`, `systemctl status haproxy.service`, `service haproxy
/// status`), or None for any other command.
fn systemd_status_unit(command: &str) -> Option<String> {
    let words: Vec<&str> = command
        .split_whitespace()
        .filter(|w| !w.starts_with('-'))
        .collect();
    let program = words.first()?.rsplit('/').next()?;
    let unit = match (program, words.as_slice()) {
        ("systemctl", [_, "is-active" | "status", unit]) => *unit,
        ("service", [_, unit, "status"]) => *unit,
        _ => return None,
    };
    let unit = unit.trim_end_matches(".service");
    unit.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        .then(|| unit.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AddressBook;
    use crate::design::Design;

    #[test]
    fn a_health_check_that_asks_systemd_asks_the_processes_instead() {
        assert_eq!(
            systemd_status_unit("/usr/bin/systemctl is-active --quiet haproxy").as_deref(),
            Some("haproxy")
        );
        assert_eq!(
            systemd_status_unit("systemctl status haproxy.service").as_deref(),
            Some("haproxy")
        );
        assert_eq!(
            systemd_status_unit("service haproxy status").as_deref(),
            Some("haproxy")
        );
        assert_eq!(systemd_status_unit("/usr/bin/killall -0 haproxy"), None);
        assert_eq!(systemd_status_unit("systemctl restart haproxy"), None);
        let design = Design::load("scale_up").unwrap();
        let book = AddressBook::new();
        let text = "vrrp_script chk {\n  script \"/usr/bin/systemctl is-active --quiet haproxy\"\n  interval 1\n}\nvrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  priority 101\n  unicast_src_ip 10.0.0.11\n  unicast_peer {\n    10.0.0.12\n  }\n  virtual_ipaddress {\n    10.0.0.10/24\n  }\n  track_script {\n    chk\n  }\n}\n";
        let target = crate::config::test_target(&design, &book, Some("lb-1"), vec!["lb-1", "lb-2"]);
        let m = map(Path::new("keepalived.conf"), text, &target).unwrap();
        assert!(
            m.text.contains("script \"/usr/bin/pgrep -x haproxy\""),
            "{}",
            m.text
        );
        assert!(
            m.lines
                .iter()
                .any(|l| l.contains("the run's hosts have no systemd")),
            "{:?}",
            m.lines
        );
    }

    #[test]
    fn a_peer_written_with_its_prefix_is_a_unicast_peer() {
        let design = Design::load("scale_up").unwrap();
        let book = AddressBook::new();
        let text = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  unicast_src_ip 192.168.0.91/24\n  unicast_peer {\n    192.168.0.92/24\n  }\n  virtual_ipaddress {\n    192.168.0.100/24\n  }\n}\n";
        let target = crate::config::test_target(&design, &book, Some("lb-1"), vec!["lb-1", "lb-2"]);
        let m = map(Path::new("keepalived.conf"), text, &target).unwrap();
        assert!(m.text.contains("    {{ lb-2.public }}\n"), "{}", m.text);
        assert!(!m.text.contains("/24\n  }\n  virtual"), "{}", m.text);
        let said = format!("{:?} {:?}", m.lines, m.warnings);
        assert!(!said.contains("multicast"), "{said}");
        assert!(
            said.contains("unicast_peer 192.168.0.92/24 -> {{ lb-2.public }}"),
            "{said}"
        );
    }

    #[test]
    fn a_multicast_instance_gets_its_peer_by_unicast_in_one_added_line() {
        let design = Design::load("scale_up").unwrap();
        let book = AddressBook::new();
        let text = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  virtual_ipaddress {\n    10.0.0.10\n  }\n}\n";
        let target = crate::config::test_target(&design, &book, Some("lb-1"), vec!["lb-1", "lb-2"]);
        let m = map(Path::new("keepalived.conf"), text, &target).unwrap();
        assert!(
            m.text
                .ends_with("  }\n    unicast_peer { {{ lb-2.public }} }\n}\n"),
            "{}",
            m.text
        );
        assert!(
            m.lines.iter().any(|l| l.starts_with(
                "keepalived.conf:7: (no unicast_peer) -> unicast_peer { {{ lb-2.public }} } added"
            )),
            "{:?}",
            m.lines
        );
        assert_eq!(m.text.lines().count(), text.lines().count() + 1);
    }

    #[test]
    fn a_pair_file_is_mapped_onto_each_host() {
        let design = Design::load("scale_up").unwrap();
        let book = AddressBook::new();
        let text = "global_defs {\n  smtp_server 10.0.0.25\n}\nvrrp_instance VI_1 {\n  interface eth0\n  state MASTER\n  virtual_router_id 51\n  priority 101\n  authentication {\n    auth_type PASS\n    auth_pass s3cret\n  }\n  unicast_src_ip 10.0.0.11\n  unicast_peer {\n    10.0.0.12\n  }\n  virtual_ipaddress {\n    54.12.0.10/24\n  }\n}\n";
        let target = crate::config::test_target(&design, &book, Some("lb-2"), vec!["lb-1", "lb-2"]);
        let m = map(Path::new("keepalived.conf"), text, &target).unwrap();
        let all = m.lines.join("\n");
        assert!(
            all.contains("keepalived.conf:2: smtp_server 10.0.0.25 -> left out"),
            "{all}"
        );
        assert!(
            all.contains("interface eth0 -> {{ self.public.iface }}"),
            "{all}"
        );
        assert!(
            all.contains("unicast_src_ip 10.0.0.11 -> {{ lb-2.public }}"),
            "{all}"
        );
        assert!(
            all.contains("unicast_peer 10.0.0.12 -> {{ lb-1.public }} (lb-1)"),
            "{all}"
        );
        assert!(
            m.text
                .contains("{{ public.vip }}/24 dev {{ self.public.iface }}"),
            "{}",
            m.text
        );
        assert_eq!(m.text.lines().count(), text.lines().count());
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        assert!(map(Path::new("k"), "vrrp_instance x {\n", &target).is_err());
        // An LVS block would health-check the user's servers: it goes, whole.
        let lvs = "virtual_server 54.12.0.10 80 {\n  real_server 10.0.0.21 80 {\n    TCP_CHECK {\n      connect_timeout 3\n    }\n  }\n}\nvrrp_instance VI_1 {\n  interface eth0\n  virtual_ipaddress {\n    54.12.0.10\n  }\n}\n";
        let m = map(Path::new("keepalived.conf"), lvs, &target).unwrap();
        assert!(
            m.lines[0].contains("keepalived.conf:1: virtual_server 54.12.0.10 80 -> left out"),
            "{:?}",
            m.lines
        );
        assert_eq!(
            m.text.matches("# stackproof: left out").count(),
            7,
            "{}",
            m.text
        );
        assert!(m.text.contains("{{ public.vip }}/24"), "{}", m.text);
    }
}
