//! Placeholders a tutorial or a curriculum left in a user's file
//! (`unicast_src_ip <private ip MASTER>`, `server web-01
//! [STUDENT_ID]-web-01:80`, `bind-address = YOUR_SERVER_IP`), found where
//! the server expects a value (an address, a host name, a port, a number)
//! and refused with the file's line: mapped, such a word would become an
//! address the run made up, and every claim would fail far from the cause.
//!
//! Decided per server and per directive: each [`Site`] says where a server
//! takes a value, so the server's own syntax elsewhere (Apache's
//! `<VirtualHost>` and `${APACHE_LOG_DIR}`, Nginx's `$host`, a regex) is
//! never read as one.

/// What a server expects at a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// An address, or a host name that resolves to one.
    Address,
    /// An IP address as digits (keepalived resolves no names), with an
    /// optional `/prefix` or `-last` range.
    IpLiteral,
    /// A whole number (a priority, an id, a port).
    Number,
    /// A word of the server's own (an interface, a state).
    Word,
}

impl Expect {
    fn noun(self) -> &'static str {
        match self {
            Expect::Address => "an address or host name",
            Expect::IpLiteral => "an IP address",
            Expect::Number => "a number",
            Expect::Word => "a value",
        }
    }
}

/// Where a value stands on a directive's line.
#[derive(Debug, Clone, Copy)]
pub(crate) enum At {
    /// The n-th word after the directive (0: the first).
    Arg(usize),
    /// After `key =` (option files) or `key` (keepalived): the rest of the line.
    Rest,
    /// Every line inside a block that this directive opens (`unicast_peer { ... }`).
    Block,
}

/// One place a server takes a value: the directive, where on its line, what.
pub(crate) struct Site {
    directive: &'static str,
    at: At,
    expect: Expect,
}

const fn site(directive: &'static str, at: At, expect: Expect) -> Site {
    Site {
        directive,
        at,
        expect,
    }
}

use At::*;
use Expect::*;

pub(crate) const KEEPALIVED: &[Site] = &[
    site("unicast_src_ip", Rest, IpLiteral),
    site("mcast_src_ip", Rest, IpLiteral),
    site("unicast_peer", Block, IpLiteral),
    site("virtual_ipaddress", Block, IpLiteral),
    site("interface", Rest, Word),
    site("state", Rest, Word),
    site("priority", Rest, Number),
    site("virtual_router_id", Rest, Number),
    site("advert_int", Rest, Number),
];

pub(crate) const HAPROXY: &[Site] = &[
    site("server", Arg(1), Address),
    site("bind", Arg(0), Address),
];

pub(crate) const NGINX: &[Site] = &[
    site("listen", Arg(0), Address),
    site("server_name", Rest, Address),
    // `server` inside an upstream block; a `server {` block has no argument.
    site("server", Arg(0), Address),
    site("proxy_pass", Arg(0), Address),
    site("fastcgi_pass", Arg(0), Address),
];

pub(crate) const APACHE: &[Site] = &[
    site("ServerName", Arg(0), Address),
    site("<VirtualHost", Arg(0), Address),
    site("BalancerMember", Arg(0), Address),
    site("ProxyPass", Arg(1), Address),
];

pub(crate) const MARIADB: &[Site] = &[
    site("bind-address", Rest, Address),
    site("report-host", Rest, Address),
    site("master-host", Rest, Address),
    site("server-id", Rest, Number),
    site("port", Rest, Number),
];

pub(crate) const PHP_FPM: &[Site] = &[site("listen", Rest, Address)];

pub(crate) const IPTABLES: &[Site] = &[
    site("-s", Arg(0), Address),
    site("--source", Arg(0), Address),
    site("-d", Arg(0), Address),
    site("--destination", Arg(0), Address),
    site("--dport", Arg(0), Number),
    site("from", Arg(0), Address),
    site("to", Arg(0), Address),
];

pub(crate) const PROMETHEUS: &[Site] =
    &[site("targets:", Rest, Address), site("-", Arg(0), Address)];

