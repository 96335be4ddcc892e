//! Profile-file tests: load errors.

use super::*;

#[test]
fn load_treats_missing_files_as_empty_and_names_bad_ones() {
    let d = Dir::new(None, None);
    let f = d.load();
    assert!(f.profile_names().is_empty());

    fs::create_dir(&d.paths.config).unwrap();
    let err = ProfileFiles::load(&d.paths).unwrap_err();
    assert!(
        matches!(
            err,
            ProfileError::IsDirectory {
                kind: FileKind::Config,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("config"));
    fs::remove_dir(&d.paths.config).unwrap();

    fs::write(&d.paths.credentials, b"[a]\nk = v\nx = \xff\xfe\n").unwrap();
    let err = ProfileFiles::load(&d.paths).unwrap_err().to_string();
    assert!(err.contains("not UTF-8") && err.contains("line 3"), "{err}");
    assert!(
        err.contains(&d.paths.credentials.display().to_string()),
        "{err}"
    );

    fs::write(&d.paths.credentials, "[a]\nk = v\nnot a property\n").unwrap();
    let err = ProfileFiles::load(&d.paths).unwrap_err().to_string();
    assert!(err.contains("line 3: Expected an '=' sign"), "{err}");

    fs::write(
        &d.paths.credentials,
        "\u{feff}[default]\naws_access_key_id = AKIA1\n",
    )
    .unwrap();
    let err = ProfileFiles::load(&d.paths).unwrap_err().to_string();
    assert!(
        err.contains("line 1") && err.contains("byte order mark"),
        "{err}"
    );

    let under_file = FilePaths {
        credentials: d.paths.credentials.join("credentials"),
        config: d.paths.config.clone(),
    };
    let err = ProfileFiles::load(&under_file).unwrap_err();
    assert!(matches!(err, ProfileError::Read { .. }), "{err}");
}
