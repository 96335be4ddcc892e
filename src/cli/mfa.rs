//! MFA for accounts whose policies deny key changes without it: which device, the one-time
//! code (a prompt, `--mfa-code`, or `--mfa-command`), and one STS session per device per run.
//!
//! Must not: print or log a code; pass a code to another program's arguments.

use super::ui::Ui;
use crate::aws::{AwsError, Connector, Credentials, Iam, Target};
use crate::secret::Secret;
use clap::Args;
use std::collections::BTreeMap;

/// How long the MFA session lasts: long enough for a slow rotation, short otherwise.
const SESSION_SECONDS: i32 = 3600;

#[derive(Debug, Args, Clone, Default)]
pub struct MfaArgs {
    /// MFA device ARN for the IAM calls (default: the profile's `mfa_serial`)
    #[arg(long, value_name = "ARN")]
    pub mfa_serial: Option<String>,
    /// Use MFA even where no profile names a device: list the user's devices and pick one
    #[arg(long)]
    pub mfa: bool,
    /// The current one-time code (otherwise asked for on the terminal)
    #[arg(long, value_name = "CODE", conflicts_with = "mfa_command")]
    pub mfa_code: Option<String>,
    /// A command that prints the code, e.g. `ykman oath accounts code -s aws`
    #[arg(long, value_name = "COMMAND")]
    pub mfa_command: Option<String>,
}

impl MfaArgs {
    /// Whether the user asked for MFA explicitly.
    pub fn requested(&self) -> bool {
        self.mfa
            || self.mfa_serial.is_some()
            || self.mfa_code.is_some()
            || self.mfa_command.is_some()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    #[error(
        "an MFA code is needed for {serial}, but there is no terminal to ask on: pass --mfa-code or --mfa-command"
    )]
    NoTerminal { serial: String },
    #[error("`{0}` is not an MFA code: codes are six digits")]
    BadCode(String),
    #[error("--mfa-command `{command}` failed: {reason}")]
    Command { command: String, reason: String },
    #[error("--mfa-command `{command}` printed no six-digit code")]
    NoCodeInOutput { command: String },
    #[error("user {user} has no MFA device: add one in IAM, or drop --mfa")]
    NoDevice { user: String },
    #[error(
        "user {user}'s only MFA devices are security keys or passkeys ({serials}), which cannot give a one-time code; add a virtual or hardware TOTP device for the CLI"
    )]
    OnlyU2f { user: String, serials: String },
    #[error("user {user} has several MFA devices ({serials}): pick one with --mfa-serial ARN")]
    Several { user: String, serials: String },
    #[error("{0}")]
    Aws(AwsError),
}

/// Take the first run of exactly six digits from a command's output.
pub fn code_from_output(output: &str) -> Option<String> {
    output
        .split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .map(str::to_string)
}

fn valid_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// The code for a device, from the flag, the command or the terminal.
pub fn code_for(args: &MfaArgs, serial: &str, ui: &Ui) -> Result<Secret, MfaError> {
    if let Some(code) = &args.mfa_code {
        let code = code.trim();
        return if valid_code(code) {
            Ok(Secret::new(code))
        } else {
            Err(MfaError::BadCode(code.to_string()))
        };
    }
    if let Some(command) = &args.mfa_command {
        let output = shell(command)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| MfaError::Command {
                command: command.clone(),
                reason: e.to_string(),
            })?;
        if !output.status.success() {
            return Err(MfaError::Command {
                command: command.clone(),
                reason: format!("exit status {}", output.status),
            });
        }
        let text = String::from_utf8_lossy(&output.stdout);
        return code_from_output(&text)
            .map(Secret::new)
            .ok_or_else(|| MfaError::NoCodeInOutput {
                command: command.clone(),
            });
    }
    if !ui.is_interactive() {
        return Err(MfaError::NoTerminal {
            serial: serial.to_string(),
        });
    }
    for _ in 0..3 {
        let answer = ui
            .ask(&format!("MFA code for {serial}: "))
            .unwrap_or_default();
        if valid_code(&answer) {
            return Ok(Secret::new(answer));
        }
        ui.warn("an MFA code is six digits");
    }
    Err(MfaError::BadCode("(three tries)".into()))
}

/// The command line run by the platform's shell: `sh -c` on Unix; on Windows `cmd /D /S /C`
/// with the line passed verbatim (cmd does not read the MSVC quoting `Command::arg` adds,
/// so a quoted argument such as `powershell -Command "Get-Code 'aws'"` would break; `/S`
/// strips exactly the outer quotes; `/D` skips cmd's AutoRun commands).
fn shell(command: &str) -> std::process::Command {
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        let mut c = std::process::Command::new("cmd");
        c.args(["/D", "/S", "/C"]).raw_arg(format!("\"{command}\""));
        c
    }
    #[cfg(not(windows))]
    {
        let mut c = std::process::Command::new("sh");
        c.arg("-c").arg(command);
        c
    }
}

