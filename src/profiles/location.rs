//! Where the two files are: explicit paths, then `AWS_SHARED_CREDENTIALS_FILE` /
//! `AWS_CONFIG_FILE`, then `~/.aws/credentials` / `~/.aws/config`, with `~` expanded the way
//! the AWS SDKs do it (aws-runtime `env_config/source.rs`): only a leading `~/` (and `~\`
//! on Windows); the home directory is `HOME`, then `USERPROFILE`, then `HOMEDRIVE` +
//! `HOMEPATH`.
//!
//! Must not: read the process environment (the caller passes a lookup function, so the
//! environment is read once, elsewhere) or touch the filesystem.

use super::ProfileError;
use std::path::PathBuf;

/// The credentials file and the config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePaths {
    pub credentials: PathBuf,
    pub config: PathBuf,
}

impl FilePaths {
    /// Resolve both paths. An explicit path wins over the environment variable, which wins
    /// over the default under the home directory. Fails only when a path needs the home
    /// directory and none is set.
    pub fn resolve(
        credentials: Option<PathBuf>,
        config: Option<PathBuf>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<FilePaths, ProfileError> {
        let home = home_dir(env);
        let one = |explicit: Option<PathBuf>, var: &'static str, default: &str| {
            let raw = match explicit {
                Some(p) => p,
                None => match env(var).filter(|v| !v.is_empty()) {
                    Some(v) => PathBuf::from(v),
                    None => PathBuf::from(default),
                },
            };
            expand_home(raw, home.as_deref(), var)
        };
        Ok(FilePaths {
            credentials: one(
                credentials,
                "AWS_SHARED_CREDENTIALS_FILE",
                "~/.aws/credentials",
            )?,
            config: one(config, "AWS_CONFIG_FILE", "~/.aws/config")?,
        })
    }
}

/// The home directory from the environment, if any.
pub fn home_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    set("HOME").or_else(|| set("USERPROFILE")).or_else(|| {
        match (set("HOMEDRIVE"), set("HOMEPATH")) {
            (Some(drive), Some(path)) => Some(format!("{drive}{path}")),
            _ => None,
        }
    })
}

fn expand_home(
    path: PathBuf,
    home: Option<&str>,
    var: &'static str,
) -> Result<PathBuf, ProfileError> {
    let Some(text) = path.to_str() else {
        return Ok(path);
    };
    let rest = text
        .strip_prefix("~/")
        .or_else(|| cfg!(windows).then(|| text.strip_prefix("~\\")).flatten());
    match (rest, home) {
        (None, _) if text == "~" => match home {
            Some(h) => Ok(PathBuf::from(h)),
            None => Err(ProfileError::NoHome { path, var }),
        },
        (None, _) => Ok(path),
        (Some(rest), Some(h)) => Ok(join_home(h, rest)),
        (Some(_), None) => Err(ProfileError::NoHome { path, var }),
    }
}

/// `home` and the `/`-separated rest, pushed part by part, so that on Windows the path
/// reads `C:\Users\me\.aws\credentials` in messages, not `C:\Users\me\.aws/credentials`.
fn join_home(home: &str, rest: &str) -> PathBuf {
    let mut path = PathBuf::from(home);
    path.extend(rest.split('/').filter(|part| !part.is_empty()));
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    #[test]
    fn defaults_live_under_home() {
        let p = FilePaths::resolve(None, None, &env(&[("HOME", "/home/u")])).unwrap();
        assert_eq!(p.credentials, PathBuf::from("/home/u/.aws/credentials"));
        assert_eq!(p.config, PathBuf::from("/home/u/.aws/config"));
    }

    #[test]
    fn environment_variables_beat_defaults_and_explicit_paths_beat_both() {
        let e = env(&[
            ("HOME", "/home/u"),
            ("AWS_SHARED_CREDENTIALS_FILE", "~/creds"),
            ("AWS_CONFIG_FILE", "/etc/aws/config"),
        ]);
        let p = FilePaths::resolve(None, None, &e).unwrap();
        assert_eq!(p.credentials, PathBuf::from("/home/u/creds"));
        assert_eq!(p.config, PathBuf::from("/etc/aws/config"));
        let p = FilePaths::resolve(Some("/x/c".into()), Some("rel/cfg".into()), &e).unwrap();
        assert_eq!(p.credentials, PathBuf::from("/x/c"));
        assert_eq!(p.config, PathBuf::from("rel/cfg"));
    }

    #[test]
    fn home_falls_back_to_userprofile_then_drive_and_path() {
        let p = FilePaths::resolve(None, None, &env(&[("USERPROFILE", "/users/w")])).unwrap();
        assert_eq!(p.config, PathBuf::from("/users/w/.aws/config"));
        let e = env(&[("HOMEDRIVE", "C:"), ("HOMEPATH", "/Users/w")]);
        let p = FilePaths::resolve(None, None, &e).unwrap();
        assert_eq!(p.config, PathBuf::from("C:/Users/w/.aws/config"));
    }

    #[cfg(windows)]
    #[test]
    fn windows_paths_read_with_backslashes_only() {
        let e = env(&[
            ("USERPROFILE", r"C:\Users\w"),
            ("AWS_CONFIG_FILE", r"~\cfg\x"),
        ]);
        let p = FilePaths::resolve(None, None, &e).unwrap();
        assert_eq!(p.credentials.to_str(), Some(r"C:\Users\w\.aws\credentials"));
        assert_eq!(p.config.to_str(), Some(r"C:\Users\w\cfg\x"));
    }

    #[test]
    fn tilde_is_expanded_only_as_a_leading_component() {
        let e = env(&[("HOME", "/h"), ("AWS_CONFIG_FILE", "/a/~/b")]);
        let p = FilePaths::resolve(Some("~user/x".into()), None, &e).unwrap();
        assert_eq!(p.credentials, PathBuf::from("~user/x"));
        assert_eq!(p.config, PathBuf::from("/a/~/b"));
    }

    #[test]
    fn a_default_path_without_any_home_is_an_error_naming_the_variable() {
        let err = FilePaths::resolve(None, Some("/c".into()), &env(&[])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("AWS_SHARED_CREDENTIALS_FILE"), "{text}");
        assert!(text.contains("HOME"), "{text}");
        // With explicit absolute paths no home is needed.
        assert!(FilePaths::resolve(Some("/a".into()), Some("/b".into()), &env(&[])).is_ok());
    }
}
