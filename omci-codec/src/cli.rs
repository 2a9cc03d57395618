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

/// An I/O error in plain words, as a person reads them ("no such file or directory"), without
/// the operating system's error number that the standard library appends ("(os error 2)").
pub fn io_words(e: &std::io::Error) -> String {
    plain(&e.to_string()).to_lowercase()
}

/// `message` with every " (os error N)" taken out: the number is the operating system's, not
/// the person's, and the words before it already say what happened.
pub fn plain(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(" (os error ") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + " (os error ".len()..];
        match tail.find(')') {
            Some(close) if tail[..close].chars().all(|c| c.is_ascii_digit()) => {
                rest = &tail[close + 1..];
            }
            _ => {
                out.push_str(" (os error ");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operating_systems_error_number_is_taken_out() {
        assert_eq!(
            plain("reading x.img: No such file or directory (os error 2)"),
            "reading x.img: No such file or directory"
        );
        assert_eq!(
            plain("a: Permission denied (os error 13); b: Is a directory (os error 21)"),
            "a: Permission denied; b: Is a directory"
        );
        assert_eq!(plain("kept (os error x)"), "kept (os error x)");
        let e = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert!(!io_words(&e).contains("os error"), "{}", io_words(&e));
    }
}
