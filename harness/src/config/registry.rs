//! Every server a user can bring with `--config SERVER=FILE`, one entry
//! each: its name, the library's services that run it, the file its
//! mapping replaces, where an install script writes it, the names `grade`
//! finds it by, how its content is recognised, the designs the fuzzer maps
//! it onto, and its mapper. Adding a server is one entry here and its
//! mapper module; nothing else lists the servers.

use super::{
    ConfigArg, Mapped, Target, apache, backends, haproxy, iptables, keepalived, mariadb, nginx,
    php_fpm, placeholders, prometheus,
};
use crate::error::Result;

/// What a mapper is given: the argument, the file's text, what it knows of
/// the run, the service it is mapped for, and every (host, service) of the
/// group that gets this copy.
pub(crate) struct MapInput<'a> {
    pub arg: &'a ConfigArg,
    pub text: &'a str,
    pub target: &'a Target<'a>,
    pub service: &'a str,
    pub group: &'a [(&'a str, &'a str)],
}

/// A file's lines for recognising its server by content: trimmed, without
/// `#` comments.
pub(crate) struct Sniffed<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Sniffed<'a> {
    pub fn new(text: &'a str) -> Self {
        Sniffed {
            lines: text
                .lines()
                .map(str::trim)
                .filter(|l| !l.starts_with('#'))
                .collect(),
        }
    }

    /// Whether a line starts with `word`.
    fn starts(&self, word: &str) -> bool {
        self.lines.iter().any(|l| l.starts_with(word))
    }

    /// Whether a line opens a block in braces (Nginx, Apache, keepalived).
    fn braces(&self) -> bool {
        self.lines.iter().any(|l| l.ends_with('{'))
    }
}

/// One server `--config` takes.
pub(crate) struct Server {
    /// Its name in `--config NAME=FILE` (`haproxy`).
    pub name: &'static str,
    /// How it is named in messages (`HAProxy`).
    pub display: &'static str,
    /// The library's services that run it.
    pub services: &'static [&'static str],
    /// Whether each host gets a copy of its own (its files name the host
    /// itself: keepalived's peers, a firewall's own rules).
    pub per_host: bool,
    /// Where its configuration is read from after an install script ran
    /// (`--script`): a shell glob of the files the server loads (where
    /// Debian's package has them). A site is read where the server reads it,
    /// `sites-enabled/`: a `sed -i` on `sites-enabled/default` replaces the
    /// link to `sites-available/default` with a file of its own, and that
    /// file is the one served. Of several files, the one the script changed
    /// is checked. `None`: a script for it is read, not run.
    pub script_writes: Option<&'static str>,
    /// The names `grade` finds its file by in a submission, first preferred.
    pub file_names: &'static [&'static str],
    /// Whether a file with no telling name is this server's, by content.
    pub sniff: fn(&Sniffed) -> bool,
    /// The designs (and hosts) the fuzzer maps its seeds
    /// (`tests/configs/<name>/`) onto: every design that runs it.
    // Read by the fuzz test only.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fuzz_onto: &'static [(&'static str, Option<&'static str>)],
    /// Where its files take a value (an address, a number), for finding a
    /// tutorial's placeholder there (`unicast_src_ip <private ip>`).
    pub value_sites: &'static [placeholders::Site],
    /// Maps a user's file; returns it and the fixture path it replaces.
    pub map: fn(&MapInput) -> Result<(Mapped, String)>,
}