/// A placeholder found: its line, the directive, the value, what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub line: usize,
    pub directive: String,
    pub value: String,
    expect: Expect,
}

impl Found {
    /// One sentence for the user: what, where, and the fix.
    pub fn explain(&self, server: &str) -> String {
        format!(
            "line {}: `{}` is a placeholder where {server} expects {} after `{}`: write the value your server has (stackproof maps your addresses onto the run, so give them as they are)",
            self.line,
            self.value,
            self.expect.noun(),
            self.directive
        )
    }
}

/// The first placeholder in `text`, a file for `server` (the registry's
/// name) whose values stand at `sites`, outside comments.
pub fn find(server: &str, sites: &[Site], text: &str) -> Option<Found> {
    if sites.is_empty() {
        return None;
    }
    let comment: &[char] = match server {
        "keepalived" => &['#', '!'],
        "mariadb" | "php-fpm" => &['#', ';'],
        _ => &['#'],
    };
    // keepalived's own parameters (`$IFACE=eth0`, used as `$IFACE`) are values.
    let defined: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix('$')?.split('=').next())
        .map(|name| name.trim().to_string())
        .collect();
    let mut open_blocks: Vec<Option<&Site>> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let code = raw.split(comment).next().unwrap_or("").trim();
        // An option file's `key = value`, with `_` and `-` alike.
        let code_owned;
        let code = if matches!(server, "mariadb" | "php-fpm") {
            code_owned = code.replacen('=', " = ", 1);
            code_owned.as_str()
        } else {
            code
        };
        let words: Vec<&str> = code.split_whitespace().collect();
        let inside = open_blocks.last().copied().flatten();
        if let Some(site) = inside
            && !code.starts_with('}')
            && !code.is_empty()
        {
            let value = value_from(code);
            if is_placeholder(&value, site.expect, server, &defined) {
                return Some(Found {
                    line: i + 1,
                    directive: site.directive.to_string(),
                    value,
                    expect: site.expect,
                });
            }
        }
        if server == "keepalived" {
            if code.ends_with('{') {
                let name = words.first().copied().unwrap_or("");
                open_blocks.push(
                    sites
                        .iter()
                        .find(|s| matches!(s.at, At::Block) && s.directive == name),
                );
            }
            if code.starts_with('}') {
                open_blocks.pop();
            }
            if inside.is_some() {
                continue;
            }
        }
        for (w, word) in words.iter().enumerate() {
            let key = normalise(word, server);
            let Some(site) = sites
                .iter()
                .find(|s| normalise(s.directive, server) == key && !matches!(s.at, At::Block))
            else {
                continue;
            };
            // Most directives stand first on their line; iptables' and ufw's
            // options, and YAML list items, stand anywhere.
            let anywhere = matches!(server, "iptables" | "prometheus");
            if w != 0 && !anywhere {
                continue;
            }
            let after = &words[w + 1..];
            let value = match site.at {
                At::Rest => {
                    let rest = after.join(" ");
                    let rest = rest.trim_start_matches('=').trim();
                    if rest.starts_with('<') {
                        value_from(rest)
                    } else {
                        rest.trim_end_matches(';').to_string()
                    }
                }
                At::Arg(n) => match after.get(n) {
                    Some(v) if v.starts_with('<') => value_from(&after[n..].join(" ")),
                    Some(v) => clean(v),
                    None => continue,
                },
                At::Block => continue,
            };
            if value.is_empty() || value == "{" {
                continue;
            }
            for one in split_list(&value, server) {
                if is_placeholder(&one, site.expect, server, &defined) {
                    return Some(Found {
                        line: i + 1,
                        directive: site.directive.trim_start_matches('<').to_string(),
                        value: one,
                        expect: site.expect,
                    });
                }
            }
        }
    }
    None
}

/// Option files treat `-` and `_` alike; Apache's directives are any case.
fn normalise(word: &str, server: &str) -> String {
    match server {
        "mariadb" => word.replace('_', "-"),
        "apache" => word.to_ascii_lowercase(),
        _ => word.to_string(),
    }
}

