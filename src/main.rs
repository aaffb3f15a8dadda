//! The `failover` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    failover::cli::run()
}
