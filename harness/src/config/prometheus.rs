//! A user's `prometheus.yml`, exactly as it is on their monitoring server,
//! mapped onto the design's. Scrape targets become the design's hosts: an
//! address another file of the user's already named (a HAProxy backend)
//! keeps that meaning, the others go, port by port, to the hosts that run
//! what listens there (9100 node exporter, 9113 Nginx exporter, 8405
//! HAProxy, 3903 mtail), in the design's order. Each job gets a `host`
//! label per target (an addition: the claims find each host's series by
//! it). A rules file beside the user's file is used; alertmanagers and
//! remote storage are left out; service discovery stops the run (it would
//! contact the user's infrastructure).

use std::collections::BTreeMap;
use std::path::Path;

use super::{Mapped, Target, file_label, is_local};
use crate::error::{Error, Result};

/// The service listening on each exporter port, as the library names it.
const PORTS: &[(&str, &str)] = &[
    ("9100", "node-exporter"),
    ("9113", "nginx-exporter"),
    ("8405", "haproxy"),
    ("3903", "mtail"),
    ("9090", "prometheus"),
];

/// Where the run installs the rules file.
const RUN_RULES: &str = "/etc/prometheus/rules.yml";

/// Service discovery the run cannot map.
const DISCOVERY: &[&str] = &[
    "file_sd_configs",
    "consul_sd_configs",
    "dns_sd_configs",
    "ec2_sd_configs",
    "kubernetes_sd_configs",
    "http_sd_configs",
    "gce_sd_configs",
    "azure_sd_configs",
    "docker_sd_configs",
];

/// One scrape job while it is read: where it starts, its targets' hosts,
/// and where its own `relabel_configs` is, if it has one.
struct Job {
    key_indent: usize,
    hosts: Vec<(String, String)>,
    relabel_at: Option<(usize, usize)>,
}