/// The value at the start of `rest`: an angle-bracketed placeholder whole
/// (`<PRIVATE IP FROM MASTER>`), else the first word.
fn value_from(rest: &str) -> String {
    let rest = rest.trim();
    if rest.starts_with('<')
        && let Some(end) = rest.find('>')
    {
        // `<<ip1>>`: both closing brackets.
        let end = rest[end..]
            .find(|c| c != '>')
            .map_or(rest.len(), |k| end + k);
        return rest[..end].to_string();
    }
    clean(rest.split_whitespace().next().unwrap_or(""))
}

/// A value without what surrounds it on its line: `;`, quotes, a YAML
/// list's brackets and commas, Apache's closing `>`, a URL's scheme and path.
fn clean(word: &str) -> String {
    let mut w = word.trim_end_matches([';', ',']).trim_matches(['"', '\'']);
    // A YAML list's bracket, not a bracket pair of the value's own.
    if w.starts_with('[') && !w.contains(']') {
        w = &w[1..];
    }
    if w.ends_with(']') && !w.contains('[') {
        w = &w[..w.len() - 1];
    }
    let w = w.trim_matches(['"', '\'']);
    let w = w.split_once("://").map_or(w, |(_, rest)| rest);
    let w = w.split('/').next().unwrap_or(w);
    w.trim_end_matches('>').to_string()
}

/// A value that is a list for this server (`server_name a b`, YAML
/// `['a', 'b']`) as its items; any other value whole.
fn split_list(value: &str, server: &str) -> Vec<String> {
    if !matches!(server, "prometheus" | "nginx") || value.starts_with('<') {
        return vec![value.to_string()];
    }
    // A YAML flow list: `['a:9100', 'b:9100']`.
    let value = value.trim();
    let value = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    value
        .split([',', ' '])
        .map(clean)
        .filter(|v| !v.is_empty())
        .collect()
}

/// Whether `value`, where `server` expects `expect`, is plainly not a value.
fn is_placeholder(value: &str, expect: Expect, server: &str, defined: &[String]) -> bool {
    let v = value.trim();
    if v.is_empty() {
        return false;
    }
    // `<words>`, `<<ip1>>`: no server here takes angle brackets in a value.
    if v.contains('<') || v.contains('>') {
        return true;
    }
    // `[STUDENT_ID]-web-01`; an IPv6 address in brackets (`[::1]:80`) is a value.
    if let Some(start) = v.find('[')
        && let Some(len) = v[start..].find(']')
    {
        let inside = &v[start + 1..start + len];
        if !inside
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return true;
        }
    }
    // `${SERVER_IP}`, `$MASTER_IP`: a shell's variable nobody expanded. Nginx
    // and Apache expand their own; keepalived's own parameters are defined
    // in the file (`$IFACE=eth0`).
    if let Some(pos) = v.find('$') {
        let name: String = v[pos + 1..]
            .trim_start_matches('{')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let servers_own = match server {
            "nginx" | "apache" => true,
            "keepalived" => defined.contains(&name),
            _ => false,
        };
        if !servers_own && !name.is_empty() {
            return true;
        }
    }
    let words: Vec<String> = v
        .split(['.', '-', '_', ':', ' '])
        .map(str::to_ascii_lowercase)
        .collect();
    const FILLER: &[&str] = &[
        "your",
        "yours",
        "changeme",
        "placeholder",
        "todo",
        "tbd",
        "replace",
        "insert",
        "example_ip",
    ];
    if words.iter().any(|w| FILLER.contains(&w.as_str())) {
        return true;
    }
    match expect {
        Expect::Address => is_address_placeholder(v, &words),
        // keepalived takes digits only: `VIP`, `my_ip`, `HOST2_IP` stand for one.
        Expect::IpLiteral => {
            let first = v.split_whitespace().next().unwrap_or(v);
            !first
                .chars()
                .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '/' | '-'))
                || !first.chars().any(|c| c.is_ascii_digit())
        }
        // keepalived's numbers are numbers (`priority LEVEL` is a slot to
        // fill); elsewhere only `x`, `N`, `XX` stand for one.
        Expect::Number if server == "keepalived" => v.parse::<f64>().is_err(),
        Expect::Number => {
            let lower = v.to_ascii_lowercase();
            !lower.is_empty() && lower.chars().all(|c| c == 'x' || c == 'n')
        }
        Expect::Word => false,
    }
}

