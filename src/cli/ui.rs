//! Talking to the person at the terminal: results on stdout, warnings and progress on
//! stderr, and yes/no questions when stdin is a terminal.
//!
//! Must not: print a secret. The only secret printer is `render::env_lines`, and it goes
//! through [`Ui::out`] on purpose when the user asked for `--output env`.

use crate::error::Error;
use crate::settings::Settings;
use std::io::{BufRead, IsTerminal, Write};

pub struct Ui {
    color: bool,
    verbose: u8,
    progress: bool,
    quiet: bool,
    live: bool,
    interactive: bool,
}

impl Ui {
    pub fn new(settings: &Settings) -> Ui {
        Ui {
            color: settings.color,
            verbose: settings.verbose,
            progress: !settings.quiet && (std::io::stderr().is_terminal() || settings.verbose > 0),
            quiet: settings.quiet,
            live: settings.live_progress,
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        }
    }

    /// Results, on stdout.
    pub fn out(&self, text: &str) -> Result<(), Error> {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|_| stdout.flush())
            .map_err(|source| Error::Output {
                what: "standard output",
                source,
            })
    }

    /// A warning, on stderr, always shown.
    pub fn warn(&self, text: &str) {
        let label = self.paint("warning:", "33");
        eprintln!("iam-keys: {label} {text}");
    }

    /// A note, on stderr (things the user should know, not problems); not with `--quiet`.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("iam-keys: {text}");
        }
    }

    /// A progress line on stderr, shown on a terminal or with -v.
    pub fn progress(&self, text: &str) {
        if self.progress {
            eprintln!("{}", self.paint(text, "2"));
        }
    }

    /// `--quiet`: results only when something failed.
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// Whether progress lines are shown at all (a terminal or `-v`, and not `--quiet`).
    pub fn shows_progress(&self) -> bool {
        self.progress
    }

    /// Whether progress is redrawn in place (see `Settings::live_progress`).
    pub fn live(&self) -> bool {
        self.live
    }

    pub fn verbose(&self) -> u8 {
        self.verbose
    }

    pub fn is_interactive(&self) -> bool {
        self.interactive
    }

    /// Colour a fragment for stderr when colour is on.
    pub fn paint(&self, text: &str, sgr: &str) -> String {
        if self.color {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Ask a yes/no question on the terminal; `false` on anything but y/yes.
    pub fn confirm(&self, question: &str) -> bool {
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() {
            return false;
        }
        matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
    }

    /// Ask for a line of input on the terminal (an MFA code), without echo handling: codes
    /// are one-time values, and a terminal prompt is what the AWS CLI does too.
    pub fn ask(&self, prompt: &str) -> Option<String> {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).ok()?;
        Some(answer.trim().to_string())
    }
}