/// Pick the device for a user: the only one that gives codes, or ask which.
pub async fn pick_device<C: Iam>(client: &C, user: &str, ui: &Ui) -> Result<String, MfaError> {
    let devices = client.list_mfa_devices(user).await.map_err(MfaError::Aws)?;
    if devices.is_empty() {
        return Err(MfaError::NoDevice {
            user: user.to_string(),
        });
    }
    let usable: Vec<_> = devices.iter().filter(|d| d.gives_codes()).collect();
    let list = |v: &[&crate::aws::MfaDevice]| {
        v.iter()
            .map(|d| d.serial.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match usable.as_slice() {
        [] => Err(MfaError::OnlyU2f {
            user: user.to_string(),
            serials: list(&devices.iter().collect::<Vec<_>>()),
        }),
        [one] => Ok(one.serial.clone()),
        several if ui.is_interactive() => {
            for (i, d) in several.iter().enumerate() {
                ui.note(&format!("  {}) {}", i + 1, d.serial));
            }
            let answer = ui.ask("Which MFA device? ").unwrap_or_default();
            answer
                .parse::<usize>()
                .ok()
                .and_then(|n| several.get(n.wrapping_sub(1)))
                .map(|d| d.serial.clone())
                .ok_or_else(|| MfaError::Several {
                    user: user.to_string(),
                    serials: list(several),
                })
        }
        several => Err(MfaError::Several {
            user: user.to_string(),
            serials: list(several),
        }),
    }
}

/// MFA sessions of one run, one per device: a code is asked for once per device.
#[derive(Default)]
pub struct Sessions {
    by_serial: BTreeMap<String, Credentials>,
}

impl Sessions {
    /// The session for `serial`, signed for with `target`'s long-term key.
    pub async fn get<C: Connector>(
        &mut self,
        connector: &C,
        target: &Target,
        serial: &str,
        args: &MfaArgs,
        ui: &Ui,
    ) -> Result<Credentials, MfaError> {
        if let Some(session) = self.by_serial.get(serial) {
            return Ok(session.clone());
        }
        let code = code_for(args, serial, ui)?;
        let client = connector.connect(target);
        let session = client
            .session_token(serial, &code, SESSION_SECONDS)
            .await
            .map_err(MfaError::Aws)?;
        self.by_serial.insert(serial.to_string(), session.clone());
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_six_digit_run_is_the_code() {
        assert_eq!(
            code_from_output("aws:alice  123456\n").as_deref(),
            Some("123456")
        );
        assert_eq!(
            code_from_output("Touch your YubiKey...\n654321").as_deref(),
            Some("654321")
        );
        assert_eq!(code_from_output("2026 1234567 12345"), None);
    }

    /// cmd gets the line as typed: its own quotes and operators work (Windows, under wine
    /// in scripts/windows-check.sh).
    #[cfg(windows)]
    #[test]
    fn a_command_line_reaches_cmd_as_typed() {
        let out = shell(r#"echo "code 123456" & echo done"#).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains(r#""code 123456""#) && text.contains("done"),
            "{text}"
        );
    }

    #[test]
    fn a_code_from_a_command_is_read_from_its_stdout() {
        let ui_args = MfaArgs {
            mfa_command: Some("echo 'account  042042'".into()),
            ..Default::default()
        };
        let settings = crate::settings::Settings::resolve(
            &crate::cli::GlobalArgs {
                profiles: vec![],
                all: false,
                credentials_file: Some("/nonexistent/credentials".into()),
                config_file: Some("/nonexistent/config".into()),
                region: None,
                output: crate::cli::OutputFormat::Text,
                no_color: true,
                verbose: 0,
                quiet: false,
            },
            crate::settings::Env::default(),
        )
        .unwrap();
        let ui = Ui::new(&settings);
        assert_eq!(
            code_for(&ui_args, "arn:aws:iam::1:mfa/a", &ui)
                .unwrap()
                .expose(),
            "042042"
        );
        let bad = MfaArgs {
            mfa_command: Some("echo no code here".into()),
            ..Default::default()
        };
        assert!(matches!(
            code_for(&bad, "arn", &ui),
            Err(MfaError::NoCodeInOutput { .. })
        ));
        let flag = MfaArgs {
            mfa_code: Some("12345".into()),
            ..Default::default()
        };
        assert!(matches!(
            code_for(&flag, "arn", &ui),
            Err(MfaError::BadCode(_))
        ));
    }
}
