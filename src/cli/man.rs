//! `iam-keys man`: the manual pages, generated from the clap definitions (clap_mangen).
//!
//! `iam-keys man` prints `iam-keys(1)` (every global option and the list of commands);
//! `iam-keys man rotate` prints `iam-keys-rotate(1)`; `iam-keys man --dir DIR` writes every
//! page into DIR (for `MANPATH` or a package).
//!
//! Must not: read the environment, the profile files or the network.

use crate::cli::Cli;
use crate::error::{Error, Outcome};
use clap::{Args, CommandFactory};
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct ManArgs {
    /// A command's own page (iam-keys-COMMAND(1)) instead of iam-keys(1)
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
    /// Write every page (iam-keys.1, iam-keys-COMMAND.1) into this directory instead
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub dir: Option<PathBuf>,
}

/// What the main page says after the options and commands.
const EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
everything done, or nothing due
.TP
\fB1\fR
a rotation failed and nothing changed for it (or was refused); \fBstatus\fR: a key is due or could not be checked
.TP
\fB2\fR
usage or input error: bad option, unreadable or malformed file (the message names file and line), no confirmation
.TP
\fB3\fR
partial: a new key is in place but an old key is still active; run \fBiam\-keys recover\fR
.SH ENVIRONMENT
.TP
\fBAWS_PROFILE\fR, \fBAWS_SHARED_CREDENTIALS_FILE\fR, \fBAWS_CONFIG_FILE\fR, \fBAWS_REGION\fR, \fBAWS_DEFAULT_REGION\fR
as in the AWS CLI
.TP
\fBAWS_ENDPOINT_URL\fR, \fBAWS_ENDPOINT_URL_IAM\fR, \fBAWS_ENDPOINT_URL_STS\fR, \fBAWS_CA_BUNDLE\fR
endpoints and certificate authorities for the AWS calls
.TP
\fBIAM_KEYS_LOG\fR, \fBRUST_LOG\fR
log filter for \fB\-vv\fR (secrets are never logged)
.TP
\fBNO_COLOR\fR
no colour
.SH FILES
.TP
\fI~/.aws/credentials\fR, \fI~/.aws/config\fR
the shared files; on Windows under \fI%USERPROFILE%\\.aws\fR
.TP
\fI.iam\-keys/\fR beside the credentials file
the lock and the recovery journal of an unfinished rotation
"#;

pub fn run(args: &ManArgs) -> Result<Outcome, Error> {
    match &args.dir {
        Some(dir) => {
            let mut list = String::new();
            for path in write_all(dir)? {
                list.push_str(&format!("{}\n", path.display()));
            }
            crate::cli::completions::write_stdout(list.as_bytes())?;
        }
        None => crate::cli::completions::write_stdout(&page(args.command.as_deref())?)?,
    }
    Ok(Outcome::Success)
}

/// Every command, with help generated and the global options propagated, as the pages show it.
fn built_command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

fn man_for(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd).manual("iam-keys manual")
}

/// The roff source of `iam-keys(1)`, or of `iam-keys-COMMAND(1)` for a command.
pub fn page(command: Option<&str>) -> Result<Vec<u8>, Error> {
    let cmd = built_command();
    let mut out = Vec::new();
    let io = |source| Error::Output {
        what: "the man page",
        source,
    };
    match command {
        None => {
            let man = man_for(cmd);
            man.render_title(&mut out).map_err(io)?;
            man.render_name_section(&mut out).map_err(io)?;
            man.render_synopsis_section(&mut out).map_err(io)?;
            man.render_description_section(&mut out).map_err(io)?;
            man.render_options_section(&mut out).map_err(io)?;
            man.render_subcommands_section(&mut out).map_err(io)?;
            out.extend_from_slice(EXIT_STATUS.as_bytes());
            man.render_version_section(&mut out).map_err(io)?;
        }
        Some(name) => {
            let sub = cmd.find_subcommand(name).cloned().ok_or_else(|| {
                let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
                Error::Usage(format!(
                    "no command {name:?}; the commands are: {}",
                    names.join(", ")
                ))
            })?;
            man_for(sub).render(&mut out).map_err(io)?;
        }
    }
    Ok(ascii_roff(&out))
}

/// Non-ASCII characters (the help's `…`) as groff's `\[uXXXX]` escapes, so the page renders
/// the same through `man` (which runs preconv) and plain `groff` (which warns on raw UTF-8).
fn ascii_roff(page: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(page);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    out.into_bytes()
}

/// Write `iam-keys.1` and one `iam-keys-COMMAND.1` per command into `dir`; the paths written.
pub fn write_all(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let write_error = |path: &Path, source: std::io::Error| {
        Error::Usage(format!(
            "cannot write {}: {source}; choose a writable directory with --dir",
            path.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    let cmd = built_command();
    let mut pages = vec![("iam-keys.1".to_string(), page(None)?)];
    for sub in cmd.get_subcommands() {
        let name = sub.get_name();
        pages.push((format!("iam-keys-{name}.1"), page(Some(name))?));
    }
    let mut written = Vec::new();
    for (file, text) in pages {
        let path = dir.join(file);
        std::fs::write(&path, text).map_err(|e| write_error(&path, e))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(command: Option<&str>) -> String {
        String::from_utf8(page(command).unwrap()).unwrap()
    }

    #[test]
    fn main_page_lists_the_commands_global_options_and_exit_codes() {
        let page = text(None);
        assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
        assert!(page.contains(".TH iam-keys 1"), "{page}");
        for word in [
            "iam\\-keys\\-rotate(1)",
            "\\-\\-profile",
            "EXIT STATUS",
            "AWS_PROFILE",
        ] {
            assert!(page.contains(word), "main page lacks {word}");
        }
    }

    #[test]
    fn a_command_page_has_its_own_and_the_global_options() {
        let page = text(Some("rotate"));
        assert!(page.contains(".TH iam-keys-rotate 1"), "{page}");
        assert!(page.contains("\\-\\-dry\\-run"), "{page}");
        assert!(page.contains("\\-\\-profile"), "{page}");
    }

    #[test]
    fn pages_are_ascii_with_groff_escapes_for_the_rest() {
        let page = text(None);
        assert!(page.is_ascii());
        assert!(page.contains("AWS_ACCESS_KEY_ID=\\[u2026]"), "{page}");
    }

    #[test]
    fn an_unknown_command_is_named_with_the_list() {
        let err = page(Some("rotat")).unwrap_err().to_string();
        assert!(
            err.contains("\"rotat\"") && err.contains("rotate, recover"),
            "{err}"
        );
    }

    #[test]
    fn write_all_writes_one_page_per_command() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_all(dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for name in ["iam-keys.1", "iam-keys-rotate.1", "iam-keys-man.1"] {
            assert!(names.contains(&name.to_string()), "{names:?}");
        }
    }
}
