//! A user's Apache site file (`/etc/apache2/sites-available/000-default.conf`),
//! exactly as it is on their server, mapped onto the design's Apache hosts:
//! a specific `<VirtualHost ADDR:PORT>` onto every address of the container,
//! `DocumentRoot` onto the run's app, PHP handed to PHP-FPM (a socket, or
//! an address) onto the design's PHP-FPM, the user's domain onto the run's,
//! a TLS site's files (letsencrypt's or any other) onto the run's
//! certificate, key and CA, with mod_ssl loaded as `a2enmod ssl` would.
//! A proxy to a server of the user's stops the run (never contacted).

use std::path::Path;

use super::{Mapped, Target, file_label, mask_secrets};
use crate::error::{Error, Result};

/// Where the run's app and static files are.
const RUN_ROOT: &str = "/var/www/html";

/// The design's PHP-FPM, as Apache's proxy handler names it.
const RUN_FCGI: &str = "fcgi://{{ php_fpm }}:9000";

/// Where the run's TLS files are on an Apache host (services/apache/service.toml).
const RUN_TLS_DIR: &str = "/etc/apache2/stackproof-tls";

/// A TLS file a directive names (lowercase), the run's file in
/// [`RUN_TLS_DIR`] instead, and what that file is.
const TLS_FILES: &[(&str, &str, &str)] = &[
    (
        "sslcertificatefile",
        "www.crt",
        "the run's certificate for its domain",
    ),
    (
        "sslcertificatekeyfile",
        "www.key",
        "the run's certificate's key",
    ),
    ("sslcertificatechainfile", "ca.pem", "the run's CA"),
    ("sslcacertificatefile", "ca.pem", "the run's CA"),
];

/// The library's file a TLS site replaces: mod_ssl loaded (as `a2enmod
/// ssl` does) and port 443 listened on (as Debian's ports.conf does once
/// it is), since conf-enabled/ comes after ports.conf.
const TLS_CONF: &str = "services/apache/tls.conf";
const TLS_CONF_ON: &str =
    "# stackproof: the user's site terminates TLS: mod_ssl, as `a2enmod ssl` loads it.
<IfModule !socache_shmcb_module>
    LoadModule socache_shmcb_module /usr/lib/apache2/modules/mod_socache_shmcb.so
</IfModule>
<IfModule !ssl_module>
    LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so
</IfModule>
Listen 443
";