/// Maps `text` (from `file`).
pub fn map(file: &Path, text: &str, target: &Target) -> Result<Mapped> {
    let name = file_label(file);
    let at = |n: usize| format!("{name}:{n}");
    let mut out = Mapped::default();
    // Hosts not yet given a target, per port, in the design's order.
    let mut free: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (port, service) in PORTS {
        free.insert(
            port,
            target
                .design
                .spec
                .hosts
                .iter()
                .filter(|h| {
                    h.services
                        .iter()
                        .any(|s| s == service || (*service == "haproxy" && s == "haproxy-tls"))
                })
                .map(|h| h.name.as_str())
                .collect(),
        );
    }
    let monitor = target.running.first().copied().unwrap_or("");
    let mut section = String::new();
    let mut lines: Vec<String> = Vec::new();
    let mut jobs: Vec<(usize, Job)> = Vec::new();
    let mut targets_indent: Option<usize> = None;
    let mut rules_used = false;
    // Maps one `host:port` target, or says why it is left out.
    let mut map_target = |item: &str,
                          n: usize,
                          out: &mut Mapped,
                          job: Option<&mut Job>|
     -> Option<String> {
        let item = item.trim().trim_matches(['\'', '"']);
        let (host, port) = item.rsplit_once(':').unwrap_or((item, "80"));
        let chosen = if is_local(host) {
            // The monitoring server itself, as on the user's.
            Some((
                monitor.to_string(),
                format!("{{{{ {monitor}.{} }}}}", target.inner_network(monitor)),
            ))
        } else if let Some(k) = target.lookup(host).filter(|k| k.what != "the VIP") {
            if let Some(list) = free.get_mut(port) {
                list.retain(|h| *h != k.what);
            }
            Some((k.what.clone(), k.placeholder.clone()))
        } else {
            free.get_mut(port)
                .filter(|l| !l.is_empty())
                .map(|l| l.remove(0))
                .map(|h| (h.to_string(), target.address_of(h)))
        };
        match chosen {
            Some((h, placeholder)) => {
                let to = format!("{placeholder}:{port}");
                out.lines
                    .push(format!("{}: target {item} -> {to} ({h})", at(n)));
                if let Some(job) = job {
                    job.hosts.push((to.clone(), h));
                }
                Some(to)
            }
            None => {
                out.lines.push(format!(
                    "{}: target {item} -> left out (no host of the design is left with something on port {port}; never contacted)",
                    at(n)
                ));
                None
            }
        }
    };
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let indent = raw.len() - raw.trim_start().len();
        let trimmed = raw.trim();
        let code = trimmed.split(" #").next().unwrap_or("").trim();
        if code.starts_with('#') || code.is_empty() {
            lines.push(raw.to_string());
            continue;
        }
        if indent == 0 {
            section = code.split(':').next().unwrap_or("").to_string();
            targets_indent = None;
        }
        if code.starts_with("- job_name:") {
            jobs.push((
                lines.len(),
                Job {
                    key_indent: indent + 2,
                    hosts: Vec::new(),
                    relabel_at: None,
                },
            ));
        }
        if let Some(key) = DISCOVERY.iter().find(|k| code.starts_with(*k)) {
            return Err(Error::InvalidFixture {
                path: file.to_path_buf(),
                detail: format!(
                    "line {n}: `{key}` finds targets in your infrastructure, which the run never contacts; list them under static_configs (targets: ['host:port'])"
                ),
            });
        }
        if section == "remote_write" || section == "remote_read" {
            if indent == 0 {
                out.lines.push(format!(
                    "{}: {section} -> left out (remote storage outside the run is not contacted)",
                    at(n)
                ));
            }
            lines.push(format!("# stackproof: left out: {raw}"));
            continue;
        }
        // The end of a block list of targets.
        if let Some(ti) = targets_indent
            && !(code.starts_with("- ") && indent >= ti)
        {
            targets_indent = None;
        }
        let alerting = section == "alerting";
        // `targets:` as a key of its own or of a list item (`- targets: [...]`).
        let (dash, kv, key_col) = match code.strip_prefix("- ") {
            Some(r) => ("- ", r.trim_start(), indent + 2),
            None => ("", code, indent),
        };
        if let Some(rest) = kv.strip_prefix("targets:") {
            let rest = rest.trim();
            if rest.starts_with('[') {
                let items: Vec<&str> = rest
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                let mut mapped = Vec::new();
                for item in items {
                    if alerting {
                        out.lines.push(format!(
                            "{}: alertmanager {item} -> left out (no alertmanager in the run; never contacted)",
                            at(n)
                        ));
                        continue;
                    }
                    let job = jobs.last_mut().map(|(_, j)| j);
                    if let Some(to) = map_target(item, n, &mut out, job) {
                        mapped.push(format!("'{to}'"));
                    }
                }
                lines.push(format!(
                    "{}{dash}targets: [{}]",
                    &raw[..indent],
                    mapped.join(", ")
                ));
                continue;
            }
            targets_indent = Some(key_col);
            lines.push(raw.to_string());
            continue;
        }
        if targets_indent.is_some() {
            let item = code.trim_start_matches("- ");
            if alerting {
                out.lines.push(format!(
                    "{}: alertmanager {item} -> left out (no alertmanager in the run; never contacted)",
                    at(n)
                ));
                lines.push(format!("# stackproof: left out: {raw}"));
                continue;
            }
            let job = jobs.last_mut().map(|(_, j)| j);
            match map_target(item, n, &mut out, job) {
                Some(to) => lines.push(format!("{}- '{to}'", &raw[..indent])),
                None => lines.push(format!("# stackproof: left out: {raw}")),
            }
            continue;
        }
        if code.starts_with("relabel_configs:")
            && let Some((_, job)) = jobs.last_mut()
        {
            job.relabel_at = Some((lines.len(), indent));
        }
        if section == "rule_files" && code.starts_with("- ") {
            let rule = code.trim_start_matches("- ").trim_matches(['\'', '"']);
            let beside = file
                .parent()
                .unwrap_or(Path::new("."))
                .join(Path::new(rule).file_name().unwrap_or_default());
            if !rules_used && let Ok(body) = std::fs::read_to_string(&beside) {
                rules_used = true;
                out.files
                    .push(("services/prometheus/rules.yml".into(), body));
                out.lines.push(format!(
                    "{}: rule file {rule} -> {RUN_RULES} (your {}, found beside {name})",
                    at(n),
                    beside.display()
                ));
                lines.push(format!("{}- {RUN_RULES}", &raw[..indent]));
            } else {
                out.lines.push(format!(
                    "{}: rule file {rule} -> left out ({}: no alert of yours is evaluated)",
                    at(n),
                    if rules_used {
                        "the run takes one rules file"
                    } else {
                        "not found beside your file"
                    }
                ));
                lines.push(format!("# stackproof: left out: {raw}"));
            }
            continue;
        }
        lines.push(raw.to_string());
    }
    // Each job's `host` label, from last to first so the indices hold.
    let mut job_ends: Vec<usize> = jobs.iter().skip(1).map(|(start, _)| *start).collect();
    job_ends.push(lines.len());
    for ((_, job), end) in jobs.into_iter().zip(job_ends).rev() {
        if job.hosts.is_empty() {
            continue;
        }
        let (at_line, item_indent, header) = match job.relabel_at {
            Some((i, indent)) => (i + 1, indent + 2, None),
            None => {
                // After the job's last line that is not blank or a comment.
                let mut end = end;
                while end > 0 && {
                    let t = lines[end - 1].trim();
                    t.is_empty() || t.starts_with('#')
                } {
                    end -= 1;
                }
                (end, job.key_indent + 2, Some(job.key_indent))
            }
        };
        let mut block = Vec::new();
        if let Some(key) = header {
            block.push(format!(
                "{}relabel_configs: # stackproof: each target's host, as the claims find it",
                " ".repeat(key)
            ));
        }
        for (address, host) in &job.hosts {
            let pad = " ".repeat(item_indent);
            block.push(format!("{pad}- source_labels: [__address__]"));
            block.push(format!("{pad}  regex: '{address}'"));
            block.push(format!("{pad}  target_label: host"));
            block.push(format!("{pad}  replacement: {host}"));
            out.additions.push(format!(
                "label host=\"{host}\" on target {address} (the claims find each host's series by it)"
            ));
        }
        lines.splice(at_line..at_line, block);
    }
    out.text = lines.join("\n") + "\n";
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AddressBook, Known};
    use crate::design::Design;

    #[test]
    fn targets_become_the_designs_hosts_with_a_host_label() {
        let design = Design::load("scale_up").unwrap();
        let mut book = AddressBook::new();
        book.insert(
            "10.0.0.21".into(),
            Known {
                placeholder: "{{ web-1.private }}".into(),
                what: "web-1".into(),
            },
        );
        let target = crate::config::test_target(&design, &book, None, vec!["mon-1"]);
        let text = "global:\n  scrape_interval: 15s\n\nrule_files:\n  - alerts.yml\n\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['10.0.0.99:9093']\n\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['localhost:9090']\n  - job_name: node\n    static_configs:\n      - targets:\n        - 10.0.0.21:9100\n        - 10.0.0.11:9100\n        - '54.1.2.3:9100'\n";
        let m = map(Path::new("prometheus.yml"), text, &target).unwrap();
        let all = m.lines.join("\n");
        assert!(
            all.contains("alertmanager '10.0.0.99:9093' -> left out"),
            "{all}"
        );
        assert!(
            all.contains("target localhost:9090 -> {{ mon-1.private }}:9090 (mon-1)"),
            "{all}"
        );
        assert!(
            all.contains("target 10.0.0.21:9100 -> {{ web-1.private }}:9100 (web-1)"),
            "{all}"
        );
        assert!(
            all.contains("target 10.0.0.11:9100 -> {{ lb-1.private }}:9100 (lb-1)"),
            "{all}"
        );
        assert!(
            all.contains("target 54.1.2.3:9100 -> {{ lb-2.private }}:9100 (lb-2)"),
            "{all}"
        );
        assert!(all.contains("rule file alerts.yml -> left out"), "{all}");
        assert!(m.text.contains("        replacement: lb-2\n"), "{}", m.text);
        assert!(
            m.text.contains("    relabel_configs: # stackproof"),
            "{}",
            m.text
        );
        assert_eq!(m.additions.len(), 4);
        let e = map(
            Path::new("p.yml"),
            "scrape_configs:\n  - job_name: x\n    file_sd_configs:\n      - files: [a.json]\n",
            &target,
        )
        .unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
    }
}
