//! A user's Nginx site file (a `server { }` block, as in
//! `/etc/nginx/sites-available/default`), exactly as it is on their server,
//! mapped onto the design's web hosts: IPv6 listens left out (the run's
//! networks are IPv4), specific listen addresses onto the container's, the
//! PHP-FPM socket onto the design's app server, the document root onto the
//! run's app, the user's domain onto the run's, `upstream` servers onto
//! the design's PHP-FPM (an upstream `fastcgi_pass` uses) or its web
//! backends (one `proxy_pass` uses), its TLS files (letsencrypt's or any
//! other path) onto the run's certificate, key and CA. Every change is one line; an address
//! the run cannot map (a `proxy_pass` to a server of yours) stops the run
//! before anything starts.

use std::path::Path;

use super::{Mapped, Target, backends, file_label, mask_secrets};
use crate::error::{Error, Result};

/// Where the run's app and static files are on a web host.
const RUN_ROOT: &str = "/var/www/html";

/// Where the design's PHP-FPM listens, as a mapped line points at it.
const RUN_PHP_FPM: &str = "{{ php_fpm }}:9000";

/// Where the run's TLS files are on a web host (services/nginx/service.toml).
const RUN_TLS_DIR: &str = "/etc/nginx/stackproof-tls";

/// A TLS file a directive names, and what the run gives instead: (the
/// directive, the run's file in [`RUN_TLS_DIR`], what that file is).
const TLS_FILES: &[(&str, &str, &str)] = &[
    (
        "ssl_certificate",
        "www.crt",
        "the run's certificate for its domain",
    ),
    (
        "ssl_certificate_key",
        "www.key",
        "the run's certificate's key",
    ),
    ("ssl_trusted_certificate", "ca.pem", "the run's CA"),
    ("ssl_client_certificate", "ca.pem", "the run's CA"),
    (
        "ssl_dhparam",
        "ffdhe2048.pem",
        "RFC 7919's ffdhe2048 group, as Mozilla's TLS guide has it",
    ),
    (
        "include",
        "options-ssl-nginx.conf",
        "certbot's own options file, as `certbot --nginx` installs it",
    ),
];

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
pub fn map(file: &Path, text: &str, target: &Target) -> Result<Mapped> {
    let mut site = Site::new(file, text, target);
    let mut depth = 0;
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let code = raw.split('#').next().unwrap_or("");
        let mut line = Line {
            n,
            raw,
            code,
            text: raw.to_string(),
        };
        // Each statement of the line (`location / { proxy_pass ...; }` holds two).
        for (statement, at_depth) in statements(code, &mut depth) {
            site.statement(&mut line, &statement, at_depth)?;
        }
        // Upstream blocks hold no blocks: the first `}` closes one.
        if code.contains('}') {
            site.upstream = None;
        }
        lines.push(line.text);
    }
    site.finish(text);
    let Site {
        mut out, domain, ..
    } = site;
    out.text = super::replace_domain(lines.join("\n") + "\n", domain, target.run_domain, &mut out);
    Ok(out)
}

/// One line of the user's file and what the run's file holds for it.
struct Line<'t> {
    n: usize,
    raw: &'t str,
    /// The line without its comment.
    code: &'t str,
    /// The line as the run writes it.
    text: String,
}

/// What the mapping knows while it reads the file.
struct Site<'a> {
    file: &'a Path,
    name: String,
    /// The upstreams a `fastcgi_pass` uses.
    php_upstreams: Vec<String>,
    /// The design's web backends, in order.
    web: Vec<super::Backend>,
    /// (upstream name, servers mapped in it so far) while inside one.
    upstream: Option<(String, usize)>,
    upstream_names: Vec<String>,
    /// A whole nginx.conf, not a site file.
    whole: bool,
    /// The design runs Nginx's exporter beside Nginx.
    exporter: bool,
    /// The user's domain: given, or read from `server_name`.
    domain: Option<String>,
    out: Mapped,
}

impl<'a> Site<'a> {
    fn new(file: &'a Path, text: &str, target: &Target) -> Self {
        // A whole nginx.conf: Nginx's exporter reads the design's local status page.
        let exporter = target.design.spec.hosts.iter().any(|h| {
            h.services.iter().any(|s| s == "nginx")
                && h.services.iter().any(|s| s == "nginx-exporter")
        });
        Site {
            file,
            name: file_label(file),
            php_upstreams: fastcgi_upstreams(text),
            web: backends(target.design),
            upstream: None,
            upstream_names: Vec::new(),
            whole: is_whole(text),
            exporter,
            domain: target.domain.map(str::to_string),
            out: Mapped::default(),
        }
    }

    fn at(&self, n: usize) -> String {
        format!("{}:{n}", self.name)
    }

