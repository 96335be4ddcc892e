//! Profile-file tests: SDK conformance.

use super::*;

/// The cross-SDK parser cases shipped with aws-runtime 1.10.2 (Apache-2.0, see
/// `tests/fixtures/profiles/NOTICE-profile-parser-tests.md`): our reading must match.
#[test]
fn cross_sdk_parser_conformance_cases() {
    let text = include_str!("../../../tests/fixtures/profiles/profile-parser-tests.json");
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    let tests = json["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 65);
    for case in tests {
        let name = case["name"].as_str().unwrap();
        let config = case["input"]["configFile"].as_str().unwrap_or("");
        let credentials = case["input"]["credentialsFile"].as_str().unwrap_or("");
        let result = ProfileFiles::from_texts(&paths(), credentials, config);
        if let Some(expected) = case["output"]["errorContaining"].as_str() {
            let err = result
                .err()
                .unwrap_or_else(|| panic!("{name}: no error"))
                .to_string();
            assert!(err.contains(expected), "{name}: {err}");
            continue;
        }
        let f = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = case["output"]["config"]["profiles"].as_object().unwrap();
        let mut names = f.profile_names();
        names.sort();
        let mut want: Vec<String> = expected.keys().cloned().collect();
        want.sort();
        assert_eq!(names, want, "{name}");
        for (profile, props) in expected {
            let p = f.profile(profile).unwrap();
            let want: Vec<(String, String)> = props
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let got: Vec<(String, String)> = p
                .keys()
                .iter()
                .map(|k| (k.to_string(), p.get(k).unwrap().to_string()))
                .collect();
            let mut want = want;
            want.sort();
            assert_eq!(got, want, "{name}: profile {profile}");
        }
        if let Some(sessions) = case["output"]["config"]["sso_sessions"].as_object() {
            let mut got = f.sso_session_names();
            got.sort();
            let mut want: Vec<String> = sessions.keys().cloned().collect();
            want.sort();
            assert_eq!(got, want, "{name}");
        }
    }
}
