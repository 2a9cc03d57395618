//! The `fleet` binary (see the library's `cli` module).

fn main() -> std::process::ExitCode {
    fleet::cli::main()
}
