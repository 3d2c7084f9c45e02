//! Standard output that a closed pipe does not turn into a panic.
//!
//! `println!` panics when standard output is a pipe whose reader has gone
//! (`relent sim | head -3`). [`outln!`] and [`out!`] write the same text, and when the reader
//! has gone the program ends at once with status 141 (128 + SIGPIPE, what a shell reports
//! for a Unix tool that the signal ended); any other write error ends it with status 2 and
//! the error on standard error.

use std::io::{self, Write};

/// Writes `args` to standard output (see the module docs for what a write error does).
pub fn write(args: std::fmt::Arguments<'_>) {
    if let Err(error) = io::stdout().lock().write_fmt(args) {
        end(&error);
    }
}

/// Ends the program after a failed write to standard output.
pub fn end(error: &io::Error) -> ! {
    if error.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(141);
    }
    eprintln!("relent: cannot write to standard output: {error}");
    std::process::exit(2);
}

/// `println!` without the panic on a closed pipe.
macro_rules! outln {
    () => {
        $crate::out::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` without the panic on a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*))
    };
}