    /// One statement, at block depth `at_depth`, of `line`.
    fn statement(&mut self, line: &mut Line, statement: &str, at_depth: usize) -> Result<()> {
        let words: Vec<&str> = statement.split_whitespace().collect();
        let Some(&first) = words.first() else {
            return Ok(());
        };
        let second = words.get(1).copied().unwrap_or("");
        match first {
            "http" if self.whole && at_depth == 0 => self.http_block(line),
            "user" if self.whole && at_depth == 0 && second != "www-data" => {
                line.text = line.text.replacen(second, "www-data", 1);
                let mapped = format!(
                    "{}: user {second} -> www-data (no such user on the run's host)",
                    self.at(line.n)
                );
                self.out.lines.push(mapped);
            }
            "upstream" => {
                self.upstream_names.push(second.to_string());
                self.upstream = Some((second.to_string(), 0));
            }
            "server" if self.upstream.is_some() => self.upstream_server(line, statement, second),
            "listen" => self.listen(line, &words)?,
            "root" if second != RUN_ROOT => {
                line.text = line.text.replacen(second, RUN_ROOT, 1);
                let mapped = format!(
                    "{}: root {second} -> {RUN_ROOT} (where the run's app and static files are)",
                    self.at(line.n)
                );
                self.out.lines.push(mapped);
            }
            "fastcgi_pass" if !self.upstream_names.iter().any(|u| u == second) => {
                line.text = line.text.replacen(second, RUN_PHP_FPM, 1);
                let mapped = format!(
                    "{}: fastcgi_pass {second} -> {RUN_PHP_FPM} (the design's PHP-FPM)",
                    self.at(line.n)
                );
                self.out.lines.push(mapped);
            }
            "server_name" if self.domain.is_none() => {
                self.domain = words[1..]
                    .iter()
                    .find(|w| w.contains('.') && !w.starts_with('~'))
                    .map(|w| {
                        w.trim_start_matches("www.")
                            .trim_start_matches('.')
                            .to_string()
                    });
            }
            "proxy_pass" | "uwsgi_pass" | "grpc_pass" => self.proxy_pass(line, first, second)?,
            "access_log" => self.access_log(line, statement, second),
            "include" if second.ends_with("/options-ssl-nginx.conf") => {
                self.tls_file(line, first, second)
            }
            "include" => {}
            _ if TLS_FILES.iter().any(|(d, ..)| *d == first) && !second.contains('$') => {
                self.tls_file(line, first, second)
            }
            _ => {}
        }
        Ok(())
    }

    /// What the claims need of the http block, on its own line so every
    /// line keeps its number.
    fn http_block(&mut self, line: &mut Line) {
        let at = self.at(line.n);
        let mut added = format!(" {RUN_LOG_FORMAT}");
        self.out.additions.push(format!(
            "{at}: `{RUN_LOG_FORMAT}` (the format the claims read {RUN_ACCESS_LOG} in; it changes nothing Nginx serves)"
        ));
        if self.exporter {
            added.push_str(
                " server { listen 127.0.0.1:8080; location = /stub_status { stub_status; } }",
            );
            self.out.additions.push(format!(
                "{at}: a status page on 127.0.0.1:8080 for Nginx's Prometheus exporter (local only)"
            ));
        }
        line.text = line.text.replacen('{', &format!("{{{added}"), 1);
    }

    /// `server ADDR` inside an upstream: the design's PHP-FPM (an upstream
    /// `fastcgi_pass` uses), else its web backends in order.
    fn upstream_server(&mut self, line: &mut Line, statement: &str, addr: &str) {
        let at = self.at(line.n);
        let (u, count) = self.upstream.as_mut().expect("inside an upstream");
        let php =
            self.php_upstreams.contains(u) || addr.starts_with("unix:") || addr.ends_with(":9000");
        let to = if php {
            Some((RUN_PHP_FPM.to_string(), "the design's PHP-FPM".to_string()))
        } else {
            self.web.get(*count).map(|b| {
                let port = addr
                    .rsplit_once(':')
                    .map(|(_, p)| p)
                    .filter(|p| p.parse::<u16>().is_ok())
                    .unwrap_or("80");
                (format!("{}:{port}", b.address), b.host.clone())
            })
        };
        *count += 1;
        match to {
            Some((to, what)) => {
                line.text = line.text.replacen(addr, &to, 1);
                self.out.lines.push(format!(
                    "{at}: upstream {u}: server {addr} -> {to} ({what})"
                ));
            }
            None => {
                let stmt = statement.trim();
                let backends = self.web.len();
                line.text = if line.code.trim().trim_end_matches(';') == stmt {
                    format!(
                        "# stackproof: not mapped, the design has {backends} web backend(s): {}",
                        line.raw
                    )
                } else {
                    // One of several statements on the line: only it goes.
                    line.text.replacen(&format!("{stmt};"), "", 1)
                };
                self.out.lines.push(format!(
                    "{at}: upstream {u}: server {addr} -> not mapped (the design has {backends} web backend(s)); left out"
                ));
            }
        }
    }