/// Every server, in the order files are mapped: those that say what an
/// address is (backends, peers, VIPs) before those that only use addresses
/// (a database's bind address, scrape targets, firewall rules).
pub(crate) const SERVERS: &[Server] = &[
    Server {
        name: "haproxy",
        display: "HAProxy",
        services: &["haproxy", "haproxy-tls"],
        per_host: false,
        script_writes: Some("/etc/haproxy/haproxy.cfg"),
        file_names: &["haproxy.cfg"],
        // Blocks in braces are Nginx's, Apache's or keepalived's, never HAProxy's.
        sniff: |s| {
            !s.braces()
                && (s.starts("frontend ") || s.starts("backend ") || s.starts("listen "))
                && (s.starts("bind ") || s.starts("server "))
        },
        fuzz_onto: &[
            ("distributed", None),
            ("secured_monitored", None),
            ("scale_up", None),
        ],
        value_sites: placeholders::HAPROXY,
        map: |m| {
            let t = m.target;
            Ok((
                haproxy::map(
                    &m.arg.path,
                    m.text,
                    &backends(t.design),
                    t.domain,
                    t.run_domain,
                )?,
                format!("services/{}/haproxy.cfg", m.service),
            ))
        },
    },
    Server {
        name: "keepalived",
        display: "keepalived",
        services: &["keepalived"],
        per_host: true,
        script_writes: Some("/etc/keepalived/keepalived.conf"),
        file_names: &["keepalived.conf"],
        sniff: |s| s.starts("vrrp_instance"),
        fuzz_onto: &[("scale_up", Some("lb-1")), ("scale_up", Some("lb-2"))],
        value_sites: placeholders::KEEPALIVED,
        map: |m| {
            Ok((
                keepalived::map(&m.arg.path, m.text, m.target)?,
                "services/keepalived/keepalived.conf".into(),
            ))
        },
    },
    Server {
        name: "nginx",
        display: "Nginx",
        services: &["nginx"],
        per_host: false,
        script_writes: Some(
            "/etc/nginx/sites-enabled/* /etc/nginx/conf.d/*.conf /etc/nginx/nginx.conf",
        ),
        file_names: &[],
        sniff: |_| false,
        fuzz_onto: &[
            ("simple_web_nginx", None),
            ("distributed", None),
            ("scale_up", None),
        ],
        value_sites: placeholders::NGINX,
        map: |m| {
            let file = if nginx::is_whole(m.text) {
                "nginx.conf"
            } else {
                "site.conf"
            };
            Ok((
                nginx::map(&m.arg.path, m.text, m.target)?,
                format!("services/{}/{file}", m.service),
            ))
        },
    },
    Server {
        name: "apache",
        display: "Apache",
        services: &["apache"],
        per_host: false,
        script_writes: Some("/etc/apache2/sites-enabled/*"),
        file_names: &[],
        sniff: |_| false,
        fuzz_onto: &[("simple_web", None)],
        value_sites: placeholders::APACHE,
        map: |m| {
            Ok((
                apache::map(&m.arg.path, m.text, m.target)?,
                "services/apache/site.conf".into(),
            ))
        },
    },
    Server {
        name: "php-fpm",
        display: "PHP-FPM",
        services: &["php-fpm"],
        per_host: false,
        script_writes: Some("/etc/php/*/fpm/pool.d/www.conf"),
        file_names: &["www.conf"],
        sniff: |s| s.starts("pm =") && s.starts("listen ="),
        fuzz_onto: &[
            ("simple_web", None),
            ("distributed", None),
            ("scale_up", None),
        ],
        value_sites: placeholders::PHP_FPM,
        map: |m| {
            Ok((
                php_fpm::map(&m.arg.path, m.text, m.target)?,
                "services/php-fpm/www.conf".into(),
            ))
        },
    },
    Server {
        name: "mariadb",
        display: "MariaDB",
        services: &["mariadb", "mariadb-primary", "mariadb-replica"],
        per_host: false,
        script_writes: Some("/etc/mysql/mariadb.conf.d/50-server.cnf"),
        // One file per server: `my.cnf` when there is no `50-server.cnf`.
        file_names: &["50-server.cnf", "my.cnf"],
        sniff: |s| s.starts("[mysqld]") || s.starts("[mariadb]"),
        fuzz_onto: &[
            ("simple_web", None),
            ("distributed", Some("server-1")),
            ("distributed", Some("server-2")),
        ],
        value_sites: placeholders::MARIADB,
        map: |m| {
            let roles: Vec<&str> = m.group.iter().map(|(_, s)| *s).collect();
            Ok((
                mariadb::map(&m.arg.path, m.text, m.target, &roles)?,
                "services/mariadb/my.cnf".into(),
            ))
        },
    },
    Server {
        name: "prometheus",
        display: "Prometheus",
        services: &["prometheus"],
        per_host: false,
        script_writes: Some("/etc/prometheus/prometheus.yml"),
        file_names: &["prometheus.yml"],
        sniff: |s| s.starts("scrape_configs:"),
        fuzz_onto: &[("secured_monitored", None), ("scale_up", None)],
        value_sites: placeholders::PROMETHEUS,
        map: |m| {
            Ok((
                prometheus::map(&m.arg.path, m.text, m.target)?,
                "services/prometheus/prometheus.yml".into(),
            ))
        },
    },
    Server {
        name: "iptables",
        display: "iptables",
        services: &["firewall-lb", "firewall-server"],
        per_host: true,
        // A firewall script is read as it is (its iptables and ufw commands
        // become the rules), never run.
        script_writes: None,
        file_names: &["rules.v4"],
        sniff: |s| s.starts("*filter") && s.starts("COMMIT"),
        fuzz_onto: &[
            ("secured_monitored", Some("lb-1")),
            ("secured_monitored", Some("server-1")),
        ],
        value_sites: placeholders::IPTABLES,
        map: |m| {
            Ok((
                iptables::map(&m.arg.path, m.text, m.target)?,
                format!("services/{}/rules.v4", m.service),
            ))
        },
    },
];

/// The entry of a server by its `--config` name.
pub(crate) fn server(name: &str) -> Option<&'static Server> {
    SERVERS.iter().find(|s| s.name == name)
}

/// The server whose file `text` is, by its content, if any says so.
pub(crate) fn sniff(text: &str) -> Option<&'static str> {
    let sniffed = Sniffed::new(text);
    SERVERS.iter().find(|s| (s.sniff)(&sniffed)).map(|s| s.name)
}

/// The names of every server, for messages (`haproxy, nginx, ...`).
pub(crate) fn names() -> Vec<&'static str> {
    SERVERS.iter().map(|s| s.name).collect()
}
