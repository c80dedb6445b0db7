//! A user's Nginx site file (a `server { }` block, as in
//! `/etc/nginx/sites-available/default`), exactly as it is on their server,
//! mapped onto the design's web hosts: IPv6 listens left out (the run's
//! networks are IPv4), specific listen addresses onto the container's, the
//! PHP-FPM socket onto the design's app server, the document root onto the
//! run's app, the user's domain onto the run's, `upstream` servers onto
//! the design's PHP-FPM (an upstream `fastcgi_pass` uses) or its web
//! backends (one `proxy_pass` uses). Every change is one line; an address
//! the run cannot map (a `proxy_pass` to a server of yours) stops the run
//! before anything starts.

use std::path::Path;

use super::{Mapped, Target, backends, file_label, mask_secrets};
use crate::error::{Error, Result};

/// Where the run's app and static files are on a web host.
const RUN_ROOT: &str = "/var/www/html";

/// Where the design's PHP-FPM listens, as a mapped line points at it.
const RUN_PHP_FPM: &str = "{{ php_fpm }}:9000";

/// The `upstream` blocks a `fastcgi_pass` uses (the others are web servers
/// a `proxy_pass` uses).
fn fastcgi_upstreams(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let code = l.split('#').next().unwrap_or("");
            let at = code.find("fastcgi_pass")?;
            let target = code[at + "fastcgi_pass".len()..]
                .trim()
                .trim_end_matches([';', '}', ' ']);
            Some(target.to_string())
        })
        .collect()
}

/// The format the claims read the access log in (the design's nginx.conf).
const RUN_LOG_FORMAT: &str =
    "log_format stackproof '$msec $remote_addr \"$request\" $status $request_time';";

/// Where the claims count the requests Nginx served.
const RUN_ACCESS_LOG: &str = "/var/log/nginx/access.log";

/// Whether `text` is a whole nginx.conf (it has an `http` block) rather
/// than a site file: it then replaces the design's nginx.conf.
pub fn is_whole(text: &str) -> bool {
    text.lines().any(|l| {
        let code = l.split('#').next().unwrap_or("").trim_start();
        code.starts_with("http {") || code.starts_with("http{") || code == "http"
    })
}

/// The statements of one line with the block depth each starts at;
/// `depth` is carried from line to line.
fn statements(code: &str, depth: &mut usize) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for ch in code.chars() {
        match ch {
            '{' | ';' => {
                out.push((std::mem::take(&mut current), *depth));
                if ch == '{' {
                    *depth += 1;
                }
            }
            '}' => {
                out.push((std::mem::take(&mut current), *depth));
                *depth = depth.saturating_sub(1);
            }
            c => current.push(c),
        }
    }
    out.push((current, *depth));
    out
}

/// For an nginx.conf with no server block of its own whose sites come
/// from sites-enabled/ (Debian's as it comes): the line number of that
/// `include`. None for a site file or a whole configuration.
pub fn sites_line(text: &str) -> Option<usize> {
    let has_server_block = text.lines().any(|l| {
        let code = l.split('#').next().unwrap_or("").trim_start();
        code.strip_prefix("server")
            .is_some_and(|rest| rest.trim_start().starts_with('{'))
    });
    if has_server_block {
        return None;
    }
    text.lines()
        .position(|l| {
            let code = l.split('#').next().unwrap_or("").trim();
            code.starts_with("include") && code.contains("/etc/nginx/sites-enabled")
        })
        .map(|i| i + 1)
}