/// `x.x.x.x`, `192.168.1.X`, `a.b.c.d`, `SERVER_IP`, `web01_ip`; never a
/// real name (`web-01`, `ip-172-31-5-9.ec2.internal`, `db.example.com`).
fn is_address_placeholder(v: &str, words: &[String]) -> bool {
    let host = v.split(':').next().unwrap_or(v);
    let host = host.split('/').next().unwrap_or(host);
    let octets: Vec<&str> = host.split('.').collect();
    if octets.len() == 4 {
        let xs = octets
            .iter()
            .filter(|o| !o.is_empty() && o.chars().all(|c| c == 'x' || c == 'X'))
            .count();
        let digits = octets
            .iter()
            .filter(|o| !o.is_empty() && o.chars().all(|c| c.is_ascii_digit()))
            .count();
        if xs > 0 && xs + digits == 4 {
            return true;
        }
        if host.eq_ignore_ascii_case("a.b.c.d") {
            return true;
        }
    }
    // A name that calls itself an IP or an address is no host name
    // (`MASTER_IP`, `IP_ADDRESS`, `lb1-ip`), unless it is one of the
    // names clouds give by address (`ip-172-31-5-9`).
    let numbers = words
        .iter()
        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit()))
        .count();
    words
        .iter()
        .any(|w| matches!(w.as_str(), "ip" | "ipv4" | "addr" | "address"))
        && numbers < 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(server: &str, text: &str) -> Option<(usize, String)> {
        in_file(server, text).map(|f| (f.line, f.value))
    }

    /// `find` with the registry's sites for `server`.
    pub(super) fn in_file(server: &str, text: &str) -> Option<Found> {
        let sites = crate::config::registry::server(server).unwrap().value_sites;
        find(server, sites, text)
    }

    #[test]
    fn tutorials_placeholders_are_found_with_their_line() {
        let ka = "vrrp_instance VI_1 {\n    interface eth0\n    unicast_src_ip <PRIVATE IP FROM MASTER INSTANCE>\n    unicast_peer {\n        <PRIVATE IP FROM BACKUP INSTANCE>\n    }\n}\n";
        assert_eq!(
            refused("keepalived", ka),
            Some((3, "<PRIVATE IP FROM MASTER INSTANCE>".into()))
        );
        let ka = "vrrp_instance VI_1 {\n  unicast_src_ip 10.0.0.2\n  unicast_peer {\n    <<ip2>>\n  }\n}\n";
        assert_eq!(refused("keepalived", ka), Some((4, "<<ip2>>".into())));
        let ka = "vrrp_instance VI_1 {\n  priority <100 if owner, 90 otherwise>\n}\n";
        assert_eq!(refused("keepalived", ka).map(|f| f.0), Some(2));
        // keepalived resolves no names: a word where an address goes is a slot.
        let ka = "vrrp_instance VI_1 {\n    priority LEVEL\n}\n";
        assert_eq!(refused("keepalived", ka), Some((2, "LEVEL".into())));
        let ka = "vrrp_instance VI_1 {\n    mcast_src_ip my_ip\n    virtual_ipaddress {\n        VIP\n    }\n}\n";
        assert_eq!(refused("keepalived", ka), Some((2, "my_ip".into())));
        let ka = "vrrp_instance VI_1 {\n    unicast_peer {\n        HOST2_IP\n    }\n    virtual_ipaddress {\n        VIP\n    }\n}\n";
        assert_eq!(refused("keepalived", ka), Some((3, "HOST2_IP".into())));
        let ka = "vrrp_instance VI_1 {\n    virtual_ipaddress {\n        VIP\n    }\n}\n";
        assert_eq!(refused("keepalived", ka), Some((3, "VIP".into())));
        let ha =
            "backend b\n    balance roundrobin\n    server web-01 [STUDENT_ID]-web-01:80 check\n";
        assert_eq!(
            refused("haproxy", ha),
            Some((3, "[STUDENT_ID]-web-01:80".into()))
        );
        for value in [
            "YOUR_SERVER_IP",
            "your_database_IP",
            "Your-Master-IP",
            "your.fixed.ip.address",
            "x.x.x.x",
            "192.168.1.X",
            "${DB_HOST}",
        ] {
            let my = format!("[mysqld]\nserver-id = 1\nbind-address = {value}\n");
            assert_eq!(refused("mariadb", &my), Some((3, value.into())), "{value}");
        }
        let ufw = "ufw allow from SERVER_IP to any port 3306\n";
        assert_eq!(refused("iptables", ufw), Some((1, "SERVER_IP".into())));
        let prom = "scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['web-01:9100', 'YOUR_IP:9100']\n";
        assert_eq!(
            refused("prometheus", prom),
            Some((4, "YOUR_IP:9100".into()))
        );
        let nginx = "server {\n    listen 80;\n    server_name your_domain www.your_domain;\n}\n";
        assert_eq!(refused("nginx", nginx), Some((3, "your_domain".into())));
    }

    #[test]
    fn the_servers_own_syntax_and_real_names_are_values() {
        for (server, text) in [
            (
                "apache",
                "<VirtualHost *:80>\n    ServerName www.foobar.com\n    ErrorLog ${APACHE_LOG_DIR}/error.log\n</VirtualHost>\n",
            ),
            (
                "nginx",
                "upstream app { server 10.0.0.5:9000; server app-1:9000; }\nserver {\n    listen [::]:80;\n    server_name _;\n    location ~ ^/(?<path>.*)$ { proxy_pass http://$host; }\n}\n",
            ),
            (
                "keepalived",
                "$IFACE=eth0\nvrrp_instance VI_1 {\n    interface $IFACE\n    state MASTER\n    priority 101\n    unicast_src_ip 192.168.0.91/24\n    unicast_peer {\n        192.168.0.92\n    }\n    virtual_ipaddress {\n        192.168.0.100/24 dev eth0 label eth0:1\n    }\n}\n",
            ),
            (
                "haproxy",
                "frontend f\n    bind *:80\n    bind :::443 v4v6 ssl crt /etc/ssl/x.pem\nbackend b\n    server web-01 ip-172-31-5-9.ec2.internal:80 check\n    server web-02 10.0.0.6:80 check\n",
            ),
            (
                "mariadb",
                "[mysqld]\nbind-address = 0.0.0.0\nserver_id = 1\n# bind-address = YOUR_IP\n",
            ),
            (
                "iptables",
                "-A INPUT -s 10.0.0.0/16 -p tcp --dport 3306 -j ACCEPT\nufw allow from 10.0.0.5 to any port 22\n",
            ),
        ] {
            assert_eq!(in_file(server, text), None, "{server}:\n{text}");
        }
    }
}

#[cfg(test)]
mod field {
    /// The field-style files of `tests/configs/` hold real values, none a
    /// placeholder, except those named for one.
    #[test]
    fn no_field_file_is_taken_for_a_placeholder() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs");
        let mut wrong = Vec::new();
        for server in std::fs::read_dir(&root).unwrap().flatten() {
            let name = server.file_name().to_string_lossy().into_owned();
            // `scripts/` holds install scripts, not one server's files.
            if crate::config::registry::server(&name).is_none() {
                continue;
            }
            for file in std::fs::read_dir(server.path()).unwrap().flatten() {
                let path = file.path();
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                let named = path.to_string_lossy().contains("placeholder");
                // An unrendered template is refused as one before this is asked.
                if path.to_string_lossy().contains("template") {
                    continue;
                }
                let found = super::tests::in_file(&name, &text);
                if found.is_some() != named {
                    wrong.push(format!("{}: {found:?}", path.display()));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
