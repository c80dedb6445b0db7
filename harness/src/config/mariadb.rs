//! A user's MariaDB server file (`/etc/mysql/mariadb.conf.d/50-server.cnf`,
//! or the `my.cnf` a tutorial had them write), exactly as it is on their
//! database server, read alone as MariaDB's whole configuration
//! (`--defaults-file`): Debian's `50-server.cnf` never fills in what the
//! user left out (its `bind-address = 127.0.0.1` would keep a file without
//! one local); MariaDB's built-in defaults do, as the mapping says. It takes
//! the place of the design's settings and the primary's/replica's role file.
//! The user decides `server-id`, the binary log and `read_only`; the claims
//! then say what those choices do. `bind-address` and `report-host` become
//! the host's own, the database names of replication filters the run's
//! database, paths the package's. What stackproof needs to count (per-user
//! statistics) is printed as an addition.

use std::path::Path;

use super::{Mapped, Target, file_label, is_ipv4, is_local};
use crate::error::Result;

/// The application's database in the run (fixtures/services/mariadb/init.sql).
const RUN_DATABASE: &str = "foobar";

/// Paths the run's package and service definitions use.
const RUN_PATHS: &[(&str, &str)] = &[
    ("datadir", "/var/lib/mysql"),
    ("socket", "/run/mysqld/mysqld.sock"),
    ("pid-file", "/run/mysqld/mysqld.pid"),
];

/// The fixture holding the options mariadbd starts with (see its service.toml).
const START_OPTIONS: &str = "services/mariadb/start-options";
/// Where the mapped file is installed on the host (services/mariadb*/service.toml).
const MAPPED_TARGET: &str = "/etc/mysql/mariadb.conf.d/60-stackproof.cnf";

/// Options of MySQL 8 that MariaDB does not have (it would refuse to
/// start: "unknown variable", seen on MariaDB 10.11): a file written for
/// MySQL keeps its meaning without them.
const MYSQL_ONLY: &[&str] = &[
    "mysqlx-bind-address",
    "mysqlx-port",
    "mysqlx",
    "default-authentication-plugin",
    "gtid-mode",
    "enforce-gtid-consistency",
    "innodb-dedicated-server",
    "log-error-verbosity",
    "log-error-suppression-list",
    "binlog-transaction-dependency-tracking",
    "transaction-write-set-extraction",
    "authentication-policy",
    "disabled-storage-engines",
];

/// MySQL 8 names MariaDB knows by another name (MySQL 8.0.26 renamed
/// `slave` to `replica`; MariaDB 10.11 refuses the new names), and values
/// it lacks: (MySQL's option, its value or "" for any, MariaDB's option,
/// MariaDB's value or "" to keep it, why).
const MYSQL_TO_MARIADB: &[(&str, &str, &str, &str, &str)] = &[
    (
        "log-replica-updates",
        "",
        "log-slave-updates",
        "",
        "MySQL 8's name",
    ),
    (
        "replica-skip-errors",
        "",
        "slave-skip-errors",
        "",
        "MySQL 8's name",
    ),
    (
        "replica-parallel-workers",
        "",
        "slave-parallel-threads",
        "",
        "MySQL 8's name",
    ),
    (
        "replica-net-timeout",
        "",
        "slave-net-timeout",
        "",
        "MySQL 8's name",
    ),
    (
        "super-read-only",
        "",
        "read-only",
        "",
        "MariaDB has no super_read_only; read_only refuses the app's writes as it does",
    ),
    (
        "collation-server",
        "utf8mb4_0900_ai_ci",
        "collation-server",
        "utf8mb4_unicode_ci",
        "MySQL 8's default collation, which this platform's MariaDB does not have (MariaDB has it from 11.4)",
    ),
];

/// Whether the run's MariaDB has MySQL 8's `utf8mb4_0900_*` collations
/// (platforms.toml's `mariadb_mysql8_collations`): then a file's
/// `collation-server = utf8mb4_0900_ai_ci` is kept as the user wrote it.
fn has_mysql8_collations(target: &Target) -> bool {
    target
        .design
        .platform()
        .is_ok_and(|p| p.fact("mariadb_mysql8_collations") == Some("yes"))
}

/// Maps `text` (from `file`) for the hosts whose MariaDB services are `roles`
/// (`mariadb`, `mariadb-primary`, `mariadb-replica`).
pub fn map(file: &Path, text: &str, target: &Target, roles: &[&str]) -> Result<Mapped> {
    let host = target
        .host
        .or(target.running.first().copied())
        .unwrap_or("");
    let mut options = OptionFile {
        name: file_label(file),
        net: target.inner_network(host),
        target,
        out: Mapped::default(),
        server_id: None,
        has_log_error: false,
        sets_bind_address: false,
        includes: Vec::new(),
        mysql8_collations: has_mysql8_collations(target),
    };
    let lines = text
        .lines()
        .enumerate()
        .map(|(i, raw)| options.line(i + 1, raw))
        .collect();
    Ok(options.finish(lines, roles))
}

