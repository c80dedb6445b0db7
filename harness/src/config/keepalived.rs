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
    let name = file_label(file);
    let at = |n: usize| format!("{name}:{n}");
    let host = target.host.expect("keepalived files are mapped per host");
    // The VIP lives on the pair's first network, as the design's own keepalived has it.
    let net = target
        .design
        .spec
        .host(host)
        .and_then(|h| h.networks.first().cloned())
        .unwrap_or_else(|| "public".into());
    let own = format!("{{{{ {host}.{net} }}}}");
    let iface = format!("{{{{ self.{net}.iface }}}}");
    let vip = format!("{{{{ {net}.vip }}}}");
    let peers: Vec<&str> = target
        .running
        .iter()
        .copied()
        .filter(|h| *h != host)
        .collect();
    let mut out = Mapped::default();
    let mut blocks: Vec<String> = Vec::new();
    let mut peers_mapped = 0;
    let mut vips_mapped = 0;
    let mut saw_unicast = false;
    // The `vrrp_instance` being read: the depth it opened at, and whether it
    // names a unicast peer (one that does not advertises to multicast).
    let mut instance: Option<(usize, bool)> = None;
    // While inside an LVS `virtual_server` block: the depth it opened at.
    let mut lvs_depth: Option<usize> = None;
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let code = raw.split(['#', '!']).next().unwrap_or("");
        let words: Vec<&str> = code.split_whitespace().collect();
        let mut line = raw.to_string();
        let block = blocks.last().map(String::as_str).unwrap_or("");
        if lvs_depth.is_none()
            && matches!(
                words.first().copied(),
                Some("virtual_server" | "virtual_server_group")
            )
        {
            lvs_depth = Some(blocks.len());
            out.lines.push(format!(
                "{}: {} -> left out, with its block (LVS balancing is not part of the design, and its health checks would contact your real servers)",
                at(n),
                code.trim().trim_end_matches('{').trim()
            ));
        }
        if lvs_depth.is_some() {
            line = format!("# stackproof: left out: {raw}");
        }
        match words.first().copied() {
            _ if lvs_depth.is_some() => {}
            Some("interface") | Some("mcast_src_ip") | Some("unicast_src_ip")
                if words.len() >= 2 =>
            {
                let (word, value) = (words[0], words[1]);
                let to = if word == "interface" { &iface } else { &own };
                line = line.replacen(value, to, 1);
                out.lines.push(format!(
                    "{}: {word} {value} -> {to} ({host}'s {} on `{net}`)",
                    at(n),
                    if word == "interface" {
                        "interface"
                    } else {
                        "address"
                    }
                ));
                let bare = value.split('/').next().unwrap_or(value);
                if word != "interface" && is_ipv4(bare) {
                    out.learned.push((
                        bare.to_string(),
                        Known {
                            placeholder: own.clone(),
                            what: host.to_string(),
                        },
                    ));
                }
            }
            // `192.168.0.92/24`: an address written with its prefix is still the peer's address.
            Some(written)
                if block == "unicast_peer" && is_ipv4(written.split('/').next().unwrap_or("")) =>
            {
                let addr = written.split('/').next().unwrap_or("");
                saw_unicast = true;
                if let Some((_, named)) = instance.as_mut() {
                    *named = true;
                }
                let known = target.lookup(addr);
                let to = match (&known, peers.get(peers_mapped)) {
                    (Some(k), _) if k.what != host => Some((k.placeholder.clone(), k.what.clone())),
                    (_, Some(peer)) => Some((format!("{{{{ {peer}.{net} }}}}"), peer.to_string())),
                    _ => None,
                };
                match to {
                    Some((placeholder, what)) => {
                        line = line.replacen(written, &placeholder, 1);
                        out.lines.push(format!(
                            "{}: unicast_peer {written} -> {placeholder} ({what}{})",
                            at(n),
                            if written != addr {
                                "; the prefix is not part of a peer's address"
                            } else {
                                ""
                            }
                        ));
                        out.learned
                            .push((addr.to_string(), Known { placeholder, what }));
                    }
                    None => {
                        line = format!("# stackproof: left out, no other peer in the run: {raw}");
                        out.lines.push(format!(
                            "{}: unicast_peer {addr} -> left out (the design has {} keepalived host(s))",
                            at(n),
                            target.running.len()
                        ));
                    }
                }
                peers_mapped += 1;
            }
            Some(first)
                if (block == "virtual_ipaddress" || block == "virtual_ipaddress_excluded")
                    && is_ipv4(first.split('/').next().unwrap_or("")) =>
            {
                let addr = first.split('/').next().unwrap_or("");
                if vips_mapped == 0 {
                    let to = format!("{vip}/24 dev {iface}");
                    let indent = &raw[..raw.len() - raw.trim_start().len()];
                    line = format!("{indent}{to}");
                    out.lines.push(format!(
                        "{}: virtual address {} -> {to} (the run's VIP on `{net}`)",
                        at(n),
                        code.trim()
                    ));
                    out.learned.push((
                        addr.to_string(),
                        Known {
                            placeholder: vip.clone(),
                            what: "the VIP".into(),
                        },
                    ));
                } else {
                    line = format!("# stackproof: left out, the run has one VIP: {raw}");
                    out.lines.push(format!(
                        "{}: virtual address {addr} -> left out (the design's DNS names one VIP)",
                        at(n)
                    ));
                }
                vips_mapped += 1;
            }
            Some("smtp_server") => {
                line = format!("# stackproof: left out, never contacted: {raw}");
                out.lines.push(format!(
                    "{}: smtp_server {} -> left out (a mail server outside the run is not contacted)",
                    at(n),
                    words.get(1).copied().unwrap_or("")
                ));
            }
            Some(
                word @ ("script" | "notify" | "notify_master" | "notify_backup" | "notify_fault"),
            ) if words.len() >= 2 => {
                let command = code.trim()[word.len()..].trim().trim_matches('"');
                // Whether the host has the program is asked on the host
                // itself, wherever its path is: the service's lint
                // (services/keepalived/missing-scripts) names each one missing.
                // `systemctl is-active haproxy` asks systemd, which the run's
                // hosts do not run: always "failed" there. The same question
                // asked of the processes keeps the check's meaning.
                if word == "script"
                    && let Some(unit) = systemd_status_unit(command)
                {
                    let instead = format!("/usr/bin/pgrep -x {unit}");
                    line = line.replacen(command, &instead, 1);
                    out.lines.push(format!(
                        "{}: script `{command}` -> `{instead}` (the run's hosts have no systemd; the same check, asked of the processes)",
                        at(n)
                    ));
                }
            }
            _ => {}
        }
        // Follow the blocks (`vrrp_instance VI_1 {`, `unicast_peer {`, `}`).
        let mut instance_ended_unnamed = false;
        for ch in code.chars() {
            match ch {
                '{' => {
                    let opens = words.first().copied().unwrap_or("");
                    if opens == "vrrp_instance" && lvs_depth.is_none() {
                        instance = Some((blocks.len(), false));
                    }
                    blocks.push(opens.to_string());
                }
                '}' => {
                    blocks.pop();
                    if lvs_depth == Some(blocks.len()) {
                        lvs_depth = None;
                    }
                    if let Some((depth, named)) = instance
                        && depth == blocks.len()
                    {
                        instance_ended_unnamed |= !named;
                        instance = None;
                    }
                }
                _ => {}
            }
        }
        if instance_ended_unnamed && !peers.is_empty() {
            // Multicast adverts never cross the run's networks (Docker's
            // `internal` bridges drop traffic to addresses outside their
            // subnet), while on the LAN a tutorial means they do: the pair
            // is given its peers by unicast, in one line before the end of
            // the block, so it is judged as on the network it was written for.
            let to: Vec<String> = peers
                .iter()
                .map(|p| format!("{{{{ {p}.{net} }}}}"))
                .collect();
            let indent = raw[..raw.len() - raw.trim_start().len()].to_string() + "    ";
            lines.push(format!("{indent}unicast_peer {{ {} }}", to.join(" ")));
            out.lines.push(format!(
                "{}: (no unicast_peer) -> unicast_peer {{ {} }} added before this line: multicast VRRP adverts (224.0.0.18) do not cross the run's networks, so the pair talks by unicast, as on a LAN that passes multicast; keepalived's own messages count this added line",
                at(n),
                to.join(" ")
            ));
        }
        lines.push(line);
    }
    if !blocks.is_empty() {
        return Err(Error::InvalidFixture {
            path: file.to_path_buf(),
            detail: format!(
                "a block is never closed (`{}` has no `}}`): keepalived would not read this file as you mean it",
                blocks.last().map(String::as_str).unwrap_or("")
            ),
        });
    }
    if vips_mapped == 0 {
        out.warnings.push(format!(
            "{name}: no virtual_ipaddress: this host never takes the VIP the run's DNS names"
        ));
    }
    if !saw_unicast {
        out.warnings.push(format!(
            "{name}: no unicast_peer: VRRP adverts go to multicast 224.0.0.18, which cloud networks such as AWS's drop: there both peers would hold the VIP. The run judges the pair as on a LAN that passes multicast"
        ));
    }
    out.text = lines.join("\n") + "\n";
    Ok(out)
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
