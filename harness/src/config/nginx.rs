//! A user's Nginx site file (a `server { }` block, as in
//! `/etc/nginx/sites-available/default`), exactly as it is on their server,
//! mapped onto the design's web hosts: IPv6 listens left out (the run's
//! networks are IPv4), specific listen addresses onto the container's, the
//! PHP-FPM socket onto the design's app server, the document root onto the
//! run's app, the user's domain onto the run's. Every change is one line;
//! an address the run cannot map (a `proxy_pass` to a server of yours)
//! stops the run before anything starts.

use std::path::Path;

use super::{Mapped, mask_secrets};
use crate::error::{Error, Result};

/// Where the run's app and static files are on a web host.
const RUN_ROOT: &str = "/var/www/html";

/// Maps the user's site file `text` (from `file`).
pub fn map(file: &Path, text: &str, domain: Option<&str>, run_domain: &str) -> Result<Mapped> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "site".into());
    let at = |n: usize| format!("{name}:{n}");
    let mut out = Mapped::default();
    if text.lines().any(|l| {
        l.split('#')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with("http {")
            || l.trim() == "http{"
    }) {
        return Err(Error::InvalidFixture {
            path: file.to_path_buf(),
            detail: "this is a whole nginx.conf (it has an `http` block); give the file of your `server { }` block (sites-available/...), which is what is mapped".into(),
        });
    }
    let mut domain = domain.map(str::to_string);
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let code = raw.split('#').next().unwrap_or("");
        let mut line = raw.to_string();
        // Each statement of the line (`location / { proxy_pass ...; }` holds two).
        for statement in code.split(['{', '}', ';']) {
            let words: Vec<&str> = statement.split_whitespace().collect();
            let Some(&first) = words.first() else {
                continue;
            };
            match first {
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
                        return Err(Error::InvalidFixture {
                            path: file.to_path_buf(),
                            detail: format!(
                                "line {n}: TLS on the web server is not mapped yet (the designs terminate TLS at the load balancer)"
                            ),
                        });
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
                "fastcgi_pass" => {
                    let target = words.get(1).copied().unwrap_or("");
                    let to = "{{ php_fpm }}:9000";
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
        lines.push(line);
    }
    let mut mapped = lines.join("\n");
    mapped.push('\n');
    if let Some(d) = domain.filter(|d| d != run_domain) {
        let count = mapped.matches(d.as_str()).count();
        mapped = mapped.replace(d.as_str(), run_domain);
        out.lines.push(format!(
            "domain {d} -> {run_domain} (the run's DNS serves www.{run_domain}; replaced in {count} place(s) of the file)"
        ));
    }
    out.text = mapped;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debian_default_site_is_mapped_line_by_line() {
        let text = "server {\n\tlisten 80 default_server;\n\tlisten [::]:80 default_server;\n\troot /var/www/html;\n\tserver_name www.4211.tech;\n\tlocation ~ \\.php$ {\n\t\tinclude snippets/fastcgi-php.conf;\n\t\tfastcgi_pass unix:/run/php/php7.4-fpm.sock;\n\t}\n}\n";
        let m = map(Path::new("default"), text, None, "foobar.com").unwrap();
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
            None,
            "foobar.com",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("line 2") && e.to_string().contains("never contacts"),
            "{e}"
        );
        assert!(map(Path::new("nginx.conf"), "http {\n}\n", None, "foobar.com").is_err());
    }
}
