//! `.env` files updated with the new key before the old key is retired, end to end against
//! moto: `--env-file` and `iam_keys_env_file`, lossless on the dotenv corpus, 0600, atomic
//! (a symlink kept, a hard link rewritten in place), refused up front when the file is not a
//! regular file or holds another key, and gating retirement like a hook.

use crate::invariants::{current_key, sandbox_with, setup_user, status_of};
use crate::support::cmd::Sandbox;
use crate::support::moto::moto;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const CORPUS_OLD_ID: &str = "AKIAOLDKEY0000000001";
const CORPUS_OLD_SECRET: &str = "oldSecret/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// A corpus file with the corpus key replaced by a real one.
fn corpus(name: &str, id: &str, secret: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dotenv")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap()
        .replace(CORPUS_OLD_ID, id)
        .replace(CORPUS_OLD_SECRET, secret)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn env_files_from_the_corpus_get_the_new_key_and_keep_everything_else() {
    let m = moto();
    for name in [
        "laravel.env",
        "exported.env",
        "crlf-spaced.env",
        "compose.env",
    ] {
        let (user, old, old_secret) = setup_user("env-corpus");
        let sandbox = sandbox_with(&old, &old_secret);
        let env = sandbox.path("project/.env");
        let before = corpus(name, &old, &old_secret);
        write(&env, &before, 0o644);
        let env_arg = env.display().to_string();
        let run = sandbox.iam_keys(&["rotate", "--yes", "--env-file", &env_arg]);
        run.assert_code(0);
        let (new, new_secret) = current_key(&sandbox);
        run.assert_no_secret(&new_secret);
        let after = std::fs::read_to_string(&env).unwrap();
        let mut expected = before.replace(&old, &new).replace(&old_secret, &new_secret);
        if name == "exported.env" {
            expected = expected
                .lines()
                .filter(|l| !l.contains("AWS_SESSION_TOKEN"))
                .map(|l| format!("{l}\n"))
                .collect();
        }
        assert!(
            after == expected,
            "{name}: the file is not the original with the new key"
        );
        assert_eq!(mode(&env), 0o600, "{name}");
        assert_eq!(status_of(&user, &old), "Inactive", "{name}");
        assert!(m.key_works_as(&new, &new_secret, &user), "{name}");
        // Nothing left beside it.
        let names: Vec<_> = std::fs::read_dir(env.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [".env"], "{name}");
    }
}

#[test]
fn the_profile_names_its_env_file_and_a_missing_one_is_created() {
    let (user, old, old_secret) = setup_user("env-profile");
    let sandbox = sandbox_with(&old, &old_secret);
    sandbox.write_config("[default]\nregion = us-east-1\niam_keys_env_file = ~/app/.env\n");
    std::fs::create_dir_all(sandbox.path("app")).unwrap();
    let plan = sandbox.iam_keys(&["rotate", "--dry-run"]);
    plan.assert_code(0);
    plan.assert_stdout_contains(&format!(
        "then env file {} (profile default) gets the new key",
        sandbox.path("app/.env").display()
    ));
    assert!(
        !sandbox.path("app/.env").exists(),
        "a dry run writes nothing"
    );
    sandbox.iam_keys(&["rotate", "--yes"]).assert_code(0);
    let (new, new_secret) = current_key(&sandbox);
    let env = sandbox.path("app/.env");
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        format!("AWS_ACCESS_KEY_ID={new}\nAWS_SECRET_ACCESS_KEY={new_secret}\n")
    );
    assert_eq!(mode(&env), 0o600);
    assert_eq!(status_of(&user, &old), "Inactive");
}

#[test]
fn a_symlinked_env_file_keeps_its_link_and_a_hard_linked_one_its_other_name() {
    let (_, old, old_secret) = setup_user("env-links");
    let sandbox = sandbox_with(&old, &old_secret);
    let real = sandbox.path("dotfiles/app.env");
    write(&real, &corpus("laravel.env", &old, &old_secret), 0o600);
    let link = sandbox.path("app/.env");
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let other_name = sandbox.path("backup.env");
    std::fs::hard_link(&real, &other_name).unwrap();
    let link_arg = link.display().to_string();
    sandbox
        .iam_keys(&["rotate", "--yes", "--env-file", &link_arg])
        .assert_code(0);
    let (new, _) = current_key(&sandbox);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    for path in [&real, &other_name] {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            text.contains(&format!("AWS_ACCESS_KEY_ID={new}\n")),
            "{}",
            path.display()
        );
    }
}

