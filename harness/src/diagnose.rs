//! What broke, in the user's terms. After a FAIL the claim runner asks the
//! running servers themselves for the causes a design's files commonly
//! have, each measured, never guessed: a server that never settled at
//! start (its own status), a scrape that fails (Prometheus's own reason),
//! PHP source sent as text (the page itself), a database that listens on
//! loopback only (the socket table). Each cause found is a [`Found`] with
//! a key; a FAIL carries the causes that concern it, and the checklist
//! names each key once with every FAIL it explains, so a student fixes a
//! cause, not seven symptoms.

use crate::failure::Found;
use crate::stack::{Stack, WWW};

/// The causes found on `stack` that concern a claim of `kind` (its area,
/// before the dot, decides which causes can break it), each once.
pub(crate) async fn causes(stack: &Stack, kind: &str) -> Vec<Found> {
    let area = kind.split('.').next().unwrap_or("");
    let mut found = unsettled(stack);
    if area == "monitoring" {
        found.extend(failing_scrapes(stack).await);
    }
    // Claims that judge pages, their balancing or their data: a site that
    // sends PHP source, or an app that cannot reach its database, breaks them.
    if !matches!(area, "dns" | "firewall" | "monitoring") {
        found.extend(php_source(stack).await);
        found.extend(database_on_loopback(stack).await);
    }
    found
}

/// Servers that started but never settled (HAProxy with every backend
/// DOWN), from the stack's own notes, in the server's words.
fn unsettled(stack: &Stack) -> Vec<Found> {
    stack
        .notes_now()
        .iter()
        .filter(|n| n.contains("did not settle"))
        .map(|n| {
            let (head, status) = n.split_once("; it says:\n").unwrap_or((n.as_str(), ""));
            let who = head
                .split(" started but did not settle")
                .next()
                .unwrap_or(head)
                .replace(" on host ", " on ");
            // The stack writes "`haproxy` on host `lb-1`"; a cause names the
            // host bare, as every other cause does ("Prometheus on mon-1").
            let who = match who.rsplit_once(" on ") {
                Some((service, host)) => format!("{service} on {}", host.trim_matches('`')),
                None => who,
            };
            let status: Vec<&str> = status
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .take(4)
                .collect();
            let words = if status.is_empty() {
                format!("{who} never settled")
            } else {
                format!("{who} never settled: {}", status.join("; "))
            };
            // "`haproxy` on lb-1": the service and the host, for the user's file.
            let mut parts = who.split(" on ");
            let service = parts.next().map(|s| s.trim_matches('`').to_string());
            let host = parts.next().map(str::to_string);
            Found {
                key: format!("unsettled {who}"),
                words,
                host,
                service,
            }
        })
        .collect()
}

/// Scrape targets Prometheus reports down, with its own last error. A
/// timeout is traffic that gets no answer (a firewall dropping it): one
/// cause per host, whichever exporters it hides; a refusal is nothing
/// listening on that port: one cause per target.
async fn failing_scrapes(stack: &Stack) -> Vec<Found> {
    let Some(monitor) = stack.hosts_running("prometheus").first().copied() else {
        return Vec::new();
    };
    let url = format!("http://{}:9090/api/v1/targets", monitor.main_addr());
    let Ok(answer) = stack.client.fresh.get(&url).send().await else {
        return Vec::new();
    };
    let Ok(body) = answer.json::<serde_json::Value>().await else {
        return Vec::new();
    };
    // Per host (or target, when no host is known): its instances and Prometheus's words.
    let mut dropped: Vec<(String, Vec<String>, String)> = Vec::new();
    let mut found = Vec::new();
    for t in body["data"]["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if t["health"].as_str() != Some("down") {
            continue;
        }
        let instance = t["labels"]["instance"].as_str().unwrap_or("?").to_string();
        let host = t["labels"]["host"]
            .as_str()
            .map(str::to_string)
            .or_else(|| host_at(stack, &instance));
        let error = t["lastError"].as_str().unwrap_or("").to_string();
        let no_answer = ["deadline exceeded", "i/o timeout", "no route to host"]
            .iter()
            .any(|e| error.contains(e));
        if no_answer {
            let who = host.clone().unwrap_or_else(|| instance.clone());
            match dropped.iter_mut().find(|(h, ..)| *h == who) {
                Some((_, instances, _)) => instances.push(instance),
                None => dropped.push((who, vec![instance], error)),
            }
            continue;
        }
        let why = if error.contains("connection refused") {
            ": nothing listens there"
        } else {
            ""
        };
        let on = host
            .as_deref()
            .map(|h| format!("{h} at "))
            .unwrap_or_default();
        found.push(Found {
            key: format!("scrape refused {instance}"),
            words: format!(
                "Prometheus on {} cannot scrape {on}{instance} (it says: {error}){why}",
                monitor.name
            ),
            service: None,
            host,
        });
    }
    for (who, instances, error) in dropped {
        let known = stack.hosts.values().any(|h| h.name == who);
        found.insert(
            0,
            Found {
                key: format!("scrapes dropped {who}"),
                words: format!(
                    "Prometheus on {} gets no answer from {who} at {} (it says: {error}): the packets are dropped on the way, as a firewall on {who} does",
                    monitor.name,
                    instances.join(", ")
                ),
                service: Some("iptables".into()),
                host: known.then_some(who),
            },
        );
    }
    found
}

