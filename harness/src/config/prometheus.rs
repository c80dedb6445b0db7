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
    let mut reading = Reading::new(file, target);
    for (i, raw) in text.lines().enumerate() {
        reading.line(i + 1, raw)?;
    }
    let Reading {
        mut out,
        mut lines,
        jobs,
        ..
    } = reading;
    add_host_labels(&mut lines, jobs, &mut out);
    out.text = lines.join("\n") + "\n";
    Ok(out)
}

/// The file being read line by line, and the file being written.
struct Reading<'a> {
    file: &'a Path,
    name: String,
    target: &'a Target<'a>,
    /// The host running Prometheus (the user's `localhost`).
    monitor: &'a str,
    /// Hosts not yet given a target, per port, in the design's order.
    free: BTreeMap<&'static str, Vec<&'a str>>,
    /// The top-level key the line is under (`scrape_configs`, `alerting`).
    section: String,
    /// Where a block list of targets is (its column), while in one.
    targets_indent: Option<usize>,
    rules_used: bool,
    /// Each job: the index of its first written line, and the job.
    jobs: Vec<(usize, Job)>,
    out: Mapped,
    lines: Vec<String>,
}

impl<'a> Reading<'a> {
    fn new(file: &'a Path, target: &'a Target<'a>) -> Self {
        let mut free = BTreeMap::new();
        for (port, service) in PORTS {
            let hosts = target
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
                .collect();
            free.insert(*port, hosts);
        }
        Reading {
            file,
            name: file_label(file),
            target,
            monitor: target.running.first().copied().unwrap_or(""),
            free,
            section: String::new(),
            targets_indent: None,
            rules_used: false,
            jobs: Vec::new(),
            out: Mapped::default(),
            lines: Vec::new(),
        }
    }

    fn at(&self, n: usize) -> String {
        format!("{}:{n}", self.name)
    }

    /// Reads line `n` and writes what the run's file holds for it.
    fn line(&mut self, n: usize, raw: &str) -> Result<()> {
        let indent = raw.len() - raw.trim_start().len();
        let code = raw.trim().split(" #").next().unwrap_or("").trim();
        if code.starts_with('#') || code.is_empty() {
            self.lines.push(raw.to_string());
            return Ok(());
        }
        if indent == 0 {
            self.section = code.split(':').next().unwrap_or("").to_string();
            self.targets_indent = None;
        }
        if code.starts_with("- job_name:") {
            let job = Job {
                key_indent: indent + 2,
                hosts: Vec::new(),
                relabel_at: None,
            };
            self.jobs.push((self.lines.len(), job));
        }
        if let Some(key) = DISCOVERY.iter().find(|k| code.starts_with(*k)) {
            return Err(Error::InvalidFixture {
                path: self.file.to_path_buf(),
                detail: format!(
                    "line {n}: `{key}` finds targets in your infrastructure, which the run never contacts; list them under static_configs (targets: ['host:port'])"
                ),
            });
        }
        if self.section == "remote_write" || self.section == "remote_read" {
            if indent == 0 {
                let line = format!(
                    "{}: {} -> left out (remote storage outside the run is not contacted)",
                    self.at(n),
                    self.section
                );
                self.out.lines.push(line);
            }
            self.left_out(raw);
            return Ok(());
        }
        // The end of a block list of targets.
        if let Some(ti) = self.targets_indent
            && !(code.starts_with("- ") && indent >= ti)
        {
            self.targets_indent = None;
        }
        // `targets:` as a key of its own or of a list item (`- targets: [...]`).
        let (dash, kv, key_col) = match code.strip_prefix("- ") {
            Some(r) => ("- ", r.trim_start(), indent + 2),
            None => ("", code, indent),
        };
        if let Some(rest) = kv.strip_prefix("targets:") {
            let rest = rest.trim();
            if rest.starts_with('[') {
                self.inline_targets(n, raw, indent, dash, rest);
            } else {
                self.targets_indent = Some(key_col);
                self.lines.push(raw.to_string());
            }
            return Ok(());
        }
        if self.targets_indent.is_some() {
            self.listed_target(n, raw, indent, code.trim_start_matches("- "));
            return Ok(());
        }
        if code.starts_with("relabel_configs:")
            && let Some((_, job)) = self.jobs.last_mut()
        {
            job.relabel_at = Some((self.lines.len(), indent));
        }
        if self.section == "rule_files" && code.starts_with("- ") {
            self.rule_file(n, raw, indent, code);
            return Ok(());
        }
        self.lines.push(raw.to_string());
        Ok(())
    }