#[test]
fn an_env_file_that_holds_another_key_or_is_not_a_file_is_refused_before_anything_changes() {
    let (user, old, old_secret) = setup_user("env-refused");
    let sandbox = sandbox_with(&old, &old_secret);
    let env = sandbox.path("app/.env");
    let text =
        "# someone else's\nAWS_ACCESS_KEY_ID=AKIASOMEONEELSE00009\nAWS_SECRET_ACCESS_KEY=theirs\n";
    write(&env, text, 0o600);
    let env_arg = env.display().to_string();
    let run = sandbox.iam_keys(&["rotate", "--yes", "--env-file", &env_arg]);
    assert_ne!(run.status, 0, "{run}");
    run.assert_output_contains(&format!(
        "env file {} line 2: AWS_ACCESS_KEY_ID holds another key (AKIA…0009)",
        env.display()
    ));
    assert_eq!(std::fs::read_to_string(&env).unwrap(), text);
    assert_eq!(
        moto().list_keys(&user),
        vec![(old.clone(), "Active".into())]
    );

    let dir = sandbox.path("app").display().to_string();
    let run = sandbox.iam_keys(&["rotate", "--yes", "--env-file", &dir]);
    assert_ne!(run.status, 0, "{run}");
    run.assert_output_contains(&format!("env file {dir} is a directory"));
    assert_eq!(
        moto().list_keys(&user),
        vec![(old.clone(), "Active".into())]
    );
    assert_eq!(current_key(&sandbox).0, old);
}

#[test]
fn an_env_file_that_cannot_be_saved_keeps_the_old_key_active_until_recover() {
    let (user, old, old_secret) = setup_user("env-gate");
    let sandbox = sandbox_with(&old, &old_secret);
    let env: PathBuf = sandbox.path("app/.env");
    write(&env, &format!("AWS_ACCESS_KEY_ID={old}\n"), 0o600);
    // A hook that runs first puts a FIFO where the file was, so the save fails after the
    // preflight checks passed (whoever runs the tests, root included).
    let swap = sandbox.path("swap.sh");
    write(
        &swap,
        &format!(
            "#!/bin/sh\ncat >/dev/null\nrm -f {e}\nmkfifo {e}\n",
            e = env.display()
        ),
        0o755,
    );
    sandbox.write_config(&format!(
        "[default]\nregion = us-east-1\niam_keys_hook = {}\n",
        swap.display()
    ));
    let env_arg = env.display().to_string();
    let run = sandbox.iam_keys(&["rotate", "--yes", "--env-file", &env_arg]);
    run.assert_code(3);
    run.assert_output_contains(&format!(
        "env file {} is a FIFO (named pipe)",
        env.display()
    ));
    assert_eq!(status_of(&user, &old), "Active");
    let (new, new_secret) = current_key(&sandbox);
    // Fixed: recover writes the env file; the hook passed already and does not run again
    // (it would fail now).
    std::fs::remove_file(&env).unwrap();
    write(&env, &format!("AWS_ACCESS_KEY_ID={old}\n"), 0o600);
    write(&swap, "#!/bin/sh\nexit 9\n", 0o755);
    sandbox.iam_keys(&["recover", "--yes"]).assert_code(0);
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        format!("AWS_ACCESS_KEY_ID={new}\nAWS_SECRET_ACCESS_KEY={new_secret}\n")
    );
    assert_eq!(status_of(&user, &old), "Inactive");
}

#[test]
fn one_env_file_for_several_keys_is_refused() {
    let (_, a, a_secret) = setup_user("env-many-a");
    let (_, b, b_secret) = setup_user("env-many-b");
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "[a]\naws_access_key_id = {a}\naws_secret_access_key = {a_secret}\n\
         [b]\naws_access_key_id = {b}\naws_secret_access_key = {b_secret}\n"
    ));
    let env = sandbox.path(".env").display().to_string();
    let run = sandbox.iam_keys(&["rotate", "--all", "--yes", "--env-file", &env]);
    assert_ne!(run.status, 0, "{run}");
    run.assert_output_contains("--env-file names one file for every key of the run, but 2 keys");
    assert_eq!(current_key(&sandbox).0, a);
}
