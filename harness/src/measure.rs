//! What the servers themselves count: log lines, status counters, processes.
//! Claims read these rather than anything the app says about itself.

use crate::error::{Error, Result};
use crate::host::Host;

/// Where PHP-FPM writes one line per request it served (see the pool fixture).
pub const FPM_ACCESS_LOG: &str = "/var/log/php-fpm/access.log";
/// Where Nginx writes one line per request (see the nginx fixture).
pub const NGINX_ACCESS_LOG: &str = "/var/log/nginx/access.log";
/// Where Apache writes one line per request.
pub const APACHE_ACCESS_LOG: &str = "/var/log/apache2/access.log";

/// Lines in a log file on `host` (0 when it does not exist yet).
pub async fn log_lines(host: &Host, path: &str) -> Result<u64> {
    let out = host
        .run(&format!(
            "if [ -f {path} ]; then wc -l < {path}; else echo 0; fi"
        ))
        .await?;
    parse_u64(host, path, &out)
}

/// A global status counter of the MariaDB server on `host` (e.g. `Com_select`).
pub async fn mariadb_status(host: &Host, variable: &str) -> Result<u64> {
    let sql = format!("SHOW GLOBAL STATUS LIKE '{variable}'");
    let out = host.run(&format!("mariadb -N -B -e \"{sql}\"")).await?;
    let value = out.split_whitespace().nth(1).unwrap_or("");
    parse_u64(host, variable, value)
}

/// Runs SQL as the database's root on `host`, returning its tab-separated output.
pub async fn mariadb_sql(host: &Host, sql: &str) -> Result<String> {
    let escaped = sql.replace('\\', "\\\\").replace('"', "\\\"");
    host.run(&format!("mariadb -N -B -e \"{escaped}\"")).await
}

fn parse_u64(host: &Host, what: &str, text: &str) -> Result<u64> {
    text.trim().parse().map_err(|_| Error::Exec {
        host: host.name.clone(),
        command: format!("read `{what}`"),
        code: 0,
        output: format!("expected a number, got `{}`", text.trim()),
    })
}

/// The site's URL for `path` over plain HTTP.
pub fn http(path: &str) -> String {
    format!("http://{}{path}", crate::stack::WWW)
}