/// The host of the run whose address `instance` (`10.1.2.3:9100`) is.
fn host_at(stack: &Stack, instance: &str) -> Option<String> {
    let addr = instance.rsplit_once(':').map_or(instance, |(a, _)| a);
    stack
        .hosts
        .values()
        .find(|h| h.addrs.values().any(|a| a.to_string() == addr))
        .map(|h| h.name.clone())
}

/// The site's PHP page answered with its source: the web server passes
/// no `.php` file to PHP-FPM.
async fn php_source(stack: &Stack) -> Vec<Found> {
    if stack.hosts_running("php-fpm").is_empty() {
        return Vec::new();
    }
    for scheme in ["http", "https"] {
        let url = format!("{scheme}://{WWW}/index.php");
        let Ok(answer) = stack.client.fresh.get(&url).send().await else {
            continue;
        };
        let Ok(body) = answer.text().await else {
            continue;
        };
        if body.contains("<?php") {
            let web = ["nginx", "apache"]
                .into_iter()
                .find(|s| !stack.hosts_running(s).is_empty());
            return vec![Found {
                key: "php source".into(),
                words: format!(
                    "the site sends PHP source as text (GET {url} answered `{}`): the web server passes no .php file to PHP-FPM",
                    body.lines().next().unwrap_or("").trim()
                ),
                host: None,
                service: web.map(str::to_string),
            }];
        }
    }
    Vec::new()
}

/// A MariaDB that listens on loopback only while another host needs it
/// (an app server elsewhere, a replica), as its own socket table shows.
async fn database_on_loopback(stack: &Stack) -> Vec<Found> {
    let mut found = Vec::new();
    let needing: Vec<&str> = ["php-fpm", "mariadb-replica"]
        .iter()
        .flat_map(|s| stack.hosts_running(s))
        .map(|h| h.name.as_str())
        .collect();
    for service in ["mariadb", "mariadb-primary", "mariadb-replica"] {
        for host in stack.hosts_running(service) {
            if !needing.iter().any(|n| *n != host.name) {
                continue;
            }
            let Ok(listening) = host.run("ss -ltnH 'sport = :3306'").await else {
                continue;
            };
            let local: Vec<&str> = listening
                .lines()
                .filter_map(|l| l.split_whitespace().nth(3))
                .collect();
            let loopback_only = !local.is_empty()
                && local
                    .iter()
                    .all(|a| a.starts_with("127.") || a.starts_with("[::1]"));
            if loopback_only {
                found.push(Found {
                    key: format!("database on loopback {}", host.name),
                    words: format!(
                        "MariaDB on {} listens on {} only (its socket table), so no other host reaches it",
                        host.name,
                        local.join(", ")
                    ),
                    host: Some(host.name.clone()),
                    service: Some("mariadb".into()),
                });
            }
        }
    }
    found
}