/// Maps the user's site file, or whole nginx.conf, `text` (from `file`).
// An arm's inner `if` is not its guard: a directive the arm takes and
// leaves alone must not fall through to the arms after it.
#[allow(clippy::collapsible_match)]
pub fn map(file: &Path, text: &str, target: &Target) -> Result<Mapped> {
    let (domain, run_domain) = (target.domain, target.run_domain);
    let name = file_label(file);
    let at = |n: usize| format!("{name}:{n}");
    let php_upstreams = fastcgi_upstreams(text);
    let web = backends(target.design);
    // (upstream name, servers mapped in it so far) while inside one.
    let mut upstream: Option<(String, usize)> = None;
    let mut upstream_names: Vec<String> = Vec::new();
    let mut out = Mapped::default();
    let whole = is_whole(text);
    // A whole nginx.conf: Nginx's exporter reads the design's local status page.
    let exporter = target.design.spec.hosts.iter().any(|h| {
        h.services.iter().any(|s| s == "nginx") && h.services.iter().any(|s| s == "nginx-exporter")
    });
    let mut depth = 0;
    let mut domain = domain.map(str::to_string);
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let code = raw.split('#').next().unwrap_or("");
        let mut line = raw.to_string();
        // Each statement of the line (`location / { proxy_pass ...; }` holds two).
        for (statement, at_depth) in statements(code, &mut depth) {
            let words: Vec<&str> = statement.split_whitespace().collect();
            let Some(&first) = words.first() else {
                continue;
            };
            match first {
                // What the claims need of the http block, on its own line
                // so every line keeps its number.
                "http" if whole && at_depth == 0 => {
                    let mut added = format!(" {RUN_LOG_FORMAT}");
                    out.additions.push(format!(
                        "{}: `{RUN_LOG_FORMAT}` (the format the claims read {RUN_ACCESS_LOG} in; it changes nothing Nginx serves)",
                        at(n)
                    ));
                    if exporter {
                        added.push_str(" server { listen 127.0.0.1:8080; location = /stub_status { stub_status; } }");
                        out.additions.push(format!(
                            "{}: a status page on 127.0.0.1:8080 for Nginx's Prometheus exporter (local only)",
                            at(n)
                        ));
                    }
                    line = line.replacen('{', &format!("{{{added}"), 1);
                }
                "user" if whole && at_depth == 0 => {
                    let who = words.get(1).copied().unwrap_or("");
                    if who != "www-data" {
                        line = line.replacen(who, "www-data", 1);
                        out.lines.push(format!(
                            "{}: user {who} -> www-data (no such user on the run's host)",
                            at(n)
                        ));
                    }
                }
                "upstream" => {
                    let u = words.get(1).copied().unwrap_or("").to_string();
                    upstream_names.push(u.clone());
                    upstream = Some((u, 0));
                }
                "server" if upstream.is_some() => {
                    let (u, count) = upstream.as_mut().expect("inside an upstream");
                    let addr = words.get(1).copied().unwrap_or("");
                    let php = php_upstreams.contains(u)
                        || addr.starts_with("unix:")
                        || addr.ends_with(":9000");
                    let to = if php {
                        Some((RUN_PHP_FPM.to_string(), "the design's PHP-FPM".to_string()))
                    } else {
                        web.get(*count).map(|b| {
                            let port = addr
                                .rsplit_once(':')
                                .map(|(_, p)| p)
                                .filter(|p| p.parse::<u16>().is_ok())
                                .unwrap_or("80");
                            (format!("{}:{port}", b.address), b.host.clone())
                        })
                    };
                    match to {
                        Some((to, what)) => {
                            line = line.replacen(addr, &to, 1);
                            out.lines.push(format!(
                                "{}: upstream {u}: server {addr} -> {to} ({what})",
                                at(n)
                            ));
                        }
                        None => {
                            let stmt = statement.trim();
                            line = if code.trim().trim_end_matches(';') == stmt {
                                format!(
                                    "# stackproof: not mapped, the design has {} web backend(s): {raw}",
                                    web.len()
                                )
                            } else {
                                // One of several statements on the line: only it goes.
                                line.replacen(&format!("{stmt};"), "", 1)
                            };
                            out.lines.push(format!(
                                "{}: upstream {u}: server {addr} -> not mapped (the design has {} web backend(s)); left out",
                                at(n),
                                web.len()
                            ));
                        }
                    }
                    *count += 1;
                }
                "listen" => {
                    let addr = words.get(1).copied().unwrap_or("");
                    if addr.starts_with('[') {
                        line = format!(
                            "# stackproof: IPv6 left out (the run's networks are IPv4): {raw}"
                        );
                        out.lines.push(format!(
                            "{}: listen {addr} -> left out (the run's networks are IPv4 only)",
                            at(n)
                        ));
                    } else if let Some((host, port)) = addr.rsplit_once(':')
                        && host != "*"
                        && host != "0.0.0.0"
                    {
                        line = line.replacen(addr, port, 1);
                        out.lines.push(format!(
                            "{}: listen {addr} -> {port} (the container's own addresses)",
                            at(n)
                        ));
                    }
                    if words.contains(&"ssl") {
                        return Err(super::tls_on_web_server(file, n));
                    }
                }
                "root" => {
                    let dir = words.get(1).copied().unwrap_or("");
                    if dir != RUN_ROOT {
                        line = line.replacen(dir, RUN_ROOT, 1);
                        out.lines.push(format!(
                        "{}: root {dir} -> {RUN_ROOT} (where the run's app and static files are)",
                        at(n)
                    ));
                    }
                }
                "fastcgi_pass"
                    if !upstream_names
                        .iter()
                        .any(|u| Some(&u.as_str()) == words.get(1)) =>
                {
                    let target = words.get(1).copied().unwrap_or("");
                    let to = RUN_PHP_FPM;
                    line = line.replacen(target, to, 1);
                    out.lines.push(format!(
                        "{}: fastcgi_pass {target} -> {to} (the design's PHP-FPM)",
                        at(n)
                    ));
                }
                "server_name" => {
                    if domain.is_none() {
                        domain = words[1..]
                            .iter()
                            .find(|w| w.contains('.') && !w.starts_with('~'))
                            .map(|w| {
                                w.trim_start_matches("www.")
                                    .trim_start_matches('.')
                                    .to_string()
                            });
                    }
                }
                "proxy_pass" | "uwsgi_pass" | "grpc_pass" => {
                    let target = words.get(1).copied().unwrap_or("");
                    let upstream_used = upstream_names.iter().any(|u| {
                        target
                            .split("://")
                            .nth(1)
                            .unwrap_or(target)
                            .split(['/', ':'])
                            .next()
                            == Some(u.as_str())
                    });
                    if upstream_used {
                        continue;
                    }
                    let local = target.contains("127.0.0.1")
                        || target.contains("localhost")
                        || target.contains("unix:");
                    if !local {
                        return Err(Error::InvalidFixture {
                            path: file.to_path_buf(),
                            detail: format!(
                                "line {n}: `{}` names a server the run cannot map to any of its hosts, and stackproof never contacts an address of yours",
                                mask_secrets(code.trim())
                            ),
                        });
                    }
                    out.warnings.push(format!(
                    "{}: `{first} {target}`: nothing of the design listens there, so those requests fail",
                    at(n)
                ));
                }
                "access_log" if words.get(1) == Some(&RUN_ACCESS_LOG) => {
                    // The same requests, in the format the claims read.
                    let rest = statement.trim();
                    let to = format!("access_log {RUN_ACCESS_LOG} stackproof");
                    if rest != to {
                        line = line.replacen(rest, &to, 1);
                        out.lines.push(format!(
                            "{}: {rest} -> {to} (the format the claims read; the same requests are logged)",
                            at(n)
                        ));
                    }
                }
                "access_log" if words.get(1) != Some(&"off") => {
                    out.warnings.push(format!(
                    "{}: `access_log {}`: the claims count requests in /var/log/nginx/access.log; requests logged only here are not counted",
                    at(n),
                    words.get(1).copied().unwrap_or("")
                ));
                }
                "access_log" => {
                    out.warnings.push(format!(
                    "{}: `access_log off`: the web server keeps no count of the requests it serves",
                    at(n)
                ));
                }
                _ => {}
            }
        }
        // Upstream blocks hold no blocks: the first `}` closes one.
        if code.contains('}') {
            upstream = None;
        }
        lines.push(line);
    }
    if whole && let Some(i) = sites_line(text) {
        out.lines.push(format!(
            "{}: no server block of its own; its sites come from sites-enabled/, which holds the design's site (give your site file to check your site)",
            at(i)
        ));
    } else if whole {
        // The design's site file would be served beside the user's servers.
        out.files.push((
            "services/nginx/site.conf".into(),
            "# stackproof: the user's nginx.conf holds the whole configuration.\n".into(),
        ));
        if !text.contains("access_log") {
            out.warnings.push(format!(
                "{name}: no `access_log`: Nginx logs to {RUN_ACCESS_LOG} in its own format; the run reads it in the design's"
            ));
        }
    }
    out.text = super::replace_domain(lines.join("\n") + "\n", domain, run_domain, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debians_nginx_conf_keeps_the_designs_site_it_includes() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/nginx/debian-nginx.conf");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(is_whole(&text));
        let design = crate::design::Design::load("distributed").unwrap();
        let book = crate::config::AddressBook::new();
        let target = crate::config::test_target(&design, &book, None, vec!["server-1", "server-2"]);
        let m = map(&path, &text, &target).unwrap();
        assert!(
            m.lines
                .iter()
                .any(|l| l.contains("no server block of its own")),
            "{:?}",
            m.lines
        );
        // The design's site stays in sites-enabled/ for the include to find.
        assert!(m.files.is_empty(), "{:?}", m.files);
    }

    #[test]
    fn a_debian_default_site_is_mapped_line_by_line() {
        let text = "server {\n\tlisten 80 default_server;\n\tlisten [::]:80 default_server;\n\troot /var/www/html;\n\tserver_name www.4211.tech;\n\tlocation ~ \\.php$ {\n\t\tinclude snippets/fastcgi-php.conf;\n\t\tfastcgi_pass unix:/run/php/php7.4-fpm.sock;\n\t}\n}\n";
        let design = crate::design::Design::load("simple_web_nginx").unwrap();
        let book = crate::config::AddressBook::new();
        let target = crate::config::test_target(&design, &book, None, vec!["server-1"]);
        let m = map(Path::new("default"), text, &target).unwrap();
        let all = m.lines.join("\n");
        assert!(
            all.contains("default:3: listen [::]:80 -> left out"),
            "{all}"
        );
        assert!(
            all.contains("fastcgi_pass unix:/run/php/php7.4-fpm.sock -> {{ php_fpm }}:9000"),
            "{all}"
        );
        assert!(all.contains("domain 4211.tech -> foobar.com"), "{all}");
        assert_eq!(m.text.lines().count(), text.lines().count());
        let e = map(
            Path::new("x"),
            "server {\n location / { proxy_pass http://54.1.2.3:5000; }\n}\n",
            &target,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("line 2") && e.to_string().contains("never contacts"),
            "{e}"
        );
        // A whole nginx.conf: the http line gains what the claims read, the rest keeps its lines.
        let conf = "user nginx;\nevents { worker_connections 768; }\nhttp {\n  access_log /var/log/nginx/access.log;\n  server {\n    listen 80;\n    root /usr/share/nginx/html;\n  }\n}\n";
        assert!(is_whole(conf) && !is_whole(text));
        let m = map(Path::new("nginx.conf"), conf, &target).unwrap();
        let all = m.lines.join("\n");
        assert!(
            all.contains("nginx.conf:1: user nginx -> www-data"),
            "{all}"
        );
        assert!(all.contains("nginx.conf:4: access_log /var/log/nginx/access.log -> access_log /var/log/nginx/access.log stackproof"), "{all}");
        assert!(
            m.text
                .lines()
                .nth(2)
                .unwrap()
                .starts_with("http { log_format stackproof"),
            "{}",
            m.text
        );
        assert_eq!(m.text.lines().count(), conf.lines().count());
        assert_eq!(m.files[0].0, "services/nginx/site.conf");
        // Upstreams: the one fastcgi_pass uses is PHP-FPM, the one proxy_pass uses the web backends.
        let text = "upstream php-handler {\n  server unix:/var/run/php/php7.4-fpm.sock;\n}\nupstream app { server 10.0.0.5:8080; server 10.0.0.6:8080; }\nserver {\n  location ~ \\.php$ { fastcgi_pass php-handler; }\n  location /api { proxy_pass http://app/; }\n}\n";
        let m = map(Path::new("default"), text, &target).unwrap();
        let all = m.lines.join("\n");
        assert!(
            all.contains("upstream php-handler: server unix:/var/run/php/php7.4-fpm.sock -> {{ php_fpm }}:9000"),
            "{all}"
        );
        assert!(
            all.contains("server 10.0.0.5:8080 -> {{ server-1.public }}:8080 (server-1)"),
            "{all}"
        );
        assert!(all.contains("server 10.0.0.6:8080 -> not mapped"), "{all}");
        assert!(!all.contains("fastcgi_pass php-handler ->"), "{all}");
    }
}