/// Maps `text` (from `file`).
pub fn map(file: &Path, text: &str, target: &Target) -> Result<Mapped> {
    let name = file_label(file);
    let at = |n: usize| format!("{name}:{n}");
    let mut out = Mapped::default();
    let mut domain = target.domain.map(str::to_string);
    let mut lines = Vec::new();
    // The first line that needs mod_ssl, and whether the file listens itself.
    let mut tls_at: Option<usize> = None;
    let mut listens_443 = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let code = raw.split('#').next().unwrap_or("").trim();
        let words: Vec<&str> = code.split_whitespace().collect();
        let mut line = raw.to_string();
        let first = words.first().copied().unwrap_or("").to_ascii_lowercase();
        match first.as_str() {
            "<virtualhost" => {
                let addr = words.get(1).copied().unwrap_or("").trim_end_matches('>');
                if let Some((host, port)) = addr.rsplit_once(':')
                    && host != "*"
                    && host != "_default_"
                {
                    line = line.replacen(addr, &format!("*:{port}"), 1);
                    out.lines.push(format!(
                        "{}: <VirtualHost {addr}> -> *:{port} (the container's own addresses)",
                        at(n)
                    ));
                }
                if addr.ends_with(":443") {
                    tls_at.get_or_insert(n);
                }
            }
            "documentroot" => {
                let dir = words.get(1).copied().unwrap_or("").trim_matches('"');
                if dir != RUN_ROOT {
                    line = line.replacen(dir, RUN_ROOT, 1);
                    out.lines.push(format!(
                        "{}: DocumentRoot {dir} -> {RUN_ROOT} (where the run's app and static files are)",
                        at(n)
                    ));
                }
            }
            "<directory" => {
                let dir = words
                    .get(1)
                    .copied()
                    .unwrap_or("")
                    .trim_end_matches('>')
                    .trim_matches('"');
                if dir.starts_with("/var/www")
                    && dir != RUN_ROOT
                    && !dir.starts_with(&format!("{RUN_ROOT}/"))
                {
                    line = line.replacen(dir, RUN_ROOT, 1);
                    out.lines
                        .push(format!("{}: <Directory {dir}> -> {RUN_ROOT}", at(n)));
                }
            }
            "sethandler" | "proxypassmatch" => {
                // `SetHandler "proxy:unix:/run/php/php8.2-fpm.sock|fcgi://localhost"`,
                // `ProxyPassMatch ^/(.*\.php)$ fcgi://127.0.0.1:9000/var/www/html/$1`.
                let arg = words.last().copied().unwrap_or("").trim_matches('"');
                if let Some(at_fcgi) = arg.find("fcgi://") {
                    let rest = &arg[at_fcgi + "fcgi://".len()..];
                    let host_port = rest.split('/').next().unwrap_or("");
                    let path = &rest[host_port.len()..];
                    let prefix = &arg[..at_fcgi];
                    // `proxy:unix:...|` goes: the design's PHP-FPM is reached over TCP.
                    let prefix = if prefix.starts_with("proxy:unix:") {
                        "proxy:"
                    } else {
                        prefix
                    };
                    let path = path.replacen("/var/www/html", RUN_ROOT, 1);
                    let to = format!("{prefix}{RUN_FCGI}{path}");
                    line = line.replacen(arg, &to, 1);
                    out.lines.push(format!(
                        "{}: {} -> {to} (the design's PHP-FPM)",
                        at(n),
                        mask_secrets(arg)
                    ));
                } else if first == "sethandler" && arg.starts_with("application/x-httpd-php") {
                    out.warnings.push(format!(
                        "{}: `SetHandler {arg}` runs PHP inside Apache (mod_php), which the run's Apache does not have: PHP pages are served as files",
                        at(n)
                    ));
                }
            }
            "proxypass" | "proxypassreverse" => {
                let url = words.get(2).copied().unwrap_or("");
                if !(url.contains("127.0.0.1")
                    || url.contains("localhost")
                    || url.starts_with("fcgi://")
                    || url == "!")
                {
                    return Err(Error::InvalidFixture {
                        path: file.to_path_buf(),
                        detail: format!(
                            "line {n}: `{}` names a server the run cannot map to any of its hosts, and stackproof never contacts an address of yours",
                            mask_secrets(code)
                        ),
                    });
                }
            }
            "servername" | "serveralias" if domain.is_none() => {
                domain = words
                    .get(1)
                    .filter(|w| w.contains('.'))
                    .map(|w| w.trim_start_matches("www.").to_string());
            }
            "sslengine" => {
                tls_at.get_or_insert(n);
            }
            "listen" if words.get(1).is_some_and(|w| w.ends_with("443")) => listens_443 = true,
            "include" | "includeoptional"
                if words
                    .get(1)
                    .is_some_and(|w| w.ends_with("/options-ssl-apache.conf")) =>
            {
                let path = words[1];
                let to = format!("{RUN_TLS_DIR}/options-ssl-apache.conf");
                line = line.replacen(path, &to, 1);
                out.lines.push(format!(
                    "{}: {} {path} -> {to} (certbot's own options file, as `certbot --apache` installs it)",
                    at(n),
                    words[0]
                ));
                tls_at.get_or_insert(n);
            }
            d if TLS_FILES.iter().any(|(t, ..)| *t == d) => {
                let (_, run_file, what) =
                    TLS_FILES.iter().find(|(t, ..)| *t == d).expect("matched");
                let path = words.get(1).copied().unwrap_or("").trim_matches('"');
                let to = format!("{RUN_TLS_DIR}/{run_file}");
                if !path.is_empty() && path != to {
                    line = line.replacen(path, &to, 1);
                    out.lines
                        .push(format!("{}: {} {path} -> {to} ({what})", at(n), words[0]));
                }
                tls_at.get_or_insert(n);
            }
            "customlog" => {
                let path = words.get(1).copied().unwrap_or("");
                if !path.contains("access.log") {
                    out.warnings.push(format!(
                        "{}: `CustomLog {path}`: the claims count requests in /var/log/apache2/access.log; requests logged only here are not counted",
                        at(n)
                    ));
                }
            }
            _ => {}
        }
        lines.push(line);
    }
    if let Some(n) = tls_at {
        let mut conf = TLS_CONF_ON.to_string();
        if listens_443 {
            conf = conf.replace("Listen 443\n", "");
        }
        out.files.push((TLS_CONF.into(), conf));
        out.additions.push(format!(
            "{}: mod_ssl loaded{} (your site terminates TLS from here; `a2enmod ssl` on your server)",
            at(n),
            if listens_443 { "" } else { " and port 443 listened on, as Debian's ports.conf does with it" }
        ));
    }
    out.text = super::replace_domain(lines.join("\n") + "\n", domain, target.run_domain, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AddressBook;
    use crate::design::Design;

    #[test]
    fn a_php_fpm_site_is_mapped_onto_the_run() {
        let design = Design::load("simple_web").unwrap();
        let book = AddressBook::new();
        let target = crate::config::test_target(&design, &book, None, vec!["server-1"]);
        let text = "<VirtualHost 10.0.0.5:80>\n\tServerName www.4211.tech\n\tDocumentRoot /var/www/4211\n\t<FilesMatch \\.php$>\n\t\tSetHandler \"proxy:unix:/run/php/php8.1-fpm.sock|fcgi://localhost\"\n\t</FilesMatch>\n\tCustomLog ${APACHE_LOG_DIR}/access.log combined\n</VirtualHost>\n";
        let m = map(Path::new("000-default.conf"), text, &target).unwrap();
        let all = m.lines.join("\n");
        assert!(all.contains("<VirtualHost 10.0.0.5:80> -> *:80"), "{all}");
        assert!(
            all.contains("DocumentRoot /var/www/4211 -> /var/www/html"),
            "{all}"
        );
        assert!(
            m.text
                .contains("SetHandler \"proxy:fcgi://{{ php_fpm }}:9000\""),
            "{}",
            m.text
        );
        assert!(all.contains("domain 4211.tech -> foobar.com"), "{all}");
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    }
}
