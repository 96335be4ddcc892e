//! `iam-keys completions SHELL`: print a shell completion script generated from the clap
//! definitions (clap_complete), so completions never drift from the real options.
//!
//! Must not: read the environment, the profile files or the network. The script goes to
//! stdout; where each shell wants it is in the README ("Shell completions and man pages").

use crate::cli::Cli;
use crate::error::{Error, Outcome};
use clap::{Args, CommandFactory, ValueEnum};
use clap_complete::Shell;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print a completion script for
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: ShellName,
}

/// The shells clap_complete supports, named as users type them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShellName {
    Bash,
    Zsh,
    Fish,
    #[value(name = "powershell")]
    PowerShell,
    Elvish,
}

impl From<ShellName> for Shell {
    fn from(shell: ShellName) -> Shell {
        match shell {
            ShellName::Bash => Shell::Bash,
            ShellName::Zsh => Shell::Zsh,
            ShellName::Fish => Shell::Fish,
            ShellName::PowerShell => Shell::PowerShell,
            ShellName::Elvish => Shell::Elvish,
        }
    }
}

/// The completion script for `shell`, as bytes to print.
pub fn script(shell: ShellName) -> Vec<u8> {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_string();
    let mut out = Vec::new();
    clap_complete::generate(Shell::from(shell), &mut cmd, name, &mut out);
    if shell == ShellName::Bash {
        out = fix_bash_states(&out);
    }
    out
}

/// clap_complete's bash script spells a hyphenated binary's states two ways: the loop that
/// walks the words sets `iam__keys__subcmd__rotate`, the arms match
/// `iam__subcmd__keys__subcmd__rotate`, so nothing after a command completes
/// (clap-rs/clap#6421, open in clap_complete 4.6.12). Spell the arms as the loop does; a no-op
/// once clap_complete is fixed.
fn fix_bash_states(script: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(script);
    text.replace("iam__subcmd__keys__", "iam__keys__")
        .into_bytes()
}

pub fn run(args: &CompletionsArgs) -> Result<Outcome, Error> {
    write_stdout(&script(args.shell))?;
    Ok(Outcome::Success)
}

/// Write generated text to stdout (no colour, no progress: these commands have no settings).
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|_| stdout.flush())
        .map_err(|source| Error::Output {
            what: "standard output",
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(shell: ShellName) -> String {
        String::from_utf8(script(shell)).expect("completion scripts are UTF-8")
    }

    #[test]
    fn every_shell_gets_a_script_naming_the_commands_and_global_options() {
        for shell in ShellName::value_variants() {
            let script = text(*shell);
            for word in [
                "rotate",
                "status",
                "recover",
                "policy",
                "completions",
                "man",
            ] {
                assert!(script.contains(word), "{shell:?} script lacks {word}");
            }
            assert!(script.contains("profile"), "{shell:?} lacks --profile");
        }
    }

    #[test]
    fn bash_script_registers_a_completion_for_iam_keys() {
        let script = text(ShellName::Bash);
        assert!(script.contains("complete -F _iam__keys"), "{script}");
        // Every state the arms match is one the word loop can set (clap-rs/clap#6421).
        assert!(
            script.contains("        iam__keys__subcmd__rotate)"),
            "{script}"
        );
        assert!(!script.contains("iam__subcmd__keys"), "{script}");
    }
}
