//! simple_web_nginx: the curriculum's variant of the first design (Nginx,
//! PHP-FPM and MariaDB on one server), written as files only in
//! `fixtures/designs/simple_web_nginx/`: every claim against real
//! containers, and every mutant failing the claim it names.

fn main() -> std::process::ExitCode {
    stackproof::Suite::new("simple_web_nginx").run()
}