/// A user's option file being read, and what it set so far.
struct OptionFile<'a> {
    name: String,
    /// The network the hosts' peers reach them on.
    net: String,
    target: &'a Target<'a>,
    out: Mapped,
    server_id: Option<String>,
    has_log_error: bool,
    sets_bind_address: bool,
    /// `!include` lines, as `file:line: !include ...`.
    includes: Vec<String>,
    /// The run's MariaDB has MySQL 8's collations (see [`has_mysql8_collations`]).
    mysql8_collations: bool,
}

impl OptionFile<'_> {
    fn at(&self, n: usize) -> String {
        format!("{}:{n}", self.name)
    }

    /// Line `n` as the run writes it.
    fn line(&mut self, n: usize, raw: &str) -> String {
        let code = raw.split('#').next().unwrap_or("").trim();
        let (key, value) = match code.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (code, ""),
        };
        // Options are written with `-` or `_` alike.
        let key_norm = key.replace('_', "-");
        let at = self.at(n);
        let mut line = raw.to_string();
        let mut set = |to: &str, why: &str, out: &mut Mapped| {
            line = format!("{key} = {to}");
            out.lines
                .push(format!("{at}: {key} = {value} -> {to} ({why})"));
        };
        if matches!(key_norm.as_str(), "bind-address" | "skip-networking") {
            self.sets_bind_address = true;
        }
        if key.starts_with("!include") {
            self.includes.push(format!("{at}: {key}"));
        }
        let renamed = MYSQL_TO_MARIADB.iter().find(|(from, v, ..)| {
            *from == key_norm
                && (v.is_empty() || v.eq_ignore_ascii_case(value))
                && !(self.mysql8_collations && v.starts_with("utf8mb4_0900"))
        });
        let out = &mut self.out;
        match key_norm.as_str() {
            _ if renamed.is_some() => {
                let (_, _, to, to_value, why) = renamed.expect("matched");
                let to_value = if to_value.is_empty() { value } else { to_value };
                // A bare flag (`log_replica_updates`) stays a bare flag.
                let (from, onto) = if code.contains('=') {
                    (format!("{key} = {value}"), format!("{to} = {to_value}"))
                } else {
                    (key.to_string(), to.to_string())
                };
                out.lines.push(format!("{at}: {from} -> {onto} ({why})"));
                return onto;
            }
            k if MYSQL_ONLY.contains(&k) => {
                out.lines.push(format!(
                    "{at}: {key} -> left out (a MySQL 8 option MariaDB does not have; it would refuse to start)"
                ));
                return format!("# stackproof: MySQL 8 only, left out: {raw}");
            }
            "bind-address" if !is_local(value) => match self.target.lookup(value) {
                Some(k) => set(&k.placeholder, &k.what, out),
                None if is_ipv4(value) => set(
                    &format!("{{{{ self.{} }}}}", self.net),
                    "the host's own address",
                    out,
                ),
                None => {}
            },
            "bind-address" if value == "127.0.0.1" && self.target.running.len() > 1 => {
                out.warnings.push(format!(
                    "{at}: `bind-address = 127.0.0.1`: only this host reaches its database, so the other hosts' app and the replica cannot"
                ));
            }
            "report-host" => set("{{ self.name }}", "the host's name", out),
            "server-id" => self.server_id = Some(value.to_string()),
            "log-error" => self.has_log_error = true,
            "user" if value != "mysql" => set("mysql", "the package's user", out),
            "port" if value != "3306" => {
                set("3306", "the port the design's clients connect to", out)
            }
            "binlog-do-db" | "replicate-do-db" | "binlog-ignore-db" | "replicate-ignore-db"
                if value != RUN_DATABASE && !value.is_empty() =>
            {
                set(RUN_DATABASE, "the run's application database", out)
            }
            "skip-networking" => out.warnings.push(format!(
                "{at}: `skip-networking`: no other host reaches this database over the network"
            )),
            k => {
                if let Some((_, to)) = RUN_PATHS.iter().find(|(p, to)| *p == k && value != *to) {
                    set(to, "where the run's package has it", out);
                }
            }
        }
        line
    }

    /// The file as MariaDB's whole configuration, with what the claims
    /// count added at its end, and the design's role files emptied.
    fn finish(mut self, mut lines: Vec<String>, roles: &[&str]) -> Mapped {
        let name = &self.name;
        let out = &mut self.out;
        if roles.contains(&"mariadb-primary") && roles.contains(&"mariadb-replica") {
            out.warnings.push(format!(
                "{name} goes to the primary and the replica alike: both get server-id {}, and a replica refuses a primary with its own id; give each its own file (HOST:mariadb=PATH)",
                self.server_id.as_deref().unwrap_or("1 (the default)")
            ));
        }
        if !self.has_log_error {
            lines.push(
                "# stackproof: the server's own log, where the checklist quotes it from".into(),
            );
            lines.push("[mariadbd]".into());
            lines.push("log-error = /var/log/mysql/error.log".into());
            out.additions.push(
                "log-error = /var/log/mysql/error.log at the end (the checklist quotes the server's log; nothing claims measure)"
                    .into(),
            );
        }
        // The design's role files would override the user's choices: each is
        // replaced by what stackproof needs to count, and nothing else.
        for role in roles.iter().filter(|r| **r != "mariadb") {
            out.files.push((
                format!("services/{role}/role.cnf"),
                "# stackproof: the user's file decides this server's role; this only counts per user.\n[mariadbd]\nuserstat = 1\n".into(),
            ));
        }
        // The user's file is the whole configuration, as theirs is on their
        // server: Debian's files (50-server.cnf's `bind-address = 127.0.0.1`)
        // never fill in what it leaves out; MariaDB's built-in defaults do.
        out.files.push((
            START_OPTIONS.into(),
            format!("--defaults-file={MAPPED_TARGET}\n"),
        ));
        out.lines.push(format!(
            "{name}: read alone, as MariaDB's whole configuration (mariadbd --defaults-file): Debian's my.cnf and mariadb.conf.d/50-server.cnf are not used, so what your file does not set is MariaDB's built-in default{}",
            if self.includes.is_empty() {
                String::new()
            } else {
                format!(" (your file's own {} read as written)", self.includes.join(", "))
            }
        ));
        if !self.sets_bind_address {
            out.lines.push(format!(
                "{name}: no bind-address: MariaDB listens on every address, its built-in default (Debian's 50-server.cnf, not used, says 127.0.0.1)"
            ));
        }
        lines.push("# stackproof: per-user statistics, which the claims count".into());
        lines.push("[mariadbd]".into());
        lines.push("userstat = 1".into());
        out.additions.push("userstat = 1 at the end (per-user statistics: the claims tell the app's queries from replication's; it changes no query)".into());
        out.text = lines.join("\n") + "\n";
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AddressBook;
    use crate::design::Design;

    #[test]
    fn a_tutorial_primary_is_mapped_and_one_file_for_both_is_warned_of() {
        let design = Design::load("distributed").unwrap();
        let book = AddressBook::new();
        let target = crate::config::test_target(
            &design,
            &book,
            Some("server-1"),
            vec!["server-1", "server-2"],
        );
        let text = "[mysqld]\nbind-address = 10.0.0.5\nserver-id = 1\nlog_bin = /var/log/mysql/mysql-bin.log\nbinlog_do_db = tyrell_corp\n";
        let m = map(
            Path::new("50-server.cnf"),
            text,
            &target,
            &["mariadb-primary"],
        )
        .unwrap();
        let all = m.lines.join("\n");
        assert!(
            all.contains("50-server.cnf:2: bind-address = 10.0.0.5 -> {{ self.public }}"),
            "{all}"
        );
        assert!(
            all.contains("binlog_do_db = tyrell_corp -> foobar"),
            "{all}"
        );
        assert_eq!(m.files[0].0, "services/mariadb-primary/role.cnf");
        assert!(
            m.files.iter().any(|(f, text)| f == START_OPTIONS
                && text.contains("--defaults-file=/etc/mysql/mariadb.conf.d/60-stackproof.cnf")),
            "{:?}",
            m.files
        );
        assert!(!all.contains("no bind-address"), "{all}");
        let mysql8 = map(
            Path::new("mysqld.cnf"),
            "[mysqld]\nmysqlx-bind-address = 127.0.0.1\nbind-address = 0.0.0.0\n",
            &target,
            &["mariadb-primary"],
        )
        .unwrap();
        assert!(
            mysql8.lines[0].contains("mysqld.cnf:2: mysqlx-bind-address -> left out"),
            "{:?}",
            mysql8.lines
        );
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        let both = Target {
            host: None,
            ..target
        };
        let m = map(
            Path::new("my.cnf"),
            "[mysqld]\nbind-address = 127.0.0.1\n",
            &both,
            &["mariadb-primary", "mariadb-replica"],
        )
        .unwrap();
        assert_eq!(m.warnings.len(), 2, "{:?}", m.warnings);
        assert!(
            m.warnings[1].contains("server-id 1 (the default)"),
            "{:?}",
            m.warnings
        );
    }
}
