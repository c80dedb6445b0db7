//! `stackproof`: the command line lives in the library (`stackproof::cli`).

fn main() -> std::process::ExitCode {
    stackproof::cli::main()
}
