//! Command-line conventions shared by the lab's tools (`omci`, `onu`, `olt`, `scenario`).
//!
//! A usage error is one line on standard error naming the fault (the argument, clap's
//! suggestion, the allowed values) and exit status 2; help and version print as clap renders
//! them and exit 0.

use std::process::ExitCode;

use clap::error::ErrorKind;

/// Parses the command line, or says what is wrong in one line and gives the exit code.
pub fn parse_or_exit<T: clap::Parser>() -> Result<T, ExitCode> {
    T::try_parse().map_err(|e| {
        let cmd = T::command();
        usage_error(cmd.get_name(), &cmd, e)
    })
}

/// Parses `args` (the program name first), or says what is wrong in one line and gives the
/// exit code: for a tool run under another name (`scenario` runs `onu` and `olt` this way).
pub fn parse_from_or_exit<T: clap::Parser>(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<T, ExitCode> {
    T::try_parse_from(args).map_err(|e| {
        let cmd = T::command();
        usage_error(cmd.get_name(), &cmd, e)
    })
}

/// Prints a clap error the lab's way and gives the exit code.
pub fn usage_error(program: &str, cmd: &clap::Command, e: clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let subcommands: Vec<&str> = cmd
                .get_subcommands()
                .map(|s| s.get_name())
                .filter(|n| *n != "help")
                .collect();
            eprintln!(
                "{program}: a subcommand is required: {} (see {program} --help)",
                subcommands.join(", ")
            );
            return ExitCode::from(2);
        }
        _ => {}
    }
    let rendered = e.render().to_string();
    // clap writes the fault, then indented continuation lines (a missing argument's name),
    // tips and allowed values, then a usage block: keep everything before the usage block.
    let line = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.strip_prefix("error: ")
                .unwrap_or(l)
                .trim_start_matches('[')
                .trim_end_matches(']')
        })
        .fold(String::new(), |line, part| match line.as_str() {
            "" => part.to_string(),
            l if l.ends_with(':') => format!("{l} {part}"),
            l => format!("{l}; {part}"),
        });
    eprintln!("{program}: {line} (see {program} --help)");
    ExitCode::from(2)
}
