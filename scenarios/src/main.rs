//! The `scenario` binary: see the library's `cli` module.

fn main() -> std::process::ExitCode {
    scenarios::cli::main()
}