    /// Keeps `raw` in the run's file as a comment.
    fn left_out(&mut self, raw: &str) {
        self.lines.push(format!("# stackproof: left out: {raw}"));
    }

    /// `targets: ['a:9100', 'b:9100']`.
    fn inline_targets(&mut self, n: usize, raw: &str, indent: usize, dash: &str, list: &str) {
        let items = list
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let mut mapped = Vec::new();
        for item in items {
            if self.section == "alerting" {
                self.no_alertmanager(n, item);
            } else if let Some(to) = self.map_target(item, n) {
                mapped.push(format!("'{to}'"));
            }
        }
        self.lines.push(format!(
            "{}{dash}targets: [{}]",
            &raw[..indent],
            mapped.join(", ")
        ));
    }

    /// `- 'a:9100'` under a `targets:` key.
    fn listed_target(&mut self, n: usize, raw: &str, indent: usize, item: &str) {
        if self.section == "alerting" {
            self.no_alertmanager(n, item);
            self.left_out(raw);
            return;
        }
        match self.map_target(item, n) {
            Some(to) => self.lines.push(format!("{}- '{to}'", &raw[..indent])),
            None => self.left_out(raw),
        }
    }

    fn no_alertmanager(&mut self, n: usize, item: &str) {
        let line = format!(
            "{}: alertmanager {item} -> left out (no alertmanager in the run; never contacted)",
            self.at(n)
        );
        self.out.lines.push(line);
    }

    /// Maps one `host:port` target, or says why it is left out.
    fn map_target(&mut self, item: &str, n: usize) -> Option<String> {
        let item = item.trim().trim_matches(['\'', '"']);
        let (host, port) = item.rsplit_once(':').unwrap_or((item, "80"));
        let target = self.target;
        let chosen = if is_local(host) {
            // The monitoring server itself, as on the user's.
            let monitor = self.monitor;
            Some((
                monitor.to_string(),
                format!("{{{{ {monitor}.{} }}}}", target.inner_network(monitor)),
            ))
        } else if let Some(k) = target.lookup(host).filter(|k| k.what != "the VIP") {
            if let Some(list) = self.free.get_mut(port) {
                list.retain(|h| *h != k.what);
            }
            Some((k.what.clone(), k.placeholder.clone()))
        } else {
            self.free
                .get_mut(port)
                .filter(|l| !l.is_empty())
                .map(|l| l.remove(0))
                .map(|h| (h.to_string(), target.address_of(h)))
        };
        let at = self.at(n);
        let Some((h, placeholder)) = chosen else {
            self.out.lines.push(format!(
                "{at}: target {item} -> left out (no host of the design is left with something on port {port}; never contacted)"
            ));
            return None;
        };
        let to = format!("{placeholder}:{port}");
        self.out
            .lines
            .push(format!("{at}: target {item} -> {to} ({h})"));
        if let Some((_, job)) = self.jobs.last_mut() {
            job.hosts.push((to.clone(), h));
        }
        Some(to)
    }

    /// `- rules.yml` under `rule_files`: the first one found beside the
    /// user's file becomes the run's rules file.
    fn rule_file(&mut self, n: usize, raw: &str, indent: usize, code: &str) {
        let rule = code.trim_start_matches("- ").trim_matches(['\'', '"']);
        let beside = self
            .file
            .parent()
            .unwrap_or(Path::new("."))
            .join(Path::new(rule).file_name().unwrap_or_default());
        let at = self.at(n);
        if !self.rules_used
            && let Ok(body) = std::fs::read_to_string(&beside)
        {
            self.rules_used = true;
            self.out
                .files
                .push(("services/prometheus/rules.yml".into(), body));
            self.out.lines.push(format!(
                "{at}: rule file {rule} -> {RUN_RULES} (your {}, found beside {})",
                beside.display(),
                self.name
            ));
            self.lines.push(format!("{}- {RUN_RULES}", &raw[..indent]));
            return;
        }
        let why = if self.rules_used {
            "the run takes one rules file"
        } else {
            "not found beside your file"
        };
        self.out.lines.push(format!(
            "{at}: rule file {rule} -> left out ({why}: no alert of yours is evaluated)"
        ));
        self.left_out(raw);
    }
}

/// Each job's `host` label (a relabelling per target), added to its
/// `relabel_configs` or as one; from last job to first so indices hold.
fn add_host_labels(lines: &mut Vec<String>, jobs: Vec<(usize, Job)>, out: &mut Mapped) {
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