    /// `listen`: IPv6 left out, a specific address onto the container's own;
    /// TLS on a web server is refused (the design ends TLS at the balancer).
    fn listen(&mut self, line: &mut Line, words: &[&str]) -> Result<()> {
        let at = self.at(line.n);
        let addr = words.get(1).copied().unwrap_or("");
        if addr.starts_with('[') {
            line.text = format!(
                "# stackproof: IPv6 left out (the run's networks are IPv4): {}",
                line.raw
            );
            self.out.lines.push(format!(
                "{at}: listen {addr} -> left out (the run's networks are IPv4 only)"
            ));
        } else if let Some((host, port)) = addr.rsplit_once(':')
            && host != "*"
            && host != "0.0.0.0"
        {
            line.text = line.text.replacen(addr, port, 1);
            self.out.lines.push(format!(
                "{at}: listen {addr} -> {port} (the container's own addresses)"
            ));
        }
        // `listen 443 ssl` stays: its certificate and key are mapped onto
        // the run's (see `tls_file`), so the site serves HTTPS as the user's does.
        Ok(())
    }

    /// `proxy_pass` to a server that is no upstream of the file: local ones
    /// fail as on the user's server; any other address stops the run.
    fn proxy_pass(&mut self, line: &Line, directive: &str, to: &str) -> Result<()> {
        let upstream_used = self.upstream_names.iter().any(|u| {
            to.split("://")
                .nth(1)
                .unwrap_or(to)
                .split(['/', ':'])
                .next()
                == Some(u.as_str())
        });
        if upstream_used {
            return Ok(());
        }
        let local = to.contains("127.0.0.1") || to.contains("localhost") || to.contains("unix:");
        if !local {
            return Err(Error::InvalidFixture {
                path: self.file.to_path_buf(),
                detail: format!(
                    "line {}: `{}` names a server the run cannot map to any of its hosts, and stackproof never contacts an address of yours",
                    line.n,
                    mask_secrets(line.code.trim())
                ),
            });
        }
        let warning = format!(
            "{}: `{directive} {to}`: nothing of the design listens there, so those requests fail",
            self.at(line.n)
        );
        self.out.warnings.push(warning);
        Ok(())
    }

    /// `access_log`: the claims' log in the claims' format; any other log
    /// or none is a warning (its requests are not counted).
    /// A TLS file of the user's server (a letsencrypt path, their own
    /// certificate): the run's, which its clients trust.
    fn tls_file(&mut self, line: &mut Line, directive: &str, path: &str) {
        let Some((_, file, what)) = TLS_FILES.iter().find(|(d, ..)| *d == directive) else {
            return;
        };
        let to = format!("{RUN_TLS_DIR}/{file}");
        if path == to {
            return;
        }
        line.text = line.text.replacen(path, &to, 1);
        self.out.lines.push(format!(
            "{}: {directive} {path} -> {to} ({what})",
            self.at(line.n)
        ));
    }

    fn access_log(&mut self, line: &mut Line, statement: &str, path: &str) {
        let at = self.at(line.n);
        if path == RUN_ACCESS_LOG {
            // The same requests, in the format the claims read.
            let rest = statement.trim();
            let to = format!("access_log {RUN_ACCESS_LOG} stackproof");
            if rest != to {
                line.text = line.text.replacen(rest, &to, 1);
                self.out.lines.push(format!(
                    "{at}: {rest} -> {to} (the format the claims read; the same requests are logged)"
                ));
            }
        } else if path != "off" {
            self.out.warnings.push(format!(
                "{at}: `access_log {path}`: the claims count requests in {RUN_ACCESS_LOG}; requests logged only here are not counted"
            ));
        } else {
            self.out.warnings.push(format!(
                "{at}: `access_log off`: the web server keeps no count of the requests it serves"
            ));
        }
    }

    /// A whole nginx.conf: where its sites come from, and the design's site
    /// file emptied when the user's file holds its own servers.
    fn finish(&mut self, text: &str) {
        if !self.whole {
            return;
        }
        if let Some(i) = sites_line(text) {
            let line = format!(
                "{}: no server block of its own; its sites come from sites-enabled/, which holds the design's site (give your site file to check your site)",
                self.at(i)
            );
            self.out.lines.push(line);
            return;
        }
        // The design's site file would be served beside the user's servers.
        self.out.files.push((
            "services/nginx/site.conf".into(),
            "# stackproof: the user's nginx.conf holds the whole configuration.\n".into(),
        ));
        if !text.contains("access_log") {
            let warning = format!(
                "{}: no `access_log`: Nginx logs to {RUN_ACCESS_LOG} in its own format; the run reads it in the design's",
                self.name
            );
            self.out.warnings.push(warning);
        }
    }
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
